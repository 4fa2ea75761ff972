package tui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/pipeline/trace"
)

// EvalsMsg is the latest evaluation runs and comparison verdicts of the
// cluster, newest first.
type EvalsMsg struct {
	Runs     []api.Run
	Verdicts []api.Verdict
}

// evalsView lists comparison verdicts, newest first, with the selected
// one's reasons and per-case diff (failing critical cases first), and the
// recent runs under them. Runs are started with `gantry eval`; the view
// only reads.
type evalsView struct {
	env      *env
	w, h     int
	loaded   bool
	runs     []api.Run
	verdicts []api.Verdict
	cur      list
	anchor   uint64 // log index of the verdict under the cursor
}

func newEvalsView(e *env) *evalsView { return &evalsView{env: e} }

func (v *evalsView) Init() tea.Cmd    { return nil }
func (v *evalsView) SetSize(w, h int) { v.w, v.h = w, h }

func (v *evalsView) Actions() []Action { return navActions(v.env.keys) }

func (v *evalsView) ShortHelp() []key.Binding {
	s, _ := helpOf(v.env, v.Actions())
	return s
}

func (v *evalsView) FullHelp() [][]key.Binding {
	_, f := helpOf(v.env, v.Actions())
	return f
}

func (v *evalsView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case EvalsMsg:
		v.loaded = true
		v.runs = append([]api.Run(nil), msg.Runs...)
		v.verdicts = append([]api.Verdict(nil), msg.Verdicts...)
		sort.SliceStable(v.runs, func(i, j int) bool { return v.runs[i].Index > v.runs[j].Index })
		sort.SliceStable(v.verdicts, func(i, j int) bool { return v.verdicts[i].Index > v.verdicts[j].Index })
		for i, x := range v.verdicts {
			if x.Index == v.anchor {
				v.cur.cursor = i
			}
		}
		v.cur.clamp(len(v.verdicts), v.tableRows())
	case actionMsg:
		v.cur.move(msg.Action.ID, len(v.verdicts), v.tableRows())
		if len(v.verdicts) > 0 {
			v.anchor = v.verdicts[v.cur.cursor].Index
		}
	}
	return v, nil
}

// tableRows is the verdict table's share of the screen; the selected
// verdict's detail and the runs take the rest.
func (v *evalsView) tableRows() int { return max(2, min(len(v.verdicts), v.h/4)) }

func (v *evalsView) runRows() int { return max(2, min(len(v.runs), v.h/5)) }

var verdictCols = []column{
	{title: "FEATURE", width: 14, flex: true},
	{title: "CAND", width: 4},
	{title: "BASE", width: 4},
	{title: "DATASET", width: 18, drop: 2},
	{title: "VERDICT", width: 13},
	{title: "PASS%", width: 9, right: true},
	{title: "BROKE", width: 5, right: true},
	{title: "FIXED", width: 5, right: true, drop: 3},
	{title: "P", width: 6, right: true, drop: 1},
	{title: "AGE", width: 5, right: true, drop: 4},
}

var runCols = []column{
	{title: "RUN", width: 16},
	{title: "RELEASE", width: 14, flex: true},
	{title: "DATASET", width: 18, drop: 3},
	{title: "PASSED", width: 9, right: true},
	{title: "CRIT", width: 4, right: true},
	{title: "P95", width: 7, right: true, drop: 1},
	{title: "COST", width: 8, right: true, drop: 2},
	{title: "AGE", width: 5, right: true},
}

func (v *evalsView) View() string {
	st := v.env.st
	now := v.env.now()
	lines := []string{st.Title.Render(fmt.Sprintf("Evaluations  %d comparisons, %d runs  (gantry eval run | compare)", len(v.verdicts), len(v.runs)))}
	if !v.loaded {
		lines = append(lines, st.Dim.Render("Waiting for evaluations from the agents…"))
		return fillLines(lines, v.h)
	}
	runLines := v.runLines(now)
	if len(v.verdicts) == 0 {
		lines = append(lines, st.Dim.Render("No comparisons yet: gantry eval compare --feature F --candidate V --dataset NAME"))
	} else {
		widths := layout(verdictCols, v.w)
		lines = append(lines, st.Header.Render(headerRow(verdictCols, widths)))
		n := v.tableRows()
		v.cur.clamp(len(v.verdicts), n)
		for i := v.cur.offset; i < len(v.verdicts) && i < v.cur.offset+n; i++ {
			x := v.verdicts[i]
			cells := []string{x.Feature, fmt.Sprintf("v%d", x.Candidate), fmt.Sprintf("v%d", x.Baseline),
				fmt.Sprintf("%s v%d", x.Dataset, x.DatasetVersion), verdictWord(x.Verdict.Verdict),
				fmt.Sprintf("%.0f→%.0f", 100*x.BaselinePassRate, 100*x.CandidatePassRate),
				fmt.Sprint(x.McNemar.Broke), fmt.Sprint(x.McNemar.Fixed), fmt.Sprintf("%.3f", x.McNemar.PValue), age(now, x.Recorded)}
			line := renderRow(verdictCols, widths, cells, i == v.cur.cursor)
			if i == v.cur.cursor {
				line = st.Selected.Render(line)
			}
			lines = append(lines, line)
		}
		room := v.h - len(lines) - len(runLines) - 1
		lines = append(lines, "")
		lines = append(lines, v.detail(v.verdicts[v.cur.cursor], room)...)
	}
	lines = append(lines, runLines...)
	return fillLines(lines, v.h)
}

