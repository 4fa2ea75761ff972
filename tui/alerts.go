package tui

import (
	"fmt"
	"math"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
)

// alertsView lists what is wrong now, worst first: severity, since when,
// the numbers behind each alert and where it links. Enter follows the
// link; r on a canary's alert opens its rollback dialog.
type alertsView struct {
	env    *env
	w, h   int
	list   *api.Alerts
	seen   map[string]bool // alert ids already shown, for the bell
	err    string          // why no agent answered the last round
	cur    list
	anchor string // id of the selected alert
}

func newAlertsView(e *env) *alertsView { return &alertsView{env: e, seen: map[string]bool{}} }

func (v *alertsView) Init() tea.Cmd    { return nil }
func (v *alertsView) SetSize(w, h int) { v.w, v.h = w, h }

func (v *alertsView) Actions() []Action {
	k := v.env.keys
	return append(navActions(k),
		Action{ID: ActJump, Name: "follow", Key: key.NewBinding(key.WithKeys(k.Open.Keys()...), key.WithHelp(k.Open.Help().Key, "go to cause"))},
		Action{ID: ActRollback, Name: "roll back canary", Key: key.NewBinding(key.WithKeys(k.Rollback.Keys()...), key.WithHelp(k.Rollback.Help().Key, "roll back canary")), Dangerous: true},
	)
}

func (v *alertsView) ShortHelp() []key.Binding {
	s, _ := helpOf(v.env, v.Actions())
	return s
}

func (v *alertsView) FullHelp() [][]key.Binding {
	_, f := helpOf(v.env, v.Actions())
	return f
}

func (v *alertsView) notes() []string {
	return []string{"", "  enter shows what explains the selected alert: its traces, model, budget, members or release;",
		"  r on a canary's alert asks to roll that canary back, as r in the releases view does"}
}

func (v *alertsView) alerts() []api.Alert {
	if v.list == nil {
		return nil
	}
	return v.list.Alerts
}

func (v *alertsView) count() int { return len(v.alerts()) }

func (v *alertsView) critical() int {
	n := 0
	for _, a := range v.alerts() {
		if a.Severity == api.SeverityCritical {
			n++
		}
	}
	return n
}

// take stores the latest alerts and reports whether a critical one is new
// since the last list: the bell rings for that, not for every poll.
func (v *alertsView) take(l api.Alerts) bool {
	l.Alerts = append([]api.Alert(nil), l.Alerts...)
	api.SortAlerts(l.Alerts)
	first := v.list == nil
	v.list, v.err = &l, ""
	fresh := false
	now := map[string]bool{}
	for _, a := range l.Alerts {
		now[a.ID] = true
		if !v.seen[a.ID] && a.Severity == api.SeverityCritical && !first {
			fresh = true
		}
	}
	// An alert that clears and comes back rings again.
	v.seen = now
	v.cur.clamp(len(l.Alerts), v.rows())
	for i, a := range l.Alerts {
		if a.ID == v.anchor {
			v.cur.cursor = i
		}
	}
	v.cur.clamp(len(l.Alerts), v.rows())
	if len(l.Alerts) > 0 {
		v.anchor = l.Alerts[v.cur.cursor].ID
	}
	return fresh
}

func (v *alertsView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, ok := msg.(actionMsg)
	if !ok {
		return v, nil
	}
	as := v.alerts()
	switch m.Action.ID {
	case ActJump:
		if len(as) == 0 {
			return v, nil
		}
		link := as[v.cur.cursor].Link
		return v, func() tea.Msg { return linkMsg{Link: link} }
	case ActRollback:
		if len(as) == 0 {
			return v, nil
		}
		f := canaryFeature(as[v.cur.cursor])
		if f == "" {
			return v, status("the selected alert is not about a canary: nothing to roll back", true)
		}
		return v, func() tea.Msg { return rollbackFeatureMsg{Feature: f} }
	}
	v.cur.move(m.Action.ID, len(as), v.rows())
	if len(as) > 0 {
		v.anchor = as[v.cur.cursor].ID
	}
	return v, nil
}

// canaryFeature is the feature a canary alert is about: its subject
// (feature/NAME or release/NAME@vN) or its link's feature.
func canaryFeature(a api.Alert) string {
	if a.Kind != api.AlertCanaryFail {
		return ""
	}
	kind, name, _ := strings.Cut(a.Subject, "/")
	switch kind {
	case "feature":
		return name
	case "release":
		f, _, _ := strings.Cut(name, "@")
		return f
	}
	if _, q, ok := strings.Cut(a.Link, "feature="); ok {
		f, _, _ := strings.Cut(q, "&")
		return f
	}
	return ""
}

