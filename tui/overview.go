package tui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/config"
)

// filterTracesMsg asks the App to show the traces view with a filter.
type filterTracesMsg struct{ Filter string }

// overviewView is the first screen: traffic, errors, latency and cost now,
// per feature, and which agents the console hears from.
type overviewView struct {
	env      *env
	w, h     int
	ov       *api.Overview
	ovErr    string // why the last round brought no overview
	members  *api.Members
	releases []api.Feature // labels and history, for canaries and recent moves
	alerts   *alertsView   // the worst alerts head the overview
	cur      list
}

func newOverviewView(e *env, alerts *alertsView) *overviewView {
	return &overviewView{env: e, alerts: alerts}
}

func (v *overviewView) Init() tea.Cmd    { return nil }
func (v *overviewView) SetSize(w, h int) { v.w, v.h = w, h }

func (v *overviewView) Actions() []Action {
	k := v.env.keys
	return append(navActions(k),
		Action{ID: ActOpen, Name: "traces of feature", Key: key.NewBinding(
			key.WithKeys(k.Open.Keys()...), key.WithHelp(k.Open.Help().Key, "feature's traces"))},
		Action{ID: ActRollback, Name: "roll back canary", Key: key.NewBinding(
			key.WithKeys(k.Rollback.Keys()...), key.WithHelp(k.Rollback.Help().Key, "roll back canary")), Dangerous: true})
}

func (v *overviewView) ShortHelp() []key.Binding {
	s, _ := helpOf(v.env, v.Actions())
	return s
}

func (v *overviewView) FullHelp() [][]key.Binding {
	_, f := helpOf(v.env, v.Actions())
	return f
}

func (v *overviewView) features() []api.FeatureStats {
	if v.ov == nil {
		return nil
	}
	return v.ov.Features
}

func (v *overviewView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case OverviewErrMsg:
		v.ovErr = msg.Err.Error()
	case OverviewMsg:
		v.ovErr = ""
		ov := api.Overview(msg)
		// Busiest first; names break ties so the order is stable.
		sort.SliceStable(ov.Features, func(i, j int) bool {
			a, b := ov.Features[i], ov.Features[j]
			if a.Requests != b.Requests {
				return a.Requests > b.Requests
			}
			return a.Feature < b.Feature
		})
		// Keep the cursor on the same feature after the re-sort.
		sel := ""
		if f := v.features(); v.cur.cursor < len(f) {
			sel = f[v.cur.cursor].Feature
		}
		v.ov = &ov
		for i, f := range ov.Features {
			if f.Feature == sel {
				v.cur.cursor = i
			}
		}
		v.cur.clamp(len(ov.Features), v.tableRows())
	case MembersMsg:
		m := api.Members(msg)
		v.members = &m
	case FeaturesMsg:
		v.releases = msg
	case actionMsg:
		switch msg.Action.ID {
		case ActOpen:
			if f := v.features(); len(f) > 0 {
				return v, func() tea.Msg { return filterTracesMsg{Filter: "feature:" + f[v.cur.cursor].Feature} }
			}
			return v, nil
		case ActRollback:
			// The canary under the feature table is the first thing to undo
			// when it is what broke; the dialog says what it will do.
			if f := v.features(); len(f) > 0 {
				return v, func() tea.Msg { return rollbackFeatureMsg{Feature: f[v.cur.cursor].Feature} }
			}
			return v, nil
		}
		v.cur.move(msg.Action.ID, len(v.features()), v.tableRows())
	}
	return v, nil
}

// tableRows leaves room under the feature table for canaries and recent
// label moves: after a bad rollout, those are the first questions.
func (v *overviewView) tableRows() int {
	return max(1, v.h-6-v.extraRows()-boolInt(v.ovErr != "")-v.alertRows()-v.totalRows())
}

// maxOverviewAlerts is how many alerts the overview lists: three, more on
// a tall terminal; the alerts view has them all.
func (v *overviewView) maxOverviewAlerts() int { return max(3, (v.h-12)/4) }

// alertRows is the height of the alerts block: a title and the worst few.
func (v *overviewView) alertRows() int {
	n := v.alerts.count()
	if n == 0 {
		return 0
	}
	return 1 + min(n, v.maxOverviewAlerts())
}

// totalRows are the rows under the features: calls no feature served, and
// all calls, so the rows add up to the error rate above them.
func (v *overviewView) totalRows() int {
	if v.ov == nil || v.ov.Totals.Requests == 0 {
		return 0
	}
	return 1 + boolInt(v.ov.NoFeature.Requests > 0)
}

