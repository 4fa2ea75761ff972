package tui

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"gantry/api"
	"gantry/config"
	"gantry/pipeline/trace"
)

// shownIDs are the ids of the trace rows on screen, top first.
func shownIDs(a *App) []string {
	var out []string
	for i := range a.traces.shown {
		out = append(out, a.traces.at(i).s.ID)
	}
	return out
}

func selectedTrace(t *testing.T, a *App) trace.Summary {
	t.Helper()
	s, ok := a.traces.selected()
	if !ok {
		t.Fatal("no trace selected")
	}
	return s
}

func only[T any](t *testing.T, msgs []tea.Msg) T {
	t.Helper()
	var found []T
	for _, m := range msgs {
		if v, ok := m.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("want one %T among %#v, got %d", zero, msgs, len(found))
	}
	return found[0]
}

func none[T any](t *testing.T, msgs []tea.Msg) {
	t.Helper()
	for _, m := range msgs {
		if _, ok := m.(T); ok {
			t.Fatalf("unexpected %T: %#v", m, m)
		}
	}
}

func TestFilterTraces(t *testing.T) {
	all := summaries(40, clock.Add(-40*time.Second))
	count := func(pred func(s trace.Summary) bool) int {
		n := 0
		for _, s := range all {
			if pred(s) {
				n++
			}
		}
		return n
	}
	cases := []struct {
		filter string
		want   int
		each   func(s trace.Summary) bool
	}{
		{"feature:summarize", count(func(s trace.Summary) bool { return s.Feature == "summarize" }),
			func(s trace.Summary) bool { return s.Feature == "summarize" }},
		{"status:error", count(func(s trace.Summary) bool { return s.Status == "error" }),
			func(s trace.Summary) bool { return s.Status == "error" }},
		{"feature:support status:error", count(func(s trace.Summary) bool { return s.Feature == "support-answer" && s.Status == "error" }),
			func(s trace.Summary) bool { return s.Feature == "support-answer" && s.Status == "error" }},
		{"CLAUDE", count(func(s trace.Summary) bool { return s.Model == "claude-haiku" }),
			func(s trace.Summary) bool { return s.Model == "claude-haiku" }},
		{"node:agent-2 fb:down", count(func(s trace.Summary) bool { return s.Node == "agent-2" && s.Feedback == "down" }),
			func(s trace.Summary) bool { return s.Node == "agent-2" && s.Feedback == "down" }},
		{"slow:2s", count(func(s trace.Summary) bool { return s.Duration >= 2000 }),
			func(s trace.Summary) bool { return s.Duration >= 2000 }},
		{"nomatch", 0, nil},
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			a := loaded(t, false, 80, 24)
			k := a.Keys()
			press(t, a, k.Traces)
			press(t, a, k.Filter)
			typeText(t, a, c.filter)
			press(t, a, k.Open) // enter ends editing
			if a.traces.Editing() {
				t.Fatal("still editing the filter after enter")
			}
			if got := len(a.traces.shown); got != c.want {
				t.Fatalf("filter %q shows %d rows, want %d", c.filter, got, c.want)
			}
			if c.want == 0 && !strings.Contains(a.View(), "no trace matches the filter") {
				t.Fatalf("empty result does not say so:\n%s", a.View())
			}
			for _, r := range a.traces.shown {
				if !c.each(r.s) {
					t.Fatalf("filter %q shows %+v", c.filter, r.s)
				}
			}
			// New rows are filtered as they arrive.
			send(t, a, TracesMsg(summaries(60, clock)[40:]))
			for _, r := range a.traces.shown {
				if c.each != nil && !c.each(r.s) {
					t.Fatalf("filter %q lets a new row through: %+v", c.filter, r.s)
				}
			}
			// esc clears the filter.
			press(t, a, k.Back)
			if got := len(a.traces.shown); got != 60 {
				t.Fatalf("after esc %d rows, want all 60", got)
			}
		})
	}
}

