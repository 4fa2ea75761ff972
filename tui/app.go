// Package tui is Gantry's on-call console: bubbletea models for the
// overview, the live trace table, a trace's span waterfall, costs and
// budgets, releases with diff, promote, rollback and canary weight, the
// cluster's members, a command log, the alerts, model and provider health,
// and the cluster's audit log.
//
// The package does no I/O. The console program feeds it data as messages
// (TracesMsg, OverviewMsg, FeaturesMsg, …) and executes what comes out of
// it: TraceRequest, DiffRequest and ActionRequest values produced by the
// commands App returns. Results go back in as TraceMsg, DiffMsg and
// ActionResultMsg.
//
// Every changing action is confirmed in a dialog that opens on Cancel, and
// read-only mode removes changing actions in one place, App.dispatch.
package tui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"gantry/api"
	"gantry/pipeline/trace"
)

// Minimum terminal size; below it the console says so instead of drawing a
// broken screen.
const (
	MinWidth  = 60
	MinHeight = 16
)

// ViewID names a view.
type ViewID int

// Views of the console.
const (
	ViewOverview ViewID = iota
	ViewTraces
	ViewTrace
	ViewCosts
	ViewReleases
	ViewCluster
	ViewLog
	ViewEvals
	ViewAlerts
	ViewHealth
	ViewAudit
)

// viewNames are the names : accepts, in tab order; aliases follow.
var viewNames = []struct {
	name string
	id   ViewID
	tab  bool
}{
	{"overview", ViewOverview, true},
	{"traces", ViewTraces, true},
	{"costs", ViewCosts, true},
	{"releases", ViewReleases, true},
	{"cluster", ViewCluster, true},
	{"log", ViewLog, true},
	{"alerts", ViewAlerts, true},
	{"health", ViewHealth, true},
	{"audit", ViewAudit, true},
	{"trace", ViewTrace, false},
	{"models", ViewHealth, false},
	{"providers", ViewHealth, false},
	{"budgets", ViewCosts, false},
	{"members", ViewCluster, false},
	{"evals", ViewEvals, false},
	{"evaluations", ViewEvals, false},
}

// commands are what : completes, besides view names.
var commands = []string{"help", "quit"}

func (id ViewID) String() string {
	for _, v := range viewNames {
		if v.id == id {
			return v.name
		}
	}
	return "?"
}

// Options configure an App.
type Options struct {
	// ReadOnly removes every action that changes the cluster.
	ReadOnly bool
	// Renderer draws the styles; over SSH, one per session. Nil is
	// lipgloss's default renderer.
	Renderer *lipgloss.Renderer
	// Now is the clock; nil is time.Now. Tests fix it.
	Now func() time.Time
	// Location is where times are shown; nil is time.Local.
	Location *time.Location
	// Keys replaces the default key map.
	Keys *KeyMap
	// MaxTraces bounds the live trace table; 0 is DefaultMaxTraces.
	MaxTraces int
	// Context names what the console is connected to, for the header.
	Context string
	// Bell rings the terminal's bell (a BellRequest) when a critical
	// alert appears that was not there before.
	Bell bool
	// FeedBatch holds TracesMsg rows and applies them at most once per
	// interval, so a console that sends one message per trace still costs
	// one table update and one redraw per interval. 0 is DefaultFeedBatch;
	// negative applies every message at once.
	FeedBatch time.Duration
}

// DefaultFeedBatch is how often held feed rows are applied.
const DefaultFeedBatch = 100 * time.Millisecond

// feedFlushMsg applies the held feed rows.
type feedFlushMsg struct{}

// App is the console's root model.
type App struct {
	env     *env
	context string
	w, h    int

	overview *overviewView
	traces   *tracesView
	trace    *traceView
	costs    *costsView
	releases *releasesView
	cluster  *clusterView
	log      *logView
	evals    *evalsView
	alerts   *alertsView
	health   *healthView
	audit    *auditView
	bell     bool

	healthAsked bool // the model health was asked for once

	cur     ViewID
	history []ViewID

	showHelp  bool
	helpOff   int // first line of the ? screen shown
	cmdline   bool
	cmd       []rune
	dialog    *confirmDialog
	statusTxt string
	statusErr bool
	help      help.Model

	feedBatch   time.Duration
	pending     []trace.Summary
	flushQueued bool

	// frame is the last screen drawn; bubbletea calls View after every
	// message, and held feed rows change nothing on screen.
	frame string
	dirty bool
}

