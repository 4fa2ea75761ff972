package tui

import (
	"net/url"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
)

// linkMsg asks the App to follow an alert's link: a view name and its
// filter as a query, e.g. "traces?model=gpt-4o&status=error".
type linkMsg struct{ Link string }

// rollbackFeatureMsg asks the App to open the rollback dialog of a
// feature, as the releases view would with its row selected.
type rollbackFeatureMsg struct{ Feature string }

// linkViews are the views a link may name, with the names agents use.
var linkViews = map[string]ViewID{
	"overview": ViewOverview, "traces": ViewTraces, "costs": ViewCosts, "budgets": ViewCosts,
	"releases": ViewReleases, "cluster": ViewCluster, "members": ViewCluster,
	"alerts": ViewAlerts, "health": ViewHealth, "models": ViewHealth, "audit": ViewAudit,
}

// follow shows the view a link names, filtered as it says. A link this
// console does not know says so rather than doing nothing.
func (a *App) follow(link string) tea.Cmd {
	u, err := url.Parse(link)
	name := strings.Trim(link, "/")
	var q url.Values
	if err == nil {
		name, q = strings.Trim(u.Path, "/"), u.Query()
	}
	id, ok := linkViews[name]
	if !ok {
		a.setStatus("the alert links to "+clean(link, false)+", which this console has no view for", true)
		return nil
	}
	switch id {
	case ViewTraces:
		a.show(ViewTraces)
		switch by := q.Get("sort"); by {
		case api.SortTime, api.SortDuration, api.SortCost:
			a.traces.sortBy, a.traces.sortStale = by, true
		}
		a.traces.setFilter(filterFromQuery(q))
		return a.traces.search()
	case ViewReleases:
		a.show(ViewReleases)
		if f := q.Get("feature"); f != "" {
			a.releases.selectFeature(f)
		}
	case ViewHealth:
		if m := q.Get("model"); m != "" {
			a.health.selectModel(m)
		}
		return a.open(ViewHealth)
	case ViewAudit:
		a.audit.setFilter(auditFilterFromQuery(q))
		return a.open(ViewAudit)
	default:
		a.show(id)
	}
	return nil
}

// filterFromQuery turns a trace-list query, as links carry it, into the
// text of the traces filter, so the operator sees and can edit what the
// link chose.
func filterFromQuery(q url.Values) string {
	var terms []string
	add := func(field, v string) {
		if v = strings.TrimSpace(v); v != "" && !strings.ContainsAny(v, " \t") {
			terms = append(terms, field+":"+v)
		}
	}
	for _, p := range []struct{ param, field string }{
		{"feature", "feature"}, {"release", "release"}, {"model", "model"}, {"provider", "provider"},
		{"status", "status"}, {"node", "node"}, {"user", "user"}, {"key_fp", "fp"}, {"error_kind", "kind"},
	} {
		add(p.field, q.Get(p.param))
	}
	if d, err := time.ParseDuration(q.Get("min_duration")); err == nil && d > 0 {
		add("dur", ">="+d.String())
	}
	if d, err := time.ParseDuration(q.Get("max_duration")); err == nil && d > 0 {
		add("dur", "<="+d.String())
	}
	add("cost", prefixed(">=", q.Get("min_cost")))
	add("cost", prefixed("<=", q.Get("max_cost")))
	for _, w := range strings.Fields(q.Get("q")) {
		if !strings.Contains(w, ":") {
			terms = append(terms, w)
		}
	}
	return strings.Join(terms, " ")
}

func prefixed(p, v string) string {
	if v == "" {
		return ""
	}
	return p + v
}

// auditFilterFromQuery is filterFromQuery for the audit log.
func auditFilterFromQuery(q url.Values) string {
	var terms []string
	for _, f := range []string{"actor", "kind", "object"} {
		if v := q.Get(f); v != "" && !strings.ContainsAny(v, " \t") {
			terms = append(terms, f+":"+v)
		}
	}
	return strings.Join(terms, " ")
}

// open shows a view and asks for what only it shows, read on demand: the
// audit log its filter wants, the model health once.
func (a *App) open(id ViewID) tea.Cmd {
	a.show(id)
	switch id {
	case ViewAudit:
		return a.audit.request()
	case ViewHealth:
		if !a.healthAsked {
			a.healthAsked = true
			return func() tea.Msg { return HealthRequest{} }
		}
	}
	return nil
}
