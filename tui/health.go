package tui

import (
	"fmt"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
)

// healthView shows each model and provider over the window: circuit
// breaker, error rate and the kinds of errors, latency and time to first
// token, retries and fallbacks, and totals that count every call, the
// ones no feature served included. Enter shows a model's traces.
type healthView struct {
	env    *env
	w, h   int
	hl     *api.Health
	err    string // why no agent answered the last round
	cur    list
	anchor string // model under the cursor
}

func newHealthView(e *env) *healthView { return &healthView{env: e} }

func (v *healthView) Init() tea.Cmd    { return nil }
func (v *healthView) SetSize(w, h int) { v.w, v.h = w, h }

func (v *healthView) Actions() []Action {
	k := v.env.keys
	return append(navActions(k),
		Action{ID: ActJump, Name: "model's traces", Key: key.NewBinding(key.WithKeys(k.Open.Keys()...), key.WithHelp(k.Open.Help().Key, "model's traces"))})
}

func (v *healthView) ShortHelp() []key.Binding {
	s, _ := helpOf(v.env, v.Actions())
	return s
}

func (v *healthView) FullHelp() [][]key.Binding {
	_, f := helpOf(v.env, v.Actions())
	return f
}

func (v *healthView) notes() []string {
	return []string{"",
		"  BREAKER closed, half-open (trying again) or OPEN (calls skip the model); the worst any agent reports",
		"  ERR% failed attempts per attempt; KINDS the commonest error kinds; RETRY attempts after the first;",
		"  FALLBK calls that moved on to another model; TTFT time to first token of streams",
		"  p50 and p95 of several agents are the slowest agent's: percentiles do not add up"}
}

func (v *healthView) models() []api.ModelHealth {
	if v.hl == nil {
		return nil
	}
	return v.hl.Models
}

func (v *healthView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case HealthMsg:
		h := api.Health(msg)
		h.Models = append([]api.ModelHealth(nil), h.Models...)
		// Open breakers first, then by error rate, then by name.
		sort.SliceStable(h.Models, func(i, j int) bool {
			a, b := h.Models[i], h.Models[j]
			if ra, rb := breakerOrder(a.Breaker), breakerOrder(b.Breaker); ra != rb {
				return ra < rb
			}
			if a.ErrorRate != b.ErrorRate {
				return a.ErrorRate > b.ErrorRate
			}
			return a.Model < b.Model
		})
		v.hl, v.err = &h, ""
		v.selectModel(v.anchor)
	case actionMsg:
		ms := v.models()
		if msg.Action.ID == ActJump {
			if len(ms) == 0 {
				return v, nil
			}
			return v, func() tea.Msg { return filterTracesMsg{Filter: "model:" + ms[v.cur.cursor].Model} }
		}
		v.cur.move(msg.Action.ID, len(ms), v.tableRows())
		if len(ms) > 0 {
			v.anchor = ms[v.cur.cursor].Model
		}
	}
	return v, nil
}

// selectModel puts the cursor on a model, if listed.
func (v *healthView) selectModel(name string) {
	v.anchor = name
	for i, m := range v.models() {
		if m.Model == name {
			v.cur.cursor = i
		}
	}
	v.cur.clamp(len(v.models()), v.tableRows())
}

func breakerOrder(s string) int {
	switch s {
	case api.BreakerOpen:
		return 0
	case api.BreakerHalfOpen:
		return 1
	}
	return 2
}

func (v *healthView) providerRows() int {
	if v.hl == nil {
		return 0
	}
	return min(len(v.hl.Providers), max(1, (v.h-8)/3))
}

func (v *healthView) tableRows() int { return max(1, v.h-7-v.providerRows()) }

var modelHealthCols = []column{
	{title: "MODEL", width: 14, flex: true},
	{title: "PROVIDER", width: 10, drop: 3},
	{title: "BREAKER", width: 9},
	{title: "CALLS", width: 6, right: true},
	{title: "ERR%", width: 5, right: true},
	{title: "KINDS", width: 18, drop: 2},
	{title: "P50", width: 7, right: true, drop: 4},
	{title: "P95", width: 7, right: true},
	{title: "TTFT95", width: 7, right: true, drop: 5},
	{title: "RETRY", width: 5, right: true, drop: 6},
	{title: "FALLBK", width: 6, right: true, drop: 1},
}

