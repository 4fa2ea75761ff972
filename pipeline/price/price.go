// Package price knows what real models cost: an embedded, dated and
// versioned table of list prices, overridden per model by the
// configuration, and a quote that says where a price came from, so that a
// model with no known price is reported as such rather than counted free.
package price

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"gantry/config"
)

//go:embed prices.yaml
var tableYAML []byte

// Source says where a price came from.
type Source string

const (
	SourceConfig     Source = "config"      // the model's price in the configuration
	SourceTable      Source = "table"       // Gantry's price table
	SourceSelfHosted Source = "self-hosted" // a server the operator runs: no per-token price
	SourceUnknown    Source = "unknown"     // nowhere: the cost is not known
)

// Quote is the price a model is charged at and where it came from.
type Quote struct {
	Price  config.Price
	Source Source
	// Table is the table's version and date, for prices from the table.
	Table string
	// Entry is the table entry that matched the model's name.
	Entry string
}

// Known reports whether the cost of a call can be computed.
func (q Quote) Known() bool { return q.Source != SourceUnknown && q.Source != "" }

// String says where the price came from, for traces and listings:
// "config", "table v1 2025-10-01 (gpt-4o)", "self-hosted" or "unknown".
func (q Quote) String() string {
	switch q.Source {
	case SourceTable:
		return fmt.Sprintf("table %s (%s)", q.Table, q.Entry)
	case "":
		return string(SourceUnknown)
	}
	return string(q.Source)
}

// Cost of a call in US dollars. Cached tokens are part of input tokens and
// reasoning tokens part of output tokens, as in OpenAI's usage; each is
// charged at its own price when one is set, else at the input or output
// price. An unknown price costs 0: check Known.
func (q Quote) Cost(input, cached, output, reasoning int) float64 {
	p := q.Price
	cachedPrice, reasoningPrice := p.CachedInput, p.Reasoning
	if cachedPrice == 0 {
		cachedPrice = p.Input
	}
	if reasoningPrice == 0 {
		reasoningPrice = p.Output
	}
	cached, reasoning = max(min(cached, input), 0), max(min(reasoning, output), 0)
	return (float64(input-cached)*p.Input + float64(cached)*cachedPrice +
		float64(output-reasoning)*p.Output + float64(reasoning)*reasoningPrice) / 1e6
}

// Table is a parsed price table.
type Table struct {
	Version int
	Date    string
	// prices by provider kind, then model id.
	prices     map[string]map[string]config.Price
	selfHosted []string
	sameAs     map[string]string
}

// Parse reads a price table in the format of prices.yaml.
func Parse(data []byte) (*Table, error) {
	var raw struct {
		Version    int                                `yaml:"version"`
		Date       string                             `yaml:"date"`
		Providers  map[string]map[string]config.Price `yaml:"providers"`
		SelfHosted []string                           `yaml:"self_hosted"`
		SameAs     map[string]string                  `yaml:"same_as"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	if raw.Version <= 0 || len(raw.Date) != len("2006-01-02") {
		return nil, fmt.Errorf("price table: needs a version above 0 and a date as YYYY-MM-DD, got %d %q", raw.Version, raw.Date)
	}
	for kind, models := range raw.Providers {
		for model, p := range models {
			for _, v := range []float64{p.Input, p.Output, p.CachedInput, p.Reasoning} {
				if v < 0 || v > config.MaxPricePerM || v != v {
					return nil, fmt.Errorf("price table: %s/%s: price %v is outside 0..%d", kind, model, v, config.MaxPricePerM)
				}
			}
		}
	}
	return &Table{Version: raw.Version, Date: raw.Date, prices: raw.Providers, selfHosted: raw.SelfHosted, sameAs: raw.SameAs}, nil
}

var builtin = func() *Table {
	t, err := Parse(tableYAML)
	if err != nil {
		panic(err) // the embedded table is tested
	}
	return t
}()

// Default returns the embedded table.
func Default() *Table { return builtin }

// Label is the table's version and date.
func (t *Table) Label() string { return fmt.Sprintf("v%d %s", t.Version, t.Date) }

// Quote prices a model served by a provider of kind (its preset for the
// OpenAI-compatible family): the configuration's price when it sets one,
// else the table's entry for the model's upstream id or its name, else
// self-hosted or unknown.
func (t *Table) Quote(m config.Model, kind string) Quote {
	if !m.Price.IsZero() {
		return Quote{Price: m.Price, Source: SourceConfig}
	}
	if p, entry, ok := t.lookup(kind, m.UpstreamName()); ok {
		return Quote{Price: p, Source: SourceTable, Table: t.Label(), Entry: entry}
	}
	if p, entry, ok := t.lookup(kind, m.Name); ok {
		return Quote{Price: p, Source: SourceTable, Table: t.Label(), Entry: entry}
	}
	if slices.Contains(t.selfHosted, kind) {
		return Quote{Source: SourceSelfHosted}
	}
	return Quote{Source: SourceUnknown}
}

// lookup finds a model's entry: its id as it is, or without the prefixes
// and suffixes providers add (Gemini's models/, Bedrock's cross-region
// us./eu./apac./global. and version suffixes such as -20241022-v1:0), or
// else the longest entry that the id starts with followed by a version
// separator (-, :, @).
func (t *Table) lookup(kind, model string) (config.Price, string, bool) {
	if to, ok := t.sameAs[kind]; ok {
		kind = to
	}
	models := t.prices[kind]
	if len(models) == 0 {
		return config.Price{}, "", false
	}
	id := strings.TrimPrefix(model, "models/")
	if kind == config.KindBedrock {
		for _, geo := range []string{"us.", "eu.", "apac.", "global.", "us-gov."} {
			id = strings.TrimPrefix(id, geo)
		}
	}
	if p, ok := models[id]; ok {
		return p, id, true
	}
	best := ""
	for entry := range models {
		if len(entry) > len(best) && len(id) > len(entry) && strings.HasPrefix(id, entry) && strings.ContainsRune("-:@", rune(id[len(entry)])) {
			best = entry
		}
	}
	if best == "" {
		return config.Price{}, "", false
	}
	return models[best], best, true
}
