package tui

import (
	"fmt"
	"sort"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"gantry/api"
)

// spendDims are the groupings of the spend table, in tab order; after
// them the tab shows what a good answer costs by release.
var spendDims = []string{api.DimFeature, api.DimTeam, api.DimKey, api.DimModel}

// goodTab is the tab after the spend dimensions.
var goodTab = len(spendDims)

// tabName names a tab of the lower table.
func tabName(i int) string {
	if i == goodTab {
		return "good answer"
	}
	return spendDims[i]
}

// costsView shows each budget's use as a bar with its burn rate and when it
// runs out at that rate, and the window's spend by feature, team, key or
// model.
type costsView struct {
	env     *env
	w, h    int
	b       *api.Budgets
	series  []float64 // overall cost per minute, from the overview
	dim     int
	cur     list
	good    []api.CostRow // by release, asked for once the tab is shown
	asked   bool
	goodErr string // why no agent answered for good, until one does
}

func newCostsView(e *env) *costsView { return &costsView{env: e} }

func (v *costsView) Init() tea.Cmd    { return nil }
func (v *costsView) SetSize(w, h int) { v.w, v.h = w, h }

func (v *costsView) Actions() []Action {
	return append(navActions(v.env.keys),
		Action{ID: ActNextTab, Name: "next spend grouping", Key: key.NewBinding(
			key.WithKeys(v.env.keys.NextTab.Keys()...), key.WithHelp(v.env.keys.NextTab.Help().Key, "spend by…"))})
}

func (v *costsView) ShortHelp() []key.Binding {
	s, _ := helpOf(v.env, v.Actions())
	return s
}

func (v *costsView) FullHelp() [][]key.Binding {
	_, f := helpOf(v.env, v.Actions())
	return f
}

func (v *costsView) budgets() []api.Budget {
	if v.b == nil {
		return nil
	}
	return v.b.Budgets
}

// budgetRows is how many budget rows fit; the spend table gets the rest.
func (v *costsView) budgetRows() int { return max(1, min(len(v.budgets()), (v.h-4)/2)) }

func (v *costsView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case BudgetsMsg:
		sel := ""
		if b := v.budgets(); v.cur.cursor < len(b) {
			sel = b[v.cur.cursor].Name
		}
		b := api.Budgets(msg)
		// Closest to exhaustion first: that is what pages someone.
		sort.SliceStable(b.Budgets, func(i, j int) bool {
			ui, uj := b.Budgets[i].Used(), b.Budgets[j].Used()
			if ui != uj {
				return ui > uj
			}
			return b.Budgets[i].Name < b.Budgets[j].Name
		})
		v.b = &b
		for i, x := range b.Budgets {
			if x.Name == sel {
				v.cur.cursor = i
			}
		}
		v.cur.clamp(len(b.Budgets), v.budgetRows())
	case OverviewMsg:
		v.series = msg.CostSeries
	case CostsMsg:
		v.good, v.goodErr = msg, ""
	case actionMsg:
		if msg.Action.ID == ActNextTab {
			v.dim = (v.dim + 1) % (goodTab + 1)
			if v.dim == goodTab && !v.asked {
				// Each agent adds a day of buckets up for it: asked for
				// only once someone looks.
				v.asked = true
				return v, func() tea.Msg { return CostsRequest{} }
			}
			return v, nil
		}
		v.cur.move(msg.Action.ID, len(v.budgets()), v.budgetRows())
	}
	return v, nil
}

var budgetCols = []column{
	{title: "BUDGET", width: 12, flex: true},
	{title: "SCOPE", width: 14, drop: 3},
	{title: "PERIOD", width: 6, drop: 4},
	{title: "USED", width: 15},
	{title: "SPENT/LIMIT", width: 13, right: true},
	{title: "BURN/H", width: 7, right: true},
	{title: "RUNS OUT", width: 9, right: true},
	{title: "PER MINUTE", width: 12, drop: 2},
}