func healthCells(name, provider, breaker string, s api.HealthStats) []string {
	return []string{name, provider, breakerWord(breaker), count(s.Calls), pct(s.ErrorRate), kindsText(s.ErrorsByKind, 2),
		ms(msOf(s.P50)), ms(msOf(s.P95)), ms(msOf(s.TTFTP95)), count(s.Retries), count(s.Fallbacks)}
}

func breakerWord(s string) string {
	if s == api.BreakerOpen {
		return "OPEN"
	}
	return s
}

// kindsText is the n commonest error kinds with their counts.
func kindsText(m map[string]int64, n int) string {
	type kc struct {
		k string
		c int64
	}
	var ks []kc
	for k, c := range m {
		ks = append(ks, kc{k, c})
	}
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].c != ks[j].c {
			return ks[i].c > ks[j].c
		}
		return ks[i].k < ks[j].k
	})
	var parts []string
	for i, x := range ks {
		if i == n {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", x.k, x.c))
	}
	return strings.Join(parts, " ")
}

func (v *healthView) View() string {
	st := v.env.st
	if v.hl == nil {
		if v.err != "" {
			return fillLines(append([]string{st.Title.Render("Health"), st.Err.Render("No agent answers for model health:")},
				wrap(clean(v.err, false), v.w, "  ")...), v.h)
		}
		return fillLines([]string{st.Title.Render("Health"), st.Dim.Render("Waiting for the agents' model health…")}, v.h)
	}
	h := v.hl
	lines := []string{st.Title.Render(fmt.Sprintf("Health of models and providers  from %s, last %s, updated %s",
		orDash(h.Node), span(secs(h.WindowSeconds)), ago(v.env.now(), h.Time)))}
	t := h.Totals
	total := fmt.Sprintf("all calls %s  errors %s", count(t.Calls), pct(t.ErrorRate))
	if k := kindsText(t.ErrorsByKind, 3); k != "" {
		total += " (" + k + ")"
	}
	total += fmt.Sprintf("  p95 %s  retries %s  fallbacks %s", ms(msOf(t.P95)), count(t.Retries), count(t.Fallbacks))
	lines = append(lines, fitLine(total, v.w), st.Dim.Render(fitLine("  all calls count the ones no feature served: plain model calls and refused ones", v.w)))

	widths := layout(modelHealthCols, v.w)
	lines = append(lines, st.Header.Render(headerRow(modelHealthCols, widths)))
	ms := h.Models
	n := v.tableRows()
	v.cur.clamp(len(ms), n)
	if len(ms) == 0 {
		lines = append(lines, st.Dim.Render("  no model calls in the window"))
	}
	for i := v.cur.offset; i < len(ms) && i < v.cur.offset+n; i++ {
		m := ms[i]
		line := renderRow(modelHealthCols, widths, healthCells(m.Model, m.Provider, m.Breaker, m.HealthStats), i == v.cur.cursor)
		switch {
		case i == v.cur.cursor:
			line = st.Selected.Render(line)
		case m.Breaker == api.BreakerOpen:
			line = st.Err.Render(line)
		case m.Breaker == api.BreakerHalfOpen:
			line = st.Warn.Render(line)
		}
		lines = append(lines, line)
	}
	if pr := v.providerRows(); pr > 0 {
		cols := append([]column{{title: "PROVIDER", width: 14, flex: true}}, modelHealthCols[3:]...)
		pw := layout(cols, v.w)
		lines = append(lines, "", st.Header.Render(headerRow(cols, pw)))
		for _, p := range h.Providers[:pr] {
			cells := healthCells(p.Provider, "", "", p.HealthStats)
			lines = append(lines, renderRow(cols, pw, append(cells[:1:1], cells[3:]...), false))
		}
	}
	return fillLines(lines, v.h)
}