func (v *overviewView) extraRows() int {
	return min(v.h/2, len(v.canaryLines())+len(v.recentMoves())+4)
}

var overviewCols = []column{
	{title: "FEATURE", width: 14, flex: true},
	{title: "REQ", width: 6, right: true},
	{title: "ERR%", width: 5, right: true},
	{title: "VAL", width: 4, right: true, drop: 3},
	{title: "FB+", width: 4, right: true, drop: 2},
	{title: "FB-", width: 4, right: true},
	{title: "P50", width: 7, right: true, drop: 4},
	{title: "P95", width: 7, right: true},
	{title: "TOKENS", width: 7, right: true, drop: 5},
	{title: "COST", width: 8, right: true},
}

func (v *overviewView) View() string {
	st := v.env.st
	now := v.env.now()
	var lines []string
	if v.ov == nil {
		lines = append(lines, st.Title.Render("Overview"))
		if v.ovErr != "" {
			lines = append(lines, st.Err.Render("No agent answers:"))
			for _, l := range wrap(clean(v.ovErr, false), v.w, "  ") {
				lines = append(lines, st.Err.Render(l))
			}
		} else {
			lines = append(lines, st.Dim.Render("Waiting for the first overview from the agents…"))
		}
		lines = append(lines, v.agentsLine())
		return fillLines(lines, v.h)
	}
	ov := v.ov
	lines = append(lines, st.Title.Render(fmt.Sprintf("Overview  from %s, last %s, updated %s", orDash(ov.Node), span(secs(ov.WindowSeconds)), ago(now, ov.Time))))
	if v.ovErr != "" {
		lines = append(lines, st.Err.Render(fitLine("! not updated: "+clean(v.ovErr, false), v.w)))
	}
	errs := pct(ov.ErrorRate)
	if ov.ErrorRate >= 0.05 {
		errs = st.Err.Render(errs + " !")
	}
	head := fmt.Sprintf("req/s %.1f  errors %s  p50 %s  p95 %s  cost/min %s", ov.RequestsPerSec, errs, ms(ov.P50), ms(ov.P95), usd(ov.CostPerMinute))
	if sl := sparkline(ov.CostSeries, max(0, v.w-len(head)-4)); sl != "" {
		head += "  " + sl
	}
	lines = append(lines, head, v.agentsLine())
	if n := v.alerts.count(); n > 0 {
		title := fmt.Sprintf("Alerts  %d", n)
		if c := v.alerts.critical(); c > 0 {
			title += fmt.Sprintf(", %d critical", c)
		}
		title += fmt.Sprintf(", worst first (%s lists them all)", v.env.keys.Alerts.Help().Key)
		lines = append(lines, st.Header.Render(fitLine(title, v.w)))
		lines = append(lines, v.alerts.alertLines(v.maxOverviewAlerts(), v.w)...)
	}
	lines = append(lines, "")

	widths := layout(overviewCols, v.w)
	lines = append(lines, st.Header.Render(headerRow(overviewCols, widths)))
	n := v.tableRows()
	v.cur.clamp(len(ov.Features), n)
	for i := v.cur.offset; i < len(ov.Features) && i < v.cur.offset+n; i++ {
		f := ov.Features[i]
		cells := []string{
			f.Feature, count(f.Requests), pct(f.ErrorRate()), count(f.ValidationFailures),
			count(f.FeedbackUp), count(f.FeedbackDown), ms(f.P50), ms(f.P95),
			count(f.InputTokens + f.OutputTokens), usd(f.CostUSD),
		}
		line := renderRow(overviewCols, widths, cells, i == v.cur.cursor)
		if i == v.cur.cursor {
			line = st.Selected.Render(line)
		}
		lines = append(lines, line)
	}
	if len(ov.Features) == 0 && ov.Totals.Requests == 0 {
		lines = append(lines, st.Dim.Render("  no traffic in the window"))
	}
	statsCells := func(name string, f api.Stats) []string {
		return []string{name, count(f.Requests), pct(f.ErrorRate()), count(f.ValidationFailures),
			count(f.FeedbackUp), count(f.FeedbackDown), ms(f.P50), ms(f.P95),
			count(f.InputTokens + f.OutputTokens), usd(f.CostUSD)}
	}
	if ov.NoFeature.Requests > 0 && ov.Totals.Requests > 0 {
		line := renderRow(overviewCols, widths, statsCells("(no feature)", ov.NoFeature), false)
		if ov.NoFeature.ErrorRate() >= 0.05 {
			line = st.Err.Render(line)
		}
		lines = append(lines, line)
	}
	if ov.Totals.Requests > 0 {
		lines = append(lines, st.Header.Render(renderRow(overviewCols, widths, statsCells("all calls", ov.Totals), false)))
	}
	if c := v.canaryLines(); len(c) > 0 {
		lines = append(lines, "", st.Header.Render("Canaries against production (↑ worse, ↓ better)"))
		lines = append(lines, c...)
	}
	if moves := v.recentMoves(); len(moves) > 0 {
		lines = append(lines, "", st.Header.Render("Recent label moves"))
		for _, m := range moves {
			lines = append(lines, fmt.Sprintf("  %-6s %s  %s", age(now, m.ch.Time), m.feature, moveText(m.ch)))
		}
	}
	return fillLines(lines, v.h)
}