var _ tea.Model = (*App)(nil)

// New returns an App showing the overview.
func New(o Options) *App {
	e := &env{
		keys:     DefaultKeyMap(),
		st:       NewStyles(o.Renderer),
		now:      o.Now,
		loc:      o.Location,
		readOnly: o.ReadOnly,
		stale:    map[string]bool{},
	}
	if o.Keys != nil {
		e.keys = *o.Keys
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.loc == nil {
		e.loc = time.Local
	}
	alerts := newAlertsView(e)
	a := &App{
		env:      e,
		context:  o.Context,
		overview: newOverviewView(e, alerts),
		traces:   newTracesView(e, o.MaxTraces),
		trace:    newTraceView(e),
		costs:    newCostsView(e),
		releases: newReleasesView(e),
		cluster:  newClusterView(e),
		log:      newLogView(e),
		evals:    newEvalsView(e),
		alerts:   alerts,
		health:   newHealthView(e),
		audit:    newAuditView(e),
		bell:     o.Bell,
		help:     help.New(),

		feedBatch: o.FeedBatch,
	}
	if a.feedBatch == 0 {
		a.feedBatch = DefaultFeedBatch
	}
	// Help draws with the session's renderer too, not lipgloss's global one.
	a.help.Styles = help.Styles{
		ShortKey: e.st.Key, FullKey: e.st.Key,
		ShortDesc: e.st.Dim, FullDesc: e.st.Dim,
		ShortSeparator: e.st.Dim, FullSeparator: e.st.Dim, Ellipsis: e.st.Dim,
	}
	a.SetSize(80, 24)
	return a
}

// ReadOnly reports whether changing actions are disabled.
func (a *App) ReadOnly() bool { return a.env.readOnly }

// Current is the view on screen.
func (a *App) Current() ViewID { return a.cur }

// Status is the text of the status line.
func (a *App) Status() string { return a.statusTxt }

// Keys is the key map in use.
func (a *App) Keys() KeyMap { return a.env.keys }

func (a *App) view(id ViewID) view {
	switch id {
	case ViewTraces:
		return a.traces
	case ViewTrace:
		return a.trace
	case ViewCosts:
		return a.costs
	case ViewReleases:
		return a.releases
	case ViewCluster:
		return a.cluster
	case ViewLog:
		return a.log
	case ViewEvals:
		return a.evals
	case ViewAlerts:
		return a.alerts
	case ViewHealth:
		return a.health
	case ViewAudit:
		return a.audit
	}
	return a.overview
}

// SetSize lays every view out for a w x h terminal: two header lines, the
// body, a status line and a help line.
func (a *App) SetSize(w, h int) {
	a.w, a.h = w, h
	a.help.Width = w
	for _, id := range []ViewID{ViewOverview, ViewTraces, ViewTrace, ViewCosts, ViewReleases, ViewCluster, ViewLog, ViewEvals, ViewAlerts, ViewHealth, ViewAudit} {
		a.view(id).SetSize(w, max(1, h-4))
	}
	if a.dialog != nil {
		a.dialog.SetSize(w, max(1, h-4))
	}
}

// Init starts nothing: data arrives from the console program.
func (a *App) Init() tea.Cmd { return nil }

// Update routes data to the views and keys through the key map.
func (a *App) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if _, held := msg.(TracesMsg); !held || a.feedBatch < 0 {
		a.dirty = true
	}
	return a, a.update(msg)
}

