package api

import (
	"gantry/config"
	"gantry/pipeline/price"
)

// The model listing:
//
//	GET /admin/v1/models                        Models
//
// It is what the agent that answers serves: its compiled configuration,
// with the price each model is charged at.

// PathModels lists the models an agent serves.
const PathModels = Prefix + "/models"

// Models is every model an agent serves.
type Models struct {
	Models []Model `json:"models"`
}

// Model is one model: who serves it and the price a call is charged at.
type Model struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	// Kind is the provider's kind, or its preset (groq, ollama, …).
	Kind string `json:"kind"`
	// Upstream is the model id sent to the provider.
	Upstream string `json:"upstream"`
	// Price in US dollars per million tokens; zero unless PriceSource is
	// config or table.
	Price config.Price `json:"price"`
	// PriceSource is config, table, self-hosted or unknown: calls to a
	// model of unknown price are traced as such, not counted free.
	PriceSource price.Source `json:"price_source"`
	// PriceTable is the table's version and date and PriceEntry the entry
	// that matched, for a price from the table.
	PriceTable string `json:"price_table,omitempty"`
	PriceEntry string `json:"price_entry,omitempty"`
}

// PriceKnown reports whether calls to the model have a known cost.
func (m Model) PriceKnown() bool { return price.Quote{Source: m.PriceSource}.Known() }
