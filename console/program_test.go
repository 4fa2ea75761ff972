package console

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"
)

// press is a key press by name, as the key map names keys.
func press(name string) tea.KeyMsg {
	switch name {
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(name)}
}

// startProgram runs the console model against agent in a teatest program
// with its fleet feeding it, until the test ends.
func startProgram(t *testing.T, a *fakeAgent, readOnly bool) (*teatest.TestModel, *Model) {
	t.Helper()
	f, err := NewFleet(FleetOptions{Agents: []string{a.srv.URL}, Token: testToken, Operator: "local:ana",
		FeedTick: 20 * time.Millisecond, PollEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := NewModel(ctx, f, Options{ReadOnly: readOnly, Renderer: lipgloss.NewRenderer(io.Discard, termenv.WithProfile(termenv.Ascii))})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(120, 40))
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, tm.Send)
	}()
	t.Cleanup(func() {
		tm.Quit()
		cancel()
		<-done
	})
	return tm, m
}

// waitScreen waits until the output holds every one of want. What it
// reads is gone for the next wait, so wait for a screen's words together.
func waitScreen(t *testing.T, tm *teatest.TestModel, want ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				return false
			}
		}
		return true
	},
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

// TestProgramPromote drives the console against an agent: the releases
// arrive, promote opens the dialog on Cancel, tab moves to Confirm, and the
// move reaches the agent with the version the operator saw.
func TestProgramPromote(t *testing.T) {
	a := newFakeAgent(t, "n1")
	tm, _ := startProgram(t, a, false)
	waitScreen(t, tm, "Gantry console")
	tm.Send(press("4"))
	waitScreen(t, tm, "cccccccc") // v3's hash: the releases arrived
	tm.Send(press("p"))
	waitScreen(t, tm, "1 field changed: system +1 -1") // the diff, fetched for the dialog
	tm.Send(press("tab"))
	tm.Send(press("enter"))
	waitScreen(t, tm, "done: promote support-answer production v2 -> v3: production is v3 (log index 42)")
	moves, ops := a.labelMoves()
	if len(moves) != 1 || moves[0].From != 2 || moves[0].To != 3 || moves[0].Action != "promote" || ops[0] != "local:ana" {
		t.Fatalf("agent got %+v from %q, want one promote v2 -> v3 from local:ana", moves, ops)
	}
}

// TestProgramReadOnly: read-only, promote is refused before any dialog.
func TestProgramReadOnly(t *testing.T) {
	a := newFakeAgent(t, "n1")
	tm, _ := startProgram(t, a, true)
	waitScreen(t, tm, "[READ-ONLY]")
	tm.Send(press("4"))
	waitScreen(t, tm, "cccccccc")
	tm.Send(press("p"))
	waitScreen(t, tm, "read-only: promote is disabled")
	if moves, _ := a.labelMoves(); len(moves) != 0 {
		t.Fatalf("read-only console sent %+v", moves)
	}
}

// TestProgramOpenTrace: a trace from the feed opens with its spans,
// fetched from the agent that served it.
func TestProgramOpenTrace(t *testing.T) {
	a := newFakeAgent(t, "n1")
	a.serve(summary("4bf92f3577b34da6a3ce929d0e0e4736", "", time.Now()))
	tm, _ := startProgram(t, a, false)
	tm.Send(press("2"))
	waitScreen(t, tm, "sim-small")
	tm.Send(press("enter"))
	waitScreen(t, tm, "> trace", "route")
}
