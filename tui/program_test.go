package tui

import (
	"bytes"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
)

// console stands in for the console program: it wraps the App, executes
// the requests that leave it and answers with messages, as the real one
// does over the admin API.
type console struct {
	*App
	sent []ActionRequest
}

func (c *console) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch m := msg.(type) {
	case ActionRequest:
		c.sent = append(c.sent, m)
		return c, func() tea.Msg { return ActionResultMsg{Request: m, Result: "production is v3"} }
	case DiffRequest:
		return c, func() tea.Msg { return DiffMsg{Request: m, Diff: fixtureDiff()} }
	}
	_, cmd := c.App.Update(msg)
	return c, cmd
}

// TestProgramPromote runs the App in a real bubbletea program: open the
// releases, promote, confirm, and see the console program's answer.
func TestProgramPromote(t *testing.T) {
	a := newTestApp(t, false)
	c := &console{App: a}
	tm := teatest.NewTestModel(t, c, teatest.WithInitialTermSize(80, 24))
	tm.Send(TracesMsg(summaries(40, clock.Add(-40*time.Second))))
	tm.Send(OverviewMsg(fixtureOverview()))
	tm.Send(FeaturesMsg(fixtureFeatures()))
	k := a.Keys()
	for _, b := range []string{k.Releases.Keys()[0], k.Down.Keys()[0], k.Promote.Keys()[0]} {
		tm.Send(keyMsg(t, b))
	}
	wait := func(s string) {
		t.Helper()
		teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(s)) },
			teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	}
	wait("2 fields changed")
	tm.Send(keyMsg(t, k.NextField.Keys()[0])) // Cancel -> Confirm
	tm.Send(keyMsg(t, k.Confirm.Keys()[0]))
	wait("done: promote support-answer production v2 -> v3")
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*console)
	if len(final.sent) != 1 || final.sent[0].To != 3 || final.sent[0].From != 2 {
		t.Fatalf("the console program got %+v, want one promote v2 -> v3", final.sent)
	}
}

// TestProgramFeedBatch: with the default batching, rows sent one message
// at a time reach the screen on the next flush tick.
func TestProgramFeedBatch(t *testing.T) {
	r := newTestApp(t, false)
	a := New(Options{Renderer: nil, Now: r.env.now, Location: time.UTC})
	a.env.st = r.env.st
	tm := teatest.NewTestModel(t, a, teatest.WithInitialTermSize(120, 40))
	tm.Send(keyMsg(t, a.Keys().Traces.Keys()[0]))
	for _, s := range summaries(30, clock) {
		tm.Send(TracesMsg{s})
	}
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("Traces  30 of 30")) },
		teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}
