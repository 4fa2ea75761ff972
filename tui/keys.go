package tui

import "github.com/charmbracelet/bubbles/key"

// KeyMap is every key the console knows, in one place. Views never compare
// key strings themselves: they declare Actions bound to these bindings, so
// remapping a key here changes it everywhere, help screen included.
//
// Bubbles' default table and viewport key maps bind d and ctrl+d to paging;
// this map is the console's own, so d only ever means diff.
type KeyMap struct {
	Up, Down, Top, Bottom, PageUp, PageDown key.Binding

	Back, Help, Command, Quit key.Binding
	Overview, Traces, Costs   key.Binding
	Releases, Cluster, Log    key.Binding
	Alerts, Health, Audit     key.Binding

	Filter, Pause, Open, NextTab key.Binding

	// Sort cycles the trace order; Yank copies the selected id.
	Sort, Yank key.Binding

	Mark, Diff, Promote, Rollback, Weight, Abort key.Binding

	// Dialog keys.
	Confirm, NextField, PrevField key.Binding
}

// DefaultKeyMap is the key map of k9s and lazygit users: vi motions and
// arrows, number keys for views, : to jump, / to filter, ? for help.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		Up:       key.NewBinding(key.WithKeys("k", "up"), key.WithHelp("k/↑", "up")),
		Down:     key.NewBinding(key.WithKeys("j", "down"), key.WithHelp("j/↓", "down")),
		Top:      key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g", "top")),
		Bottom:   key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G", "bottom")),
		PageUp:   key.NewBinding(key.WithKeys("ctrl+u", "pgup"), key.WithHelp("ctrl+u", "page up")),
		PageDown: key.NewBinding(key.WithKeys("ctrl+d", "pgdown"), key.WithHelp("ctrl+d", "page down")),

		Back:    key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Help:    key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "keys")),
		Command: key.NewBinding(key.WithKeys(":"), key.WithHelp(":", "go to view")),
		Quit:    key.NewBinding(key.WithKeys("ctrl+c", "q"), key.WithHelp("q", "quit")),

		Overview: key.NewBinding(key.WithKeys("1"), key.WithHelp("1", "overview")),
		Traces:   key.NewBinding(key.WithKeys("2"), key.WithHelp("2", "traces")),
		Costs:    key.NewBinding(key.WithKeys("3"), key.WithHelp("3", "costs")),
		Releases: key.NewBinding(key.WithKeys("4"), key.WithHelp("4", "releases")),
		Cluster:  key.NewBinding(key.WithKeys("5"), key.WithHelp("5", "cluster")),
		Log:      key.NewBinding(key.WithKeys("6"), key.WithHelp("6", "log")),
		Alerts:   key.NewBinding(key.WithKeys("7"), key.WithHelp("7", "alerts")),
		Health:   key.NewBinding(key.WithKeys("8"), key.WithHelp("8", "health")),
		Audit:    key.NewBinding(key.WithKeys("9"), key.WithHelp("9", "audit")),

		Filter:  key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Pause:   key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "pause/resume")),
		Open:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open")),
		NextTab: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next group")),
		Sort:    key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sort")),
		Yank:    key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy id")),

		Mark:     key.NewBinding(key.WithKeys("m"), key.WithHelp("m", "mark for diff")),
		Diff:     key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "diff")),
		Promote:  key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "promote")),
		Rollback: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "roll back")),
		Weight:   key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "canary weight")),
		Abort:    key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "end canary")),

		Confirm:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "choose")),
		NextField: key.NewBinding(key.WithKeys("tab", "right"), key.WithHelp("tab", "next")),
		PrevField: key.NewBinding(key.WithKeys("shift+tab", "left"), key.WithHelp("shift+tab", "previous")),
	}
}