func (a *App) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		a.SetSize(msg.Width, msg.Height)
	case tea.KeyMsg:
		return a.key(msg)

	case TracesMsg:
		if a.feedBatch <= 0 {
			a.traces.Update(msg)
			return nil
		}
		a.pending = append(a.pending, msg...)
		if over := len(a.pending) - a.traces.max; over > 0 {
			// Only the newest rows would survive the table's bound anyway.
			a.pending = append(a.pending[:0], a.pending[over:]...)
		}
		if !a.flushQueued {
			a.flushQueued = true
			return tea.Tick(a.feedBatch, func(time.Time) tea.Msg { return feedFlushMsg{} })
		}
	case feedFlushMsg:
		a.flushQueued = false
		if len(a.pending) > 0 {
			a.traces.Update(TracesMsg(a.pending))
			a.pending = a.pending[:0]
		}
	case TraceMsg:
		a.trace.Update(msg)
	case OverviewMsg:
		a.overview.Update(msg)
		a.costs.Update(msg)
		a.releases.Update(msg)
	case OverviewErrMsg:
		a.overview.Update(msg)
	case MembersMsg:
		a.overview.Update(msg)
		a.cluster.Update(msg)
	case FeaturesMsg:
		a.overview.Update(msg)
		a.releases.Update(msg)
		if a.dialog != nil {
			a.dialog.Update(msg)
		}
	case BudgetsMsg:
		a.costs.Update(msg)
	case ReleaseStatsMsg:
		a.releases.Update(msg)
	case EvalsMsg:
		a.evals.Update(msg)
	case AlertsMsg:
		fresh := a.alerts.take(api.Alerts(msg))
		if a.bell && fresh {
			return func() tea.Msg { return BellRequest{} }
		}
	case HealthMsg:
		a.health.Update(msg)
	case CostsMsg:
		a.costs.Update(msg)
	case FetchErrMsg:
		switch msg.What {
		case "alerts":
			a.alerts.err = msg.Err.Error()
		case "health":
			a.health.err = msg.Err.Error()
		case "costs":
			a.costs.goodErr = msg.Err.Error()
		}
	case AuditMsg:
		a.audit.Update(msg)
	case linkMsg:
		return a.follow(msg.Link)
	case rollbackFeatureMsg:
		// The releases view owns the rollback dialog; it opens over the
		// current view, as from the releases view itself.
		return a.releases.rollbackCanary(msg.Feature)
	case DiffMsg:
		a.releases.Update(msg)
		if a.dialog != nil {
			a.dialog.Update(msg)
		}
	case AgentStatusMsg:
		a.agentStatus(msg)
	case ActionResultMsg:
		if msg.Err != nil {
			a.setStatus(fmt.Sprintf("FAILED %s: %v", msg.Request, msg.Err), true)
			a.log.add(fmt.Sprintf("FAILED %s: %v", msg.Request, msg.Err), true)
		} else {
			text := "done: " + msg.Request.String()
			if msg.Result != "" {
				text += ": " + msg.Result
			}
			a.setStatus(text, false)
			a.log.add(text, false)
		}

	case statusMsg:
		a.setStatus(msg.Text, msg.Err)
	case openTraceMsg:
		a.trace.open(msg.ID, msg.Node)
		a.show(ViewTrace)
		req := TraceRequest(msg)
		return func() tea.Msg { return req }
	case filterTracesMsg:
		a.show(ViewTraces)
		a.traces.setFilter(msg.Filter)
		return a.traces.search()
	case dialogClosedMsg:
		a.dialog = nil
		if msg.Req == nil {
			a.setStatus("cancelled, nothing changed", false)
			return nil
		}
		r := *msg.Req
		a.setStatus("sent: "+r.String(), false)
		a.log.add("sent: "+r.String(), false)
		a.log.add("  $ "+r.CLI, false)
		return func() tea.Msg { return r }
	case confirmMsg:
		a.dialog = newConfirmDialog(a.env, msg, func() map[string]api.ReleaseStats { return a.releases.stats })
		a.dialog.SetSize(a.w, max(1, a.h-4))
		if msg.DiffWant != nil {
			want := *msg.DiffWant
			return func() tea.Msg { return want }
		}
	}
	return nil
}