// rows is how many alerts fit: each takes two lines.
func (v *alertsView) rows() int { return max(1, (v.h-2)/2) }

// severityWord is the severity as the tables show it: a word, so it reads
// without colour.
func severityWord(s string) string {
	switch s {
	case api.SeverityCritical:
		return "CRIT"
	case api.SeverityWarning:
		return "WARN"
	case api.SeverityInfo:
		return "INFO"
	}
	return strings.ToUpper(s)
}

var alertCols = []column{
	{title: "SEV", width: 4},
	{title: "SINCE", width: 6, right: true},
	{title: "KIND", width: 16, drop: 2},
	{title: "SUBJECT", width: 20, flex: true},
	{title: "NODE", width: 8, drop: 3},
	{title: "LINK", width: 24, drop: 1},
}

func (v *alertsView) View() string {
	st := v.env.st
	now := v.env.now()
	if v.list == nil {
		if v.err != "" {
			return fillLines(append([]string{st.Title.Render("Alerts"), st.Err.Render("No agent answers for alerts:")},
				wrap(clean(v.err, false), v.w, "  ")...), v.h)
		}
		return fillLines([]string{st.Title.Render("Alerts"), st.Dim.Render("Waiting for the agents' alerts…")}, v.h)
	}
	as := v.alerts()
	title := fmt.Sprintf("Alerts  %d, worst first", len(as))
	if c := v.critical(); c > 0 {
		title += fmt.Sprintf("  %d critical", c)
	}
	lines := []string{st.Title.Render(title)}
	if v.err != "" {
		lines = append(lines, st.Err.Render(fitLine("! not updated: "+clean(v.err, false), v.w)))
	}
	widths := layout(alertCols, v.w)
	lines = append(lines, st.Header.Render(headerRow(alertCols, widths)))
	if len(as) == 0 {
		lines = append(lines, st.OK.Render("  nothing is wrong that the agents can see"))
	}
	n := v.rows()
	v.cur.clamp(len(as), n)
	for i := v.cur.offset; i < len(as) && i < v.cur.offset+n; i++ {
		a := as[i]
		cells := []string{severityWord(a.Severity), age(now, a.Since), a.Kind, a.Subject, a.Node, a.Link}
		line := renderRow(alertCols, widths, cells, i == v.cur.cursor)
		detail := "    " + clean(a.Summary, false)
		if nums := numbersText(a.Numbers); nums != "" {
			detail += "  [" + nums + "]"
		}
		detail = fitLine(detail, v.w)
		switch {
		case i == v.cur.cursor:
			line = st.Selected.Render(line)
		case a.Severity == api.SeverityCritical:
			line = st.Err.Render(line)
		case a.Severity == api.SeverityWarning:
			line = st.Warn.Render(line)
		}
		lines = append(lines, line, detail)
	}
	return fillLines(lines, v.h)
}

// numbersText shows an alert's figures with their units and thresholds,
// e.g. "error_rate 42% > 5%, calls 120".
func numbersText(ns []api.AlertNumber) string {
	var parts []string
	for _, n := range ns {
		s := clean(n.Name, false) + " " + numberText(n.Value, n.Unit)
		if n.Threshold != 0 {
			s += " (limit " + numberText(n.Threshold, n.Unit) + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func numberText(v float64, unit string) string {
	switch unit {
	case "ratio":
		return pct(v)
	case "ms":
		return ms(msOf(v))
	case "usd":
		return usd(v)
	case "usd/h":
		return usd(v) + "/h"
	case "s":
		return span(secsF(v))
	case "bytes":
		return bytesText(v)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func bytesText(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.0f%s", v, units[i])
}

// alertLines are the worst alerts for the overview, one line each.
func (v *alertsView) alertLines(n, w int) []string {
	st := v.env.st
	now := v.env.now()
	var out []string
	for i, a := range v.alerts() {
		if i == n {
			break
		}
		line := fmt.Sprintf("  %s %6s  %s", severityWord(a.Severity), age(now, a.Since), clean(a.Summary, false))
		line = fitLine(line, w)
		if a.Severity == api.SeverityCritical {
			line = st.Err.Render(line)
		}
		out = append(out, line)
	}
	return out
}