var spendCols = []column{
	{title: "NAME", width: 16, flex: true},
	{title: "REQ", width: 7, right: true},
	{title: "TOKENS", width: 8, right: true},
	{title: "COST", width: 9, right: true},
	{title: "SHARE", width: 16, drop: 1},
}

func (v *costsView) View() string {
	st := v.env.st
	now := v.env.now()
	var lines []string
	title := "Costs & budgets"
	if v.b != nil {
		title += fmt.Sprintf("  last %s, updated %s", span(secs(v.b.WindowSeconds)), ago(now, v.b.Time))
	}
	lines = append(lines, st.Title.Render(title))
	if len(v.series) > 0 {
		lines = append(lines, fmt.Sprintf("cost per minute, all agents: now %s  %s", usd(v.series[len(v.series)-1]), sparkline(v.series, max(0, v.w-45))))
	}
	if v.b == nil {
		lines = append(lines, st.Dim.Render("Waiting for budgets from the agents…"))
		return fillLines(lines, v.h)
	}

	widths := layout(budgetCols, v.w)
	lines = append(lines, st.Header.Render(headerRow(budgetCols, widths)))
	n := v.budgetRows()
	v.cur.clamp(len(v.b.Budgets), n)
	for i := v.cur.offset; i < len(v.b.Budgets) && i < v.cur.offset+n; i++ {
		b := v.b.Budgets[i]
		scope := b.Scope
		if b.Match != "" {
			scope += ":" + b.Match
		}
		used := b.Used()
		usedCell := bar(used, 9) + " " + fit(pct(used), 4, true)
		runsOut := "-"
		switch {
		case used >= 1:
			runsOut = "SPENT"
		case b.Exhausts != nil:
			runsOut = "in " + span(b.Exhausts.Sub(now))
		}
		cells := []string{
			b.Name, scope, b.Period, usedCell,
			usd(b.SpentUSD) + "/" + usd(b.LimitUSD),
			usd(b.BurnPerHour), runsOut, sparkline(b.CostSeries, 12),
		}
		line := renderRow(budgetCols, widths, cells, i == v.cur.cursor)
		switch {
		case i == v.cur.cursor:
			line = st.Selected.Render(line)
		case used >= 0.9 || b.Exhausts != nil && b.Exhausts.Sub(now) < 3600e9:
			line = st.Err.Render(line)
		case used >= 0.75:
			line = st.Warn.Render(line)
		}
		lines = append(lines, line)
	}
	if len(v.b.Budgets) == 0 {
		lines = append(lines, st.Dim.Render("  no budgets configured"))
	}
	if c := v.cur.cursor; c < len(v.b.Budgets) && v.b.Budgets[c].Cluster != nil {
		lines = append(lines, fit(grantsLine(v.b.Budgets[c]), v.w, false))
	}

	if v.dim == goodTab {
		return fillLines(append(lines, v.goodAnswers()...), v.h)
	}
	dim := spendDims[v.dim]
	var rows []api.Spend
	total := 0.0
	var unpriced int64
	for _, s := range v.b.Spend {
		if s.Dimension == dim {
			rows = append(rows, s)
			total += s.CostUSD
			unpriced += s.Unpriced
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].CostUSD != rows[j].CostUSD {
			return rows[i].CostUSD > rows[j].CostUSD
		}
		return rows[i].Name < rows[j].Name
	})
	totalText := usd(total)
	if unpriced > 0 {
		// Calls to models of unknown price cost something nobody knows:
		// the total is a lower bound, not the spend.
		totalText += fmt.Sprintf(" + %s calls of unknown price", count(unpriced))
	}
	head := fmt.Sprintf("Spend by %s  (%s: by %s)  total %s", dim, v.env.keys.NextTab.Help().Key, tabName(v.dim+1), totalText)
	if ansi.StringWidth(head) > v.w {
		head = fit(head, v.w, false)
	}
	lines = append(lines, "", st.Header.Render(head))
	sw := layout(spendCols, v.w)
	lines = append(lines, st.Header.Render(headerRow(spendCols, sw)))
	room := v.h - len(lines)
	for i, s := range rows {
		if i >= room {
			break
		}
		share := 0.0
		if total > 0 {
			share = s.CostUSD / total
		}
		cost := usd(s.CostUSD)
		switch {
		case s.Unpriced == s.Requests:
			cost = "unknown"
		case s.Unpriced > 0:
			cost += "+?"
		}
		lines = append(lines, renderRow(spendCols, sw, []string{
			s.Name, count(s.Requests), count(s.Tokens), cost, bar(share, 10) + " " + pct(share),
		}, false))
	}
	if len(rows) == 0 {
		lines = append(lines, st.Dim.Render("  no spend in the window"))
	}
	return fillLines(lines, v.h)
}