func TestFilterUnknownField(t *testing.T) {
	a := loaded(t, false, 80, 24)
	k := a.Keys()
	press(t, a, k.Traces)
	press(t, a, k.Filter)
	typeText(t, a, "colour:red")
	if !strings.Contains(a.View(), `unknown field "colour"`) {
		t.Fatalf("bad field not reported:\n%s", a.View())
	}
	// Fixing the text fixes the filter.
	send(t, a, tea.KeyMsg{Type: tea.KeyCtrlU})
	typeText(t, a, "feature:summarize")
	press(t, a, k.Open)
	if strings.Contains(a.View(), "unknown field") || len(a.traces.shown) == 0 {
		t.Fatalf("fixed filter still fails:\n%s", a.View())
	}
	press(t, a, k.Back)
	if len(a.traces.shown) != 40 {
		t.Fatalf("esc left %d rows, want 40", len(a.traces.shown))
	}
}

func TestPauseFreezesRows(t *testing.T) {
	a := loaded(t, false, 80, 24)
	k := a.Keys()
	press(t, a, k.Traces)
	before := shownIDs(a)
	screen := a.traces.View()

	press(t, a, k.Pause)
	if !a.traces.paused {
		t.Fatal("space did not pause")
	}
	send(t, a, TracesMsg(summaries(55, clock)[40:]))
	if got := shownIDs(a); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Fatalf("paused rows changed: %d rows before, %d after", len(before), len(got))
	}
	if a.traces.held != 15 {
		t.Fatalf("held back %d, want 15", a.traces.held)
	}
	paused := a.traces.View()
	if !strings.Contains(paused, "+15 new held back") {
		t.Fatalf("held-back counter missing:\n%s", paused)
	}
	// Only the title line may differ from the live screen.
	if strings.SplitN(paused, "\n", 2)[1] != strings.SplitN(screen, "\n", 2)[1] {
		t.Fatalf("paused rows are drawn differently:\n%s\n---\n%s", screen, paused)
	}

	press(t, a, k.Pause)
	if a.traces.paused || a.traces.held != 0 {
		t.Fatalf("space did not resume: paused=%v held=%d", a.traces.paused, a.traces.held)
	}
	if len(a.traces.shown) != 55 {
		t.Fatalf("after resume %d rows, want 55", len(a.traces.shown))
	}
}

func TestCursorStaysOnTraceAsRowsArrive(t *testing.T) {
	a := loaded(t, false, 80, 24)
	k := a.Keys()
	press(t, a, k.Traces)
	for range 3 {
		press(t, a, k.Down)
	}
	want := selectedTrace(t, a).ID

	// Newer rows, then rows from a lagging agent that sort in between.
	send(t, a, TracesMsg(summaries(50, clock)[40:]))
	late := summaries(45, clock.Add(-40*time.Second-350*time.Millisecond))[40:]
	for i := range late {
		late[i].ID = "late" + late[i].ID[4:]
	}
	send(t, a, TracesMsg(late))
	if got := selectedTrace(t, a).ID; got != want {
		t.Fatalf("cursor moved to %s, want it on %s", got, want)
	}
	if !strings.Contains(a.traces.View(), "> "+selectedTrace(t, a).Start.UTC().Format("15:04:05")) {
		t.Fatalf("selected row has no > marker:\n%s", a.traces.View())
	}

	// At the top the table follows the newest row.
	press(t, a, k.Top)
	send(t, a, TracesMsg(summaries(52, clock)[50:]))
	if got, newest := selectedTrace(t, a).ID, summaries(52, clock)[51].ID; got != newest {
		t.Fatalf("at the top the cursor is on %s, want the newest %s", got, newest)
	}
}

