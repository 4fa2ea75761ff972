package demo

import (
	"testing"

	"gantry/config"
	"gantry/eval/dataset"
)

// The seed is what every agent of the demo starts from: a configuration
// that does not load stops the demo before it shows anything.
func TestSeedLoadsAndHoldsTheStory(t *testing.T) {
	_, h1 := config.NewKey()
	_, h2 := config.NewKey()
	cfg, err := config.Parse("config.yaml", seedConfig(h1, h2))
	if err != nil {
		t.Fatalf("demo configuration: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("demo configuration: %v", err)
	}
	if len(cfg.Features) != 3 {
		t.Fatalf("want three features, got %d", len(cfg.Features))
	}
	support := cfg.Features[0]
	if support.Name != "support-answer" || support.Labels.Canary == 0 || support.Labels.CanaryWeight == 0 {
		t.Errorf("support-answer has no live canary: %+v", support.Labels)
	}
	for _, r := range support.Releases {
		if r.Retrieval == nil || r.Retrieval.Collection != "help-center" || r.Schema == nil {
			t.Errorf("support-answer v%d does not retrieve from help-center with a schema", r.Version)
		}
	}
	if tools := cfg.Features[2].Releases[0].Tools; cfg.Features[2].Name != "classify-ticket" || len(tools) == 0 {
		t.Errorf("classify-ticket has no tools")
	}
	hashes := map[string]bool{}
	for _, k := range cfg.Keys {
		hashes[k.Hash] = true
	}
	if !hashes[h1] || !hashes[h2] {
		t.Errorf("the keys' hashes were not filled in: %+v", cfg.Keys)
	}

	b, _ := files.ReadFile("dataset.yaml")
	ds, err := dataset.Parse("dataset.yaml", b)
	if err != nil {
		t.Fatalf("demo dataset: %v", err)
	}
	if support.Eval == nil || support.Eval.Dataset != ds.Name {
		t.Errorf("support-answer is evaluated on %+v, the demo ships %q", support.Eval, ds.Name)
	}
}