// verdictWord is the verdict as the table shows it: upper case when it
// stops a promotion.
func verdictWord(s string) string {
	if s == "regression" {
		return "REGRESSION"
	}
	return strings.ReplaceAll(s, "_", " ")
}

// detail is what decided a verdict and which cases changed, critical ones
// first, in at most room lines.
func (v *evalsView) detail(x api.Verdict, room int) []string {
	st := v.env.st
	var out []string
	head := fmt.Sprintf("%s v%d against v%d on %s v%d: %s", x.Feature, x.Candidate, x.Baseline, x.Dataset, x.DatasetVersion, verdictWord(x.Verdict.Verdict))
	if x.Verdict.Verdict == "regression" {
		head = st.Err.Render(head)
	}
	out = append(out, head)
	for _, r := range x.Reasons {
		out = append(out, "  - "+clean(r, false))
	}
	if len(x.CriticalFailures) > 0 {
		out = append(out, st.Err.Render("  critical cases failing: "+strings.Join(x.CriticalFailures, ", ")))
	}
	diffs := len(x.Regressions) + len(x.Improvements)
	if diffs > 0 {
		out = append(out, st.Header.Render(fmt.Sprintf("    %-22s %-4s %-12s %s", "CASE", "CRIT", "BASELINE", "CANDIDATE")))
		row := func(d caseRow) string {
			crit := "-"
			if d.Critical {
				crit = "yes"
			}
			return fmt.Sprintf("  %s %s %-4s %-12s %s", d.Mark, fit(d.Case, 22, false), crit,
				fmt.Sprintf("%s %.2f", d.Baseline, d.BaselineScore), fmt.Sprintf("%s %.2f", d.Candidate, d.CandidateScore))
		}
		for _, d := range x.Regressions {
			out = append(out, row(caseRow{"✗", d.Case, d.Critical, d.Baseline, d.Candidate, d.BaselineScore, d.CandidateScore}))
		}
		for _, d := range x.Improvements {
			out = append(out, row(caseRow{"✓", d.Case, d.Critical, d.Baseline, d.Candidate, d.BaselineScore, d.CandidateScore}))
		}
	}
	if x.Omitted > 0 {
		out = append(out, st.Dim.Render(fmt.Sprintf("  (%d more cases not kept)", x.Omitted)))
	}
	if room < 1 {
		return nil
	}
	if len(out) > room {
		more := len(out) - room + 1
		out = append(out[:room-1], st.Dim.Render(fmt.Sprintf("  … %d more lines: gantry eval compare -o json", more)))
	}
	return out
}

// caseRow is one changed case as the detail lists it: ✗ broke, ✓
// fixed.
type caseRow struct {
	Mark                          string
	Case                          string
	Critical                      bool
	Baseline, Candidate           string
	BaselineScore, CandidateScore float64
}

func (v *evalsView) runLines(now time.Time) []string {
	st := v.env.st
	if len(v.runs) == 0 {
		return []string{"", st.Dim.Render("No runs yet: gantry eval run --feature F --release V --dataset NAME")}
	}
	widths := layout(runCols, v.w)
	out := []string{"", st.Header.Render(headerRow(runCols, widths))}
	for _, r := range v.runs[:min(len(v.runs), v.runRows())] {
		s := r.Summary
		crit := fmt.Sprint(s.CriticalFailed)
		line := renderRow(runCols, widths, []string{s.RunID, fmt.Sprintf("%s@v%d", s.Feature, s.Release), fmt.Sprintf("%s v%d", s.Dataset, s.DatasetVersion),
			fmt.Sprintf("%d/%d", s.Passed, s.Cases), crit, ms(trace.Millis(s.P95Ms)), usd(s.CostUSD), age(now, r.Recorded)}, false)
		if s.CriticalFailed > 0 {
			line = st.Err.Render(line)
		}
		out = append(out, line)
	}
	return out
}

// canaryText is a feature's canary analysis in one line: what it decided
// and did, or how the live look stands. Empty when there is none.
func canaryText(c *api.Canary, now time.Time) string {
	if c == nil || !c.Analysed {
		return ""
	}
	if d := c.Decision; d != nil {
		switch c.Action {
		case "rolled_back":
			return fmt.Sprintf("ROLLED BACK v%d %s ago: %s", c.Canary, span(now.Sub(c.Decided)), clean(d.Reason, false))
		case "alerted":
			return fmt.Sprintf("REGRESSION of v%d (alert, still live) %s ago: %s", c.Canary, span(now.Sub(c.Decided)), clean(d.Reason, false))
		}
		return fmt.Sprintf("v%d passed %s ago: %s", c.Canary, span(now.Sub(c.Decided)), clean(d.Reason, false))
	}
	if c.Now != nil {
		return fmt.Sprintf("v%d %s, on regression %s: %s", c.Canary, c.Now.Outcome, c.OnRegression, clean(c.Now.Reason, false))
	}
	return ""
}

// gateText is where a release stands against its feature's promotion
// gate, in one short line. Empty when the feature has no gate.
func gateText(g *api.Gate) string {
	switch {
	case g == nil || !g.Gated:
		return ""
	case g.Verdict == nil:
		return fmt.Sprintf("on %s: no comparison yet, refused unless forced", g.Dataset)
	}
	s := fmt.Sprintf("on %s: %s vs v%d", g.Dataset, verdictWord(g.Verdict.Verdict.Verdict), g.Verdict.Baseline)
	if g.Refusal != "" {
		s += ", refused unless forced"
	}
	return s
}
