package config

import _ "embed"

//go:embed example.yaml
var exampleYAML []byte

// ExampleDatasetFile and ExampleDataset are the example configuration's
// evaluation dataset, which dev mode pushes (eval/dataset parses it).
const ExampleDatasetFile = "datasets/ticket-triage-smoke.yaml"

//go:embed datasets/ticket-triage-smoke.yaml
var ExampleDataset []byte

// Example is the embedded example configuration that dev mode serves. It
// uses the simulator provider only.
func Example() *Config {
	cfg, err := Parse("example.yaml", exampleYAML)
	if err != nil {
		panic("config: embedded example is invalid: " + err.Error())
	}
	return cfg
}
