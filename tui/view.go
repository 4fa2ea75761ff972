package tui

import (
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// env is what every view shares: keys, looks, the clock, read-only mode and
// which agents have gone quiet.
type env struct {
	keys     KeyMap
	st       Styles
	now      func() time.Time
	loc      *time.Location
	readOnly bool
	stale    map[string]bool
}

// allowed is the one read-only gate. App.dispatch calls it before any
// action runs, and help calls it so a blocked key is never advertised.
func (e *env) allowed(a Action) bool {
	return !(e.readOnly && a.Dangerous)
}

// bindings are the keys of the allowed actions, for help.
func (e *env) bindings(actions []Action) []key.Binding {
	out := make([]key.Binding, 0, len(actions))
	for _, a := range actions {
		if e.allowed(a) {
			out = append(out, a.Key)
		}
	}
	return out
}

// view is one screen of the console. Views never see key presses: the App
// matches keys against Actions() and delivers an actionMsg, except while a
// view is editing text (see editor).
type view interface {
	tea.Model
	help.KeyMap
	SetSize(w, h int)
	Actions() []Action
}

// editor is a view that takes raw keys while the user types into it.
type editor interface {
	Editing() bool
}

// backer is a view that undoes one step of its own on esc (closes a diff,
// clears a filter) before the App goes back to the previous view.
type backer interface {
	Back() bool
}

// helpOf splits a view's allowed actions into help columns.
func helpOf(e *env, actions []Action) ([]key.Binding, [][]key.Binding) {
	b := e.bindings(actions)
	// The help line shows what the view adds to the motions everybody
	// knows; the full help shows them all.
	var short []key.Binding
	for _, a := range actions {
		if a.ID > ActPageDown && e.allowed(a) {
			short = append(short, a.Key)
		}
	}
	if len(short) == 0 {
		short = []key.Binding{e.keys.Up, e.keys.Down}
	}
	var full [][]key.Binding
	for len(b) > 0 {
		n := min(6, len(b))
		full = append(full, b[:n])
		b = b[n:]
	}
	return short, full
}