func (a *App) setStatus(text string, isErr bool) {
	a.statusTxt, a.statusErr = clean(text, false), isErr
}

func (a *App) agentStatus(m AgentStatusMsg) {
	was := a.env.stale[m.Agent]
	if m.Left {
		delete(a.env.stale, m.Agent)
		a.cluster.Update(m)
		a.traces.dirty = true
		text := "agent " + m.Agent + " left the cluster; the console no longer follows it"
		a.setStatus(text, false)
		a.log.add(text, false)
		return
	}
	if m.Stale {
		a.env.stale[m.Agent] = true
	} else {
		delete(a.env.stale, m.Agent)
	}
	a.cluster.Update(m)
	a.traces.dirty = true // rows of that agent change their marker
	switch {
	case m.Stale && !was:
		text := "lost agent " + m.Agent
		if m.Err != nil {
			text += ": " + m.Err.Error()
		}
		a.setStatus(text, true)
		a.log.add(text, true)
	case !m.Stale && was:
		a.setStatus("agent "+m.Agent+" is back", false)
		a.log.add("agent "+m.Agent+" is back", false)
	}
}

// show switches to a view, remembering the one to go back to.
func (a *App) show(id ViewID) {
	if id == a.cur {
		return
	}
	a.history = append(a.history, a.cur)
	if len(a.history) > 32 {
		a.history = a.history[1:]
	}
	a.cur = id
	a.showHelp = false
}

// back undoes one step: the view's own first, then the view switch.
func (a *App) back() {
	if b, ok := a.view(a.cur).(backer); ok && b.Back() {
		return
	}
	if n := len(a.history); n > 0 {
		a.cur = a.history[n-1]
		a.history = a.history[:n-1]
	}
}

// key handles a key press: a modal (dialog, command line, a view's text
// field, help) first, then the console's keys, then the view's actions.
func (a *App) key(k tea.KeyMsg) tea.Cmd {
	keys := a.env.keys
	if k.Type == tea.KeyCtrlC {
		return tea.Quit
	}
	if a.dialog != nil {
		_, cmd := a.dialog.Update(k)
		return cmd
	}
	if a.cmdline {
		return a.cmdKey(k)
	}
	if ed, ok := a.view(a.cur).(editor); ok && ed.Editing() {
		_, cmd := a.view(a.cur).Update(k)
		return cmd
	}
	if a.showHelp {
		switch {
		case key.Matches(k, keys.Help, keys.Back):
			a.showHelp = false
		case key.Matches(k, keys.Up):
			a.helpOff--
		case key.Matches(k, keys.Down):
			a.helpOff++
		case key.Matches(k, keys.PageUp):
			a.helpOff -= a.h / 2
		case key.Matches(k, keys.PageDown):
			a.helpOff += a.h / 2
		case key.Matches(k, keys.Top):
			a.helpOff = 0
		case key.Matches(k, keys.Quit):
			return tea.Quit
		}
		a.helpOff = max(0, a.helpOff)
		return nil
	}
	switch {
	case key.Matches(k, keys.Quit):
		return tea.Quit
	case key.Matches(k, keys.Help):
		a.showHelp, a.helpOff = true, 0
		return nil
	case key.Matches(k, keys.Command):
		a.cmdline, a.cmd = true, a.cmd[:0]
		return nil
	case key.Matches(k, keys.Back):
		a.back()
		return nil
	case key.Matches(k, keys.Overview):
		a.show(ViewOverview)
		return nil
	case key.Matches(k, keys.Traces):
		a.show(ViewTraces)
		return nil
	case key.Matches(k, keys.Costs):
		a.show(ViewCosts)
		return nil
	case key.Matches(k, keys.Releases):
		a.show(ViewReleases)
		return nil
	case key.Matches(k, keys.Cluster):
		a.show(ViewCluster)
		return nil
	case key.Matches(k, keys.Log):
		a.show(ViewLog)
		return nil
	case key.Matches(k, keys.Alerts):
		a.show(ViewAlerts)
		return nil
	case key.Matches(k, keys.Health):
		return a.open(ViewHealth)
	case key.Matches(k, keys.Audit):
		return a.open(ViewAudit)
	}
	for _, act := range a.view(a.cur).Actions() {
		if key.Matches(k, act.Key) {
			return a.dispatch(act)
		}
	}
	return nil
}

