package tui

import (
	"fmt"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// logEntry is one line of the command log.
type logEntry struct {
	t    time.Time
	text string
	err  bool
}

// maxLog bounds the command log.
const maxLog = 500

// logView is the command log: every change sent, the gantry command that
// does the same, and what came back, so nobody has to guess what the
// console did at 3 a.m.
type logView struct {
	env     *env
	w, h    int
	entries []logEntry
	cur     list
}

func newLogView(e *env) *logView { return &logView{env: e} }

func (v *logView) Init() tea.Cmd    { return nil }
func (v *logView) SetSize(w, h int) { v.w, v.h = w, h }

func (v *logView) Actions() []Action { return navActions(v.env.keys) }

func (v *logView) ShortHelp() []key.Binding {
	s, _ := helpOf(v.env, v.Actions())
	return s
}

func (v *logView) FullHelp() [][]key.Binding {
	_, f := helpOf(v.env, v.Actions())
	return f
}

func (v *logView) add(text string, isErr bool) {
	v.entries = append(v.entries, logEntry{t: v.env.now(), text: clean(text, false), err: isErr})
	if len(v.entries) > maxLog {
		v.entries = append(v.entries[:0:0], v.entries[len(v.entries)-maxLog:]...)
	}
	v.cur.cursor = len(v.entries) - 1
	v.cur.clamp(len(v.entries), v.rows())
}

func (v *logView) rows() int { return max(1, v.h-1) }

func (v *logView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if a, ok := msg.(actionMsg); ok {
		v.cur.move(a.Action.ID, len(v.entries), v.rows())
	}
	return v, nil
}

func (v *logView) View() string {
	st := v.env.st
	lines := []string{st.Title.Render(fmt.Sprintf("Command log  %d entries", len(v.entries)))}
	if len(v.entries) == 0 {
		lines = append(lines, st.Dim.Render("  nothing sent yet"))
	}
	n := v.rows()
	v.cur.clamp(len(v.entries), n)
	for i := v.cur.offset; i < len(v.entries) && i < v.cur.offset+n; i++ {
		e := v.entries[i]
		mark := "  "
		if i == v.cur.cursor {
			mark = "> "
		}
		line := mark + e.t.In(v.env.loc).Format("15:04:05") + " " + e.text
		if e.err {
			line = st.Err.Render(line)
		}
		lines = append(lines, line)
	}
	return fillLines(lines, v.h)
}