var goodCols = []column{
	{title: "RELEASE", width: 16, flex: true},
	{title: "CALLS", width: 7, right: true},
	{title: "COST", width: 9, right: true},
	{title: "PER CALL", width: 9, right: true},
	{title: "PER VALID", width: 9, right: true},
	{title: "PER GOOD", width: 9, right: true},
	{title: "PER CASE", width: 9, right: true, drop: 2},
	{title: "ESCALATED", width: 9, right: true, drop: 1},
}

// goodAnswers is the lower table's last tab: what a call, a validated
// answer, an answer nobody disliked and a passing evaluation case cost,
// by release, over the last day of every agent's calls.
func (v *costsView) goodAnswers() []string {
	st := v.env.st
	head := fmt.Sprintf("Cost per good answer by release, last 24h  (%s: by %s)", v.env.keys.NextTab.Help().Key, tabName(0))
	lines := []string{"", st.Header.Render(fit(head, v.w, false))}
	switch {
	case v.good == nil && v.goodErr != "":
		return append(lines, st.Err.Render(fit("  no agent answered: "+v.goodErr, v.w, false)))
	case v.good == nil:
		return append(lines, st.Dim.Render("  waiting for the agents' cost tables…"))
	}
	w := layout(goodCols, v.w)
	lines = append(lines, st.Header.Render(headerRow(goodCols, w)))
	per := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return usd(*p)
	}
	room := v.h - len(lines) - 4
	for i, r := range v.good {
		if i >= room {
			break
		}
		esc := "-"
		if r.EscalationRate != nil {
			esc = pct(*r.EscalationRate)
		}
		lines = append(lines, renderRow(goodCols, w, []string{
			r.Group, count(r.Calls), usd(r.CostUSD), per(r.CostPerCallUSD), per(r.CostPerValidatedUSD),
			per(r.CostPerGoodUSD), per(r.CostPerPassingCaseUSD), esc,
		}, false))
	}
	if len(v.good) == 0 {
		lines = append(lines, st.Dim.Render("  no calls in the last day"))
	}
	return lines
}

// grantsLine tells, for a budget the cluster shares, whose burn rate the
// table shows, what is left to grant and what each agent still holds of
// its grant: where the rest of the budget sits when one agent refuses
// calls.
func grantsLine(b api.Budget) string {
	c := b.Cluster
	burn := "burn/h of this agent's calls"
	if c.BurnPerHour > 0 {
		burn = "burn/h of the cluster's spend"
	}
	s := fmt.Sprintf("  %s across the cluster (%s): %s left to grant", b.Name, burn, usd(c.AvailableUSD))
	if len(c.Grants) == 0 {
		return s + ", no agent holds a grant"
	}
	s += "; held"
	for _, g := range c.Grants {
		s += fmt.Sprintf(" %s %s", g.Agent, usd(max(0, g.GrantedUSD-g.UsedUSD)))
	}
	return s
}