// dispatch runs an action of the current view. It is the one place that
// enforces read-only mode: views never check it themselves.
func (a *App) dispatch(act Action) tea.Cmd {
	if !a.env.allowed(act) {
		a.setStatus(fmt.Sprintf("read-only: %s is disabled", act.Name), true)
		return nil
	}
	_, cmd := a.view(a.cur).Update(actionMsg{Action: act})
	return cmd
}

// completions are the names : offers for the typed prefix.
func completions(prefix string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range viewNames {
		if strings.HasPrefix(v.name, prefix) && !seen[v.name] {
			out = append(out, v.name)
			seen[v.name] = true
		}
	}
	for _, c := range commands {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// cmdKey edits and runs the : command line.
func (a *App) cmdKey(k tea.KeyMsg) tea.Cmd {
	switch k.Type {
	case tea.KeyEsc:
		a.cmdline = false
	case tea.KeyTab:
		word, rest, _ := strings.Cut(string(a.cmd), " ")
		if rest == "" {
			if c := completions(word); len(c) > 0 {
				a.cmd = []rune(commonPrefix(c))
				if len(c) == 1 {
					a.cmd = append(a.cmd, ' ')
				}
			}
		}
	case tea.KeyEnter:
		a.cmdline = false
		return a.run(strings.TrimSpace(string(a.cmd)))
	default:
		a.cmd = edit(a.cmd, k, func(r rune) bool { return r >= ' ' && len(a.cmd) < 100 })
	}
	return nil
}

func commonPrefix(ss []string) string {
	p := ss[0]
	for _, s := range ss[1:] {
		for !strings.HasPrefix(s, p) {
			p = p[:len(p)-1]
		}
	}
	return p
}

// run executes a : command: a view name or a unique prefix of one,
// "trace ID", help or quit.
func (a *App) run(line string) tea.Cmd {
	word, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch word {
	case "":
		return nil
	case "q", "quit":
		return tea.Quit
	case "help":
		a.showHelp = true
		return nil
	}
	if word == "trace" && arg != "" {
		return func() tea.Msg { return openTraceMsg{ID: arg} }
	}
	c := completions(word)
	for _, v := range viewNames {
		if v.name == word || len(c) == 1 && c[0] == v.name {
			return a.open(v.id)
		}
	}
	var names []string
	for _, v := range viewNames {
		names = append(names, v.name)
	}
	if len(c) > 1 {
		a.setStatus(fmt.Sprintf(":%s is ambiguous: %s", word, strings.Join(c, ", ")), true)
	} else {
		a.setStatus(fmt.Sprintf("unknown view %q; try %s", word, strings.Join(names, ", ")), true)
	}
	return nil
}

// globalKeys are the keys that work in every view.
func (a *App) globalKeys() []key.Binding {
	k := a.env.keys
	return []key.Binding{k.Help, k.Command, k.Back, k.Quit, k.Overview, k.Traces, k.Costs, k.Releases, k.Cluster, k.Log, k.Alerts, k.Health, k.Audit}
}

// footer is the help line, fitted to the width: the view's keys are
// dropped from the end, never cut in the middle, and ? and q always stay.
// Whatever does not fit is on the ? screen.
func (a *App) footer() string {
	st := a.env.st
	item := func(b key.Binding) string {
		h := b.Help()
		return st.Key.Render(h.Key) + " " + st.Dim.Render(h.Desc)
	}
	sep := st.Dim.Render(" • ")
	all := a.ShortHelp()
	if len(all) == 0 {
		return ""
	}
	// The last binding is quit; the first is help.
	first, last := all[0], all[len(all)-1]
	mid := all[1 : len(all)-1]
	for n := len(mid); n >= 0; n-- {
		parts := []string{item(first)}
		for _, b := range mid[:n] {
			parts = append(parts, item(b))
		}
		parts = append(parts, item(last))
		line := strings.Join(parts, sep)
		if lipgloss.Width(line) <= a.w || n == 0 {
			return line
		}
	}
	return ""
}

// ShortHelp is the help line: ? first, the view's keys, then esc, : and q.
func (a *App) ShortHelp() []key.Binding {
	if a.dialog != nil {
		return a.dialog.ShortHelp()
	}
	k := a.env.keys
	// ? comes first so a narrow terminal never cuts it off.
	out := append([]key.Binding{k.Help}, a.view(a.cur).ShortHelp()...)
	return append(out, k.Back, k.Command, k.Quit)
}

// FullHelp is the ? screen: the current view's keys, then the console's.
func (a *App) FullHelp() [][]key.Binding {
	return append(a.view(a.cur).FullHelp(), a.globalKeys())
}

// View draws the screen, or returns the last one when nothing changed.
func (a *App) View() string {
	if !a.dirty && a.frame != "" {
		return a.frame
	}
	a.frame, a.dirty = a.draw(), false
	return a.frame
}

func (a *App) draw() string {
	if a.w < MinWidth || a.h < MinHeight {
		msg := fmt.Sprintf("Terminal too small: %dx%d.\nGantry's console needs at least %dx%d.\nMake the window bigger, or press q to quit.", a.w, a.h, MinWidth, MinHeight)
		return clip(msg, max(1, a.w))
	}
	body := ""
	switch {
	case a.dialog != nil:
		body = a.dialog.View()
	case a.showHelp:
		body = a.helpView()
	default:
		body = a.view(a.cur).View()
	}
	out := []string{a.header(), a.tabs(), body, a.statusLine(), a.footer()}
	return clip(strings.Join(out, "\n"), a.w)
}

func (a *App) header() string {
	st := a.env.st
	var stale []string
	for ag, s := range a.env.stale {
		if s {
			stale = append(stale, ag)
		}
	}
	sort.Strings(stale)
	alerts := ""
	if n := a.alerts.count(); n > 0 {
		alerts = fmt.Sprintf("!%d alert", n)
		if n != 1 {
			alerts += "s"
		}
		if c := a.alerts.critical(); c > 0 {
			alerts += fmt.Sprintf(" (%d critical)", c)
		}
	}
	clock := a.env.now().In(a.env.loc).Format("15:04:05")
	// What matters at 3 a.m. goes last to be dropped: the alerts and the
	// stale agents stay, the address and the clock give way.
	build := func(context bool) string {
		h := st.Title.Render("Gantry console")
		if context && a.context != "" {
			h += "  " + a.context
		}
		if a.env.readOnly {
			h += "  " + st.Warn.Render("[READ-ONLY]")
		}
		if len(stale) > 0 {
			h += "  " + st.Err.Render("STALE: "+strings.Join(stale, ","))
		}
		if alerts != "" {
			h += "  " + st.Err.Render(alerts)
		}
		return h
	}
	h := build(true)
	if pad := a.w - lipgloss.Width(h) - len(clock); pad >= 1 {
		return h + strings.Repeat(" ", pad) + clock
	}
	if lipgloss.Width(h) <= a.w {
		return h
	}
	return build(false)
}

func (a *App) tabs() string {
	st := a.env.st
	cur := a.cur
	if cur == ViewTrace {
		cur = ViewTraces
	}
	type tab struct {
		label string
		on    bool
	}
	var tabs []tab
	i := 1
	for _, v := range viewNames {
		if !v.tab {
			continue
		}
		tabs = append(tabs, tab{fmt.Sprintf("%d %s", i, v.name), v.id == cur})
		i++
	}
	suffix := ""
	if a.cur == ViewTrace {
		suffix = "  > trace"
	}
	// Wide, each tab has room around it; narrow, one space apart; narrower
	// still, the tabs away from the current one shrink to their number.
	draw := func(pad, sep string, short func(int) bool) string {
		var b strings.Builder
		for i, t := range tabs {
			label := t.label
			if short(i) && !t.on {
				label, _, _ = strings.Cut(label, " ")
			}
			if i > 0 {
				b.WriteString(sep)
			}
			if t.on {
				b.WriteString(st.TabOn.Render("[" + label + "]"))
			} else {
				b.WriteString(st.Tab.Render(pad + label + pad))
			}
		}
		return b.String() + suffix
	}
	never := func(int) bool { return false }
	for _, line := range []string{draw(" ", "", never), draw("", " ", never)} {
		if lipgloss.Width(line) <= a.w {
			return line
		}
	}
	// Shorten from the far end until it fits.
	for n := len(tabs) - 1; n >= 0; n-- {
		line := draw("", " ", func(i int) bool { return i >= n })
		if lipgloss.Width(line) <= a.w {
			return line
		}
	}
	return draw("", " ", func(int) bool { return true })
}

func (a *App) statusLine() string {
	st := a.env.st
	if a.cmdline {
		typed := string(a.cmd)
		line := ":" + typed + "_"
		word, _, _ := strings.Cut(typed, " ")
		if c := completions(word); len(c) > 0 && !strings.Contains(typed, " ") {
			line += "   " + st.Dim.Render(strings.Join(c, " ")+"  (tab completes)")
		}
		return line
	}
	if a.statusTxt == "" {
		return ""
	}
	if a.statusErr {
		return st.Err.Render("! " + a.statusTxt)
	}
	return a.statusTxt
}

func (a *App) helpView() string {
	title := a.env.st.Title.Render(fmt.Sprintf("Keys of %s (? closes, j/k scroll)", a.cur))
	if a.env.readOnly {
		title += "  read-only: changes hidden"
	}
	lines := a.helpLines()
	h := a.h - 4
	a.helpOff = max(0, min(a.helpOff, len(lines)-(h-1)))
	return fillLines(append([]string{title}, lines[a.helpOff:]...), h)
}

// helpLines are the ? screen under its title: every binding of the view and
// the console, then what the view's filter takes and what the markers mean.
func (a *App) helpLines() []string {
	h := a.help
	h.ShowAll = true
	lines := append([]string{""}, strings.Split(h.FullHelpView(a.FullHelp()), "\n")...)
	if n, ok := a.view(a.cur).(noter); ok {
		for _, l := range n.notes() {
			lines = append(lines, wrap(l, a.w, "  ")...)
		}
	}
	lines = append(lines, "", a.env.st.Header.Render("Markers"))
	for _, l := range markerNotes {
		lines = append(lines, wrap(l, a.w, "    ")...)
	}
	return lines
}

// markerNotes explain the glyphs and words every view may show.
var markerNotes = []string{
	"  >        the selected row (drawn without colour too)",
	"  STALE: n the console lost agent n; its rows may be old; cleared when it is back or leaves the cluster",
	"  n!       a row or member from a stale agent",
	"  ↑ ↓      worse or better than production",
	"  ERR 502  a failed call and its HTTP status; c after a status: served from cache",
	"  CRIT WARN INFO  alert severity; !N in the header: N alerts, the worst first on the overview",
	"  [READ-ONLY]  changing actions are hidden and refused",
}

// noter is a view with more to say on the ? screen than its keys, such as
// the fields its filter takes.
type noter interface {
	notes() []string
}

// wrap breaks s into lines of at most w cells at spaces; continuation
// lines start with indent.
func wrap(s string, w int, indent string) []string {
	if w <= len(indent)+10 || lipgloss.Width(s) <= w {
		return []string{s}
	}
	body := strings.TrimLeft(s, " ")
	lead := s[:len(s)-len(body)]
	var out []string
	line := ""
	for _, word := range strings.Split(body, " ") {
		switch {
		case line == "":
			line = lead + word
		case lipgloss.Width(line)+1+lipgloss.Width(word) > w:
			out = append(out, line)
			line = indent + word
		default:
			line += " " + word
		}
	}
	return append(out, line)
}