func TestTraceRingIsBounded(t *testing.T) {
	a := New(Options{MaxTraces: 100, FeedBatch: -1, Now: func() time.Time { return clock }})
	for i := 0; i < 10; i++ {
		batch := summaries(100, clock.Add(time.Duration(i)*time.Minute))
		for j := range batch {
			batch[j].ID = batch[j].ID + string(rune('a'+i))
		}
		a.Update(TracesMsg(batch))
	}
	if n := len(a.traces.all); n > 125 {
		t.Fatalf("kept %d rows, want at most 125", n)
	}
	if n := len(a.traces.ids); n != len(a.traces.all) {
		t.Fatalf("id index has %d entries for %d rows", n, len(a.traces.all))
	}
	newest := a.traces.at(0).s
	if want := clock.Add(9*time.Minute + 99*700*time.Millisecond); !newest.Start.Equal(want) {
		t.Fatalf("newest row starts %v, want %v", newest.Start, want)
	}
	// Duplicates (a list call overlapping the feed) are dropped.
	n := len(a.traces.all)
	a.Update(TracesMsg([]trace.Summary{newest}))
	if len(a.traces.all) != n {
		t.Fatal("a duplicate trace was added")
	}
}

func TestOpenTrace(t *testing.T) {
	a := loaded(t, false, 80, 24)
	k := a.Keys()
	press(t, a, k.Traces)
	press(t, a, k.Down)
	sel := selectedTrace(t, a)
	req := only[TraceRequest](t, press(t, a, k.Open))
	if req.ID != sel.ID || req.Node != sel.Node {
		t.Fatalf("request %+v, want id %s node %s", req, sel.ID, sel.Node)
	}
	if a.Current() != ViewTrace {
		t.Fatalf("view %v, want trace", a.Current())
	}
	if !strings.Contains(a.View(), "Loading trace "+sel.ID) {
		t.Fatalf("no loading line:\n%s", a.View())
	}
	tr := fixtureTrace()
	tr.ID = sel.ID
	send(t, a, TraceMsg{ID: sel.ID, Trace: tr})
	v := a.View()
	for _, want := range []string{"Waterfall", "route", "fallback", "Trace " + sel.ID} {
		if !strings.Contains(v, want) {
			t.Fatalf("trace view lacks %q:\n%s", want, v)
		}
	}
	// Scrolling reaches the prompt, response and feedback; the escape
	// sequence in the prompt is removed.
	press(t, a, k.Bottom)
	v = a.View()
	for _, want := range []string{"Response", "Feedback (1)", "refund window is 14 days"} {
		if !strings.Contains(v, want) {
			t.Fatalf("bottom of trace lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(strings.Join(a.trace.lines, "\n"), "\x1b") {
		t.Fatal("an escape sequence from the prompt reached the screen")
	}
	// An answer for another trace is ignored.
	send(t, a, TraceMsg{ID: "other", Err: errors.New("boom")})
	if a.trace.err != nil {
		t.Fatal("a stale answer replaced the open trace")
	}
	press(t, a, k.Back)
	if a.Current() != ViewTraces {
		t.Fatalf("esc went to %v, want traces", a.Current())
	}
}

// toRelease moves the releases cursor to the release id.
func toRelease(t *testing.T, a *App, id string) {
	t.Helper()
	k := a.Keys()
	press(t, a, k.Releases)
	press(t, a, k.Top)
	for i := 0; i < 20; i++ {
		if r, ok := a.releases.selected(); ok && r.r.ID == id {
			return
		}
		press(t, a, k.Down)
	}
	t.Fatalf("release %s not in the table", id)
}

func TestPromoteConfirmation(t *testing.T) {
	a := loaded(t, false, 80, 24)
	k := a.Keys()
	toRelease(t, a, "support-answer@v3")

	out := press(t, a, k.Promote)
	none[ActionRequest](t, out)
	if d := only[DiffRequest](t, out); d != (DiffRequest{Feature: "support-answer", A: 2, B: 3}) {
		t.Fatalf("diff request %+v", d)
	}
	if a.dialog == nil {
		t.Fatal("promote opened no dialog")
	}
	if a.dialog.focused() != fieldCancel {
		t.Fatalf("dialog opens on %v, want Cancel", a.dialog.focused())
	}
	v := a.View()
	for _, want := range []string{"Promote support-answer v3 to production?", "from      v2", "to        v3",
		"loading diff", "gantry release promote support-answer 3 --from 2", "> Cancel <"} {
		if !strings.Contains(v, want) {
			t.Fatalf("dialog lacks %q:\n%s", want, v)
		}
	}
	send(t, a, DiffMsg{Request: DiffRequest{Feature: "support-answer", A: 2, B: 3}, Diff: fixtureDiff()})
	if !strings.Contains(a.View(), "2 fields changed: system +1 -1, route +1 -1") {
		t.Fatalf("diff summary missing:\n%s", a.View())
	}

	// enter on Cancel changes nothing.
	out = press(t, a, k.Confirm)
	none[ActionRequest](t, out)
	if a.dialog != nil || !strings.Contains(a.Status(), "nothing changed") {
		t.Fatalf("cancel: dialog=%v status=%q", a.dialog != nil, a.Status())
	}

	// Again, with a reason, then Confirm.
	press(t, a, k.Promote)
	press(t, a, k.PrevField) // Cancel -> reason
	typeText(t, a, "canary looks fine")
	press(t, a, k.NextField) // -> Cancel
	press(t, a, k.NextField) // -> Confirm
	got := only[ActionRequest](t, press(t, a, k.Confirm))
	want := ActionRequest{Kind: KindPromote, Feature: "support-answer", Label: config.LabelProduction, From: 2, To: 3, Reason: "canary looks fine",
		CLI: "gantry release promote support-answer 3 --from 2 --reason 'canary looks fine'"}
	if got != want {
		t.Fatalf("request\n got %+v\nwant %+v", got, want)
	}
	if m := got.LabelMove(); m.Check() != nil || m.Action != config.MovePromote {
		t.Fatalf("label move %+v: %v", m, m.Check())
	}
	if a.dialog != nil {
		t.Fatal("dialog still open after confirm")
	}

	// The result comes back into the status line and the command log.
	send(t, a, ActionResultMsg{Request: got, Err: errors.New("conflict: production moved to v4")})
	if !strings.Contains(a.Status(), "FAILED promote support-answer production v2 -> v3: conflict") {
		t.Fatalf("status %q", a.Status())
	}
	press(t, a, k.Log)
	if !strings.Contains(a.View(), "gantry release promote support-answer 3 --from 2") {
		t.Fatalf("command log lacks the CLI command:\n%s", a.View())
	}
}

func TestRollbackAndCanary(t *testing.T) {
	cases := []struct {
		name   string
		on     string
		act    func(KeyMap) key.Binding
		weight string // typed into the weight field, if set
		want   ActionRequest
	}{
		{"rollback ends the live canary", "support-answer@v3", func(k KeyMap) key.Binding { return k.Rollback }, "",
			ActionRequest{Kind: KindRollback, Feature: "support-answer", Label: config.LabelCanary, From: 3, To: 0, CLI: "gantry release rollback support-answer --from 3"}},
		{"canary weight", "support-answer@v3", func(k KeyMap) key.Binding { return k.Weight }, "25",
			ActionRequest{Kind: KindCanary, Feature: "support-answer", Label: config.LabelCanary, From: 3, To: 3, Weight: 25, CLI: "gantry release canary support-answer 3 --weight 25 --from 3"}},
		{"end the canary", "support-answer@v1", func(k KeyMap) key.Binding { return k.Abort }, "",
			ActionRequest{Kind: KindAbort, Feature: "support-answer", Label: config.LabelCanary, From: 3, To: 0, CLI: "gantry release canary support-answer --abort --from 3"}},
		{"canary on v1", "support-answer@v1", func(k KeyMap) key.Binding { return k.Weight }, "",
			ActionRequest{Kind: KindCanary, Feature: "support-answer", Label: config.LabelCanary, From: 3, To: 1, Weight: 10, CLI: "gantry release canary support-answer 1 --weight 10 --from 3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := loaded(t, false, 120, 40)
			k := a.Keys()
			toRelease(t, a, c.on)
			none[ActionRequest](t, press(t, a, c.act(k)))
			if a.dialog == nil || a.dialog.focused() != fieldCancel {
				t.Fatal("no dialog on Cancel")
			}
			if c.weight != "" {
				press(t, a, k.PrevField) // reason
				press(t, a, k.PrevField) // weight
				if a.dialog.focused() != fieldWeight {
					t.Fatalf("focus on %v, want weight", a.dialog.focused())
				}
				send(t, a, tea.KeyMsg{Type: tea.KeyCtrlU})
				typeText(t, a, c.weight)
				press(t, a, k.NextField) // reason
			}
			press(t, a, k.NextField)
			for a.dialog.focused() != fieldConfirm {
				press(t, a, k.NextField)
			}
			got := only[ActionRequest](t, press(t, a, k.Confirm))
			if got != c.want {
				t.Fatalf("request\n got %+v\nwant %+v", got, c.want)
			}
			if err := got.LabelMove().Check(); err != nil {
				t.Fatalf("label move does not check: %v", err)
			}
		})
	}
}

func TestCanaryWeightOutOfRange(t *testing.T) {
	a := loaded(t, false, 120, 40)
	k := a.Keys()
	toRelease(t, a, "support-answer@v3")
	press(t, a, k.Weight)
	press(t, a, k.PrevField)
	press(t, a, k.PrevField)
	send(t, a, tea.KeyMsg{Type: tea.KeyCtrlU})
	typeText(t, a, "150")
	for a.dialog.focused() != fieldConfirm {
		press(t, a, k.NextField)
	}
	none[ActionRequest](t, press(t, a, k.Confirm))
	if a.dialog == nil || !strings.Contains(a.View(), "weight must be a whole number from 1 to 100") {
		t.Fatalf("out-of-range weight not refused:\n%s", a.View())
	}
	press(t, a, k.Back)
	if a.dialog != nil {
		t.Fatal("esc did not close the dialog")
	}
}

func TestNothingToDo(t *testing.T) {
	cases := []struct {
		on, status string
		act        func(KeyMap) key.Binding
	}{
		{"support-answer@v2", "already in production", func(k KeyMap) key.Binding { return k.Promote }},
		{"summarize@v1", "no earlier production release", func(k KeyMap) key.Binding { return k.Rollback }},
		{"support-answer@v2", "pick another release for the canary", func(k KeyMap) key.Binding { return k.Weight }},
	}
	for _, c := range cases {
		a := loaded(t, false, 80, 24)
		toRelease(t, a, c.on)
		out := press(t, a, c.act(a.Keys()))
		none[ActionRequest](t, out)
		if a.dialog != nil || !strings.Contains(a.Status(), c.status) {
			t.Fatalf("%s: dialog=%v status %q, want %q", c.on, a.dialog != nil, a.Status(), c.status)
		}
	}
}

func TestReadOnlyBlocksAtDispatch(t *testing.T) {
	a := loaded(t, true, 80, 24)
	k := a.Keys()
	toRelease(t, a, "support-answer@v3")
	for _, b := range []key.Binding{k.Promote, k.Rollback, k.Weight} {
		out := press(t, a, b)
		if len(out) != 0 || a.dialog != nil {
			t.Fatalf("%s in read-only mode: dialog=%v out=%v", b.Help().Desc, a.dialog != nil, out)
		}
		if !strings.Contains(a.Status(), "read-only") {
			t.Fatalf("%s: status %q does not say read-only", b.Help().Desc, a.Status())
		}
	}
	// The gate is dispatch itself: a dangerous action never reaches the
	// view, whichever view it names.
	for _, act := range a.releases.Actions() {
		if !act.Dangerous {
			continue
		}
		if cmd := a.dispatch(act); cmd != nil {
			t.Fatalf("dispatch let %s through in read-only mode", act.Name)
		}
	}
	// Help hides what is blocked, and read-only does not block reading.
	press(t, a, k.Help)
	// The help screen and the help line, not the status line, which does
	// name the blocked action.
	v := a.helpView() + "\n" + a.help.ShortHelpView(a.ShortHelp())
	for _, hidden := range []string{"promote", "roll back", "canary weight"} {
		if strings.Contains(v, hidden) {
			t.Fatalf("read-only help shows %q:\n%s", hidden, v)
		}
	}
	press(t, a, k.Back)
	if d := only[DiffRequest](t, press(t, a, k.Diff)); d.B != 3 {
		t.Fatalf("diff in read-only mode: %+v", d)
	}

	// Without read-only the same help lists them.
	b := loaded(t, false, 80, 24)
	press(t, b, k.Releases)
	press(t, b, k.Help)
	if !strings.Contains(b.View(), "promote") {
		t.Fatalf("help lacks promote:\n%s", b.View())
	}
}

func TestReleasesCursorSurvivesResort(t *testing.T) {
	a := loaded(t, false, 80, 24)
	toRelease(t, a, "support-answer@v2")
	fs := fixtureFeatures()
	fs = append(fs, api.Feature{Name: "aaa-first", Labels: fixtureFeatures()[1].Labels,
		Releases: []api.Release{{Version: 1, ID: "aaa-first@v1"}, {Version: 2, ID: "aaa-first@v2"}}})
	send(t, a, FeaturesMsg(fs))
	if r, _ := a.releases.selected(); r.r.ID != "support-answer@v2" {
		t.Fatalf("cursor on %s after a new feature sorted in, want support-answer@v2", r.r.ID)
	}
}

func TestDiffMarkedReleases(t *testing.T) {
	a := loaded(t, false, 80, 24)
	k := a.Keys()
	toRelease(t, a, "support-answer@v1")
	press(t, a, k.Mark)
	press(t, a, k.Up) // v2
	press(t, a, k.Up) // v3
	d := only[DiffRequest](t, press(t, a, k.Diff))
	if d != (DiffRequest{Feature: "support-answer", A: 1, B: 3}) {
		t.Fatalf("diff of marked release: %+v", d)
	}
	send(t, a, DiffMsg{Request: d, Err: errors.New("not found")})
	if !strings.Contains(a.View(), "diff failed: not found") {
		t.Fatalf("diff error not shown:\n%s", a.View())
	}
	press(t, a, k.Back)
	if a.releases.diffOpen || a.Current() != ViewReleases {
		t.Fatal("esc did not close the diff")
	}
}

func TestCommandLine(t *testing.T) {
	cases := []struct {
		typed  string
		tab    bool
		want   ViewID
		status string
	}{
		{"rel", true, ViewReleases, ""},
		{"releases", false, ViewReleases, ""},
		{"budgets", false, ViewCosts, ""},
		{"clu", false, ViewCluster, ""},
		{"c", true, ViewOverview, "ambiguous"},
		{"nosuch", false, ViewOverview, "unknown view"},
	}
	for _, c := range cases {
		a := loaded(t, false, 80, 24)
		k := a.Keys()
		press(t, a, k.Command)
		typeText(t, a, c.typed)
		if c.tab {
			send(t, a, tea.KeyMsg{Type: tea.KeyTab})
		}
		press(t, a, k.Open)
		if a.Current() != c.want {
			t.Fatalf(":%s went to %v, want %v", c.typed, a.Current(), c.want)
		}
		if c.status != "" && !strings.Contains(a.Status(), c.status) {
			t.Fatalf(":%s status %q, want %q", c.typed, a.Status(), c.status)
		}
	}
	a := loaded(t, false, 80, 24)
	press(t, a, a.Keys().Command)
	typeText(t, a, "trace abc123")
	if r := only[TraceRequest](t, press(t, a, a.Keys().Open)); r.ID != "abc123" || a.Current() != ViewTrace {
		t.Fatalf(":trace opened %+v in %v", r, a.Current())
	}
}

func TestStaleAgentMarker(t *testing.T) {
	a := loaded(t, false, 120, 40)
	press(t, a, a.Keys().Traces)
	if !strings.Contains(a.View(), "agent-3!") {
		t.Fatalf("rows of the stale agent are not marked:\n%s", a.View())
	}
	send(t, a, AgentStatusMsg{Agent: "agent-3"})
	if v := a.View(); strings.Contains(v, "agent-3!") || strings.Contains(v, "STALE") {
		t.Fatalf("agent-3 is back but still marked:\n%s", v)
	}
	if !strings.Contains(a.Status(), "agent-3 is back") {
		t.Fatalf("status %q", a.Status())
	}
}

func TestOverviewEnterFiltersTraces(t *testing.T) {
	a := loaded(t, false, 80, 24)
	press(t, a, a.Keys().Open) // support-answer is the busiest, on top
	if a.Current() != ViewTraces || a.traces.filterText != "feature:support-answer" {
		t.Fatalf("view %v filter %q", a.Current(), a.traces.filterText)
	}
}

func TestKeyMap(t *testing.T) {
	a := newTestApp(t, false)
	global := map[string]bool{}
	for _, b := range a.globalKeys() {
		for _, k := range b.Keys() {
			global[k] = true
		}
	}
	for _, id := range []ViewID{ViewOverview, ViewTraces, ViewTrace, ViewCosts, ViewReleases, ViewCluster, ViewLog} {
		seen := map[string]string{}
		for _, act := range a.view(id).Actions() {
			for _, k := range act.Key.Keys() {
				if global[k] {
					t.Fatalf("%v: %s uses %q, a console-wide key", id, act.Name, k)
				}
				if other, dup := seen[k]; dup {
					t.Fatalf("%v: %q is bound to %s and %s", id, k, other, act.Name)
				}
				seen[k] = act.Name
				// Bubbles' table binds d and ctrl+d to paging; here a
				// changing action is never one chord away.
				if act.Dangerous && strings.HasPrefix(k, "ctrl+") {
					t.Fatalf("%v: dangerous %s on a control chord %q", id, act.Name, k)
				}
			}
			if act.Key.Help().Desc == "" {
				t.Fatalf("%v: %s has no help text", id, act.Name)
			}
		}
	}
}

func TestCLICommandQuoting(t *testing.T) {
	cases := []struct {
		r    ActionRequest
		want string
	}{
		{ActionRequest{Kind: KindPromote, Feature: "support-answer", From: 2, To: 3}, "gantry release promote support-answer 3 --from 2"},
		{ActionRequest{Kind: KindRollback, Feature: "f", From: 2, To: 1, Reason: "it's bad"}, `gantry release rollback f --from 2 --reason 'it'\''s bad'`},
		{ActionRequest{Kind: KindCanary, Feature: "f", To: 2, Weight: 5, Reason: "$(rm -rf)"}, "gantry release canary f 2 --weight 5 --reason '$(rm -rf)'"},
		{ActionRequest{Kind: KindAbort, Feature: "my feature", From: 2}, "gantry release canary 'my feature' --abort --from 2"},
	}
	for _, c := range cases {
		if got := CLICommand(c.r); got != c.want {
			t.Fatalf("CLICommand(%+v) = %s, want %s", c.r, got, c.want)
		}
	}
}

// TestDoubleEnterSendsOnce: a second enter that arrives before the dialog
// has closed must not send the change twice.
func TestDoubleEnterSendsOnce(t *testing.T) {
	a := loaded(t, false, 80, 24)
	k := a.Keys()
	toRelease(t, a, "support-answer@v3")
	press(t, a, k.Promote)
	press(t, a, k.NextField) // Confirm
	enter := keyMsg(t, k.Confirm.Keys()[0])
	_, first := a.Update(enter)
	_, second := a.Update(enter)
	out := append(run(t, a, first), run(t, a, second)...)
	only[ActionRequest](t, out)
}

func TestRemappedKeys(t *testing.T) {
	keys := DefaultKeyMap()
	keys.Promote = key.NewBinding(key.WithKeys("P"), key.WithHelp("P", "promote"))
	a := New(Options{Keys: &keys, FeedBatch: -1, Now: func() time.Time { return clock }, Location: time.UTC})
	send(t, a, tea.WindowSizeMsg{Width: 80, Height: 24})
	send(t, a, FeaturesMsg(fixtureFeatures()))
	toRelease(t, a, "support-answer@v3")
	send(t, a, keyMsg(t, "p"))
	if a.dialog != nil {
		t.Fatal("p still promotes after promote moved to P")
	}
	press(t, a, a.Keys().Promote)
	if a.dialog == nil {
		t.Fatal("P does not promote")
	}
}

func TestColourKeepsMarkers(t *testing.T) {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.TrueColor)
	a := New(Options{Renderer: r, FeedBatch: -1, Now: func() time.Time { return clock }, Location: time.UTC})
	send(t, a, tea.WindowSizeMsg{Width: 80, Height: 24})
	send(t, a, TracesMsg(summaries(10, clock)))
	press(t, a, a.Keys().Traces)
	v := a.View()
	if !strings.Contains(v, "\x1b[") {
		t.Fatal("no styling under a colour profile")
	}
	if !strings.Contains(ansi.Strip(v), "> "+clock.Add(9*700*time.Millisecond).Format("15:04:05")) {
		t.Fatalf("selected row lost its marker under colour:\n%s", ansi.Strip(v))
	}
	checkScreen(t, ansi.Strip(v), 80, 24)
}

func TestFeedBatching(t *testing.T) {
	a := New(Options{FeedBatch: 100 * time.Millisecond, Now: func() time.Time { return clock }, Location: time.UTC})
	a.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	rows := summaries(30, clock)
	var ticks int
	for i := range rows {
		if _, cmd := a.Update(TracesMsg(rows[i : i+1])); cmd != nil {
			ticks++
		}
	}
	if ticks != 1 {
		t.Fatalf("%d flushes scheduled for one interval, want 1", ticks)
	}
	if len(a.traces.all) != 0 {
		t.Fatalf("%d rows applied before the flush", len(a.traces.all))
	}
	a.Update(feedFlushMsg{})
	if len(a.traces.all) != 30 || len(a.pending) != 0 {
		t.Fatalf("after flush: %d rows, %d pending", len(a.traces.all), len(a.pending))
	}
	// The next message schedules the next flush.
	if _, cmd := a.Update(TracesMsg(summaries(31, clock)[30:])); cmd == nil {
		t.Fatal("no flush scheduled after the last one ran")
	}
}

// TestDialogWarnsWhenLabelMoves: someone else promotes while the dialog is
// open; the dialog says so, and the request still carries the From the
// operator saw, so the agent refuses it instead of undoing their change.
func TestDialogWarnsWhenLabelMoves(t *testing.T) {
	a := loaded(t, false, 120, 40)
	k := a.Keys()
	toRelease(t, a, "support-answer@v3")
	press(t, a, k.Promote)
	fs := fixtureFeatures()
	fs[0].Labels.Production = 3
	send(t, a, FeaturesMsg(fs))
	if !strings.Contains(a.View(), "production moved to v3 since this opened: cancel and look again") {
		t.Fatalf("no warning after the label moved:\n%s", a.View())
	}
	press(t, a, k.NextField)
	r := only[ActionRequest](t, press(t, a, k.Confirm))
	if r.From != 2 {
		t.Fatalf("request From = %d, want the v2 the operator saw", r.From)
	}
}