// canaryLines compares each live canary with its production release, and
// says how the cluster's analysis of it stands.
func (v *overviewView) canaryLines() []string {
	if v.ov == nil {
		return nil
	}
	stats := map[string]api.ReleaseStats{}
	for _, r := range v.ov.Releases {
		stats[r.Release] = r
	}
	var out []string
	now := v.env.now()
	for _, f := range v.releases {
		an := canaryText(f.CanaryAnalysis, now)
		if f.Labels.Canary == 0 {
			// A canary the analysis rolled back within the hour stays in
			// view: it is the first thing to explain.
			if c := f.CanaryAnalysis; c != nil && c.Action == "rolled_back" && now.Sub(c.Decided) < time.Hour {
				out = append(out, v.env.st.Err.Render(fmt.Sprintf("  %s canary %s", f.Name, an)))
			}
			continue
		}
		c, okc := stats[fmt.Sprintf("%s@v%d", f.Name, f.Labels.Canary)]
		p, okp := stats[fmt.Sprintf("%s@v%d", f.Name, f.Labels.Production)]
		head := fmt.Sprintf("  %s canary v%d at %d%%, against production v%d:", f.Name, f.Labels.Canary, f.Labels.CanaryWeight, f.Labels.Production)
		if !okc || !okp || c.Requests == 0 || p.Requests == 0 {
			out = append(out, head+" no traffic yet")
		} else {
			out = append(out, head)
			cv, pv := rate(c.ValidationFailures, c.Requests), rate(p.ValidationFailures, p.Requests)
			cd, pd := rate(c.FeedbackDown, c.Requests), rate(p.FeedbackDown, p.Requests)
			line := fmt.Sprintf("    err %s%s/%s  val %s%s/%s  thumbs-down %s%s/%s  p95 %s%s/%s",
				pct(c.ErrorRate()), trend(c.ErrorRate(), p.ErrorRate(), 0.01), pct(p.ErrorRate()),
				pct(cv), trend(cv, pv, 0.01), pct(pv),
				pct(cd), trend(cd, pd, 0.01), pct(pd),
				ms(c.P95), trend(float64(c.P95), float64(p.P95), float64(p.P95)*0.2), ms(p.P95))
			out = append(out, line)
		}
		if an != "" {
			out = append(out, "    analysis: "+an)
		}
	}
	return out
}

// moveText tells one label move: who did what, from which release to
// which, and why.
func moveText(ch api.LabelChange) string {
	ver := func(n int) string {
		if n == 0 {
			return "none"
		}
		return fmt.Sprintf("v%d", n)
	}
	s := fmt.Sprintf("%s %s %s->%s", orDash(ch.Actor), ch.Action, ver(ch.From), ver(ch.To))
	if ch.Label == config.LabelCanary && ch.Weight > 0 {
		s += fmt.Sprintf(" at %d%%", ch.Weight)
	}
	if ch.Reason != "" {
		s += " \"" + clean(ch.Reason, false) + "\""
	}
	return s
}

type move struct {
	feature string
	ch      api.LabelChange
}

// recentMoves are the newest three label moves over all features.
func (v *overviewView) recentMoves() []move {
	var all []move
	for _, f := range v.releases {
		for _, h := range f.History {
			all = append(all, move{f.Name, h})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].ch.Time.After(all[j].ch.Time) })
	return all[:min(3, len(all))]
}

// agentsLine says who leads and which agents the console lost.
func (v *overviewView) agentsLine() string {
	var stale []string
	for a, s := range v.env.stale {
		if s {
			stale = append(stale, a)
		}
	}
	sort.Strings(stale)
	line := "agents "
	if v.members != nil {
		line += fmt.Sprintf("%d  leader %s", len(v.members.Members), orDash(v.members.Leader))
	} else {
		line += "?"
	}
	if len(stale) > 0 {
		line += v.env.st.Warn.Render(fmt.Sprintf("  STALE: %s (data from them may be old)", strings.Join(stale, ", ")))
	}
	return line
}
