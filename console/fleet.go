package console

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/pipeline/trace"
	"gantry/tui"
)

// FleetOptions configure a Fleet. Zero durations take the defaults.
type FleetOptions struct {
	Agents []string // agent URLs to start from; members add the rest
	Token  string
	// TLS, when set, is the client side of the agents' mutual TLS.
	TLS *tls.Config
	// Operator names who is at the console, for the agents' audit log.
	Operator string
	// FeedTick is how often feed rows are handed to the program, as one
	// batch for all agents.
	FeedTick time.Duration
	// PollEvery is how often overview, members, features and budgets are
	// fetched.
	PollEvery time.Duration
	// MinBackoff and MaxBackoff bound the wait before reconnecting to an
	// agent whose feed broke; it doubles on every failure.
	MinBackoff, MaxBackoff time.Duration
	// Backfill is how many recent traces are listed from each agent when
	// its feed (re)connects, so nothing missed while away is lost.
	Backfill int
	// MaxPending bounds the feed rows held between ticks; the oldest go.
	MaxPending int
	// FeedIdle is Client.FeedIdle for every agent.
	FeedIdle time.Duration
}

// Defaults of FleetOptions.
const (
	DefaultFeedTick   = 250 * time.Millisecond
	DefaultPollEvery  = 2 * time.Second
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
	DefaultBackfill   = 500
	DefaultMaxPending = 5000
)

func (o *FleetOptions) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.FeedTick, DefaultFeedTick)
	set(&o.PollEvery, DefaultPollEvery)
	set(&o.MinBackoff, DefaultMinBackoff)
	set(&o.MaxBackoff, DefaultMaxBackoff)
	if o.Backfill <= 0 {
		o.Backfill = DefaultBackfill
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
}

// Fleet is the console's connection to every agent it knows: one live
// feed per agent with reconnects, a poller for the cluster-wide views, and
// the calls the TUI asks for. Traces from every agent are merged into one
// batch per tick. Everything it learns goes to the program as tui messages.
type Fleet struct {
	opts FleetOptions

	mu      sync.Mutex
	agents  []*agentConn
	pending []trace.Summary
	send    func(tea.Msg)
	ctx     context.Context
	auditQ  *api.AuditQuery // what the audit view asked for last; nil: not opened yet
	health  bool            // the health view was opened: poll model health
	costs   bool            // cost per good answer was shown: poll cost tables
	wg      sync.WaitGroup
	poke    chan struct{}
}

// agentConn is one agent: its client, the name the console knows it by
// (its node id once learned, its host until then), and its last overview.
type agentConn struct {
	c *Client

	stop context.CancelFunc // ends its feed; set by start

	mu       sync.Mutex
	name     string
	stale    bool
	overview *api.Overview
	lastSeen time.Time // start of the newest trace seen
}

func (a *agentConn) Name() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.name
}

func (a *agentConn) isStale() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stale
}

// NewFleet checks the agent URLs and returns a fleet that is not running
// yet.
func NewFleet(o FleetOptions) (*Fleet, error) {
	o.defaults()
	if len(o.Agents) == 0 {
		return nil, errors.New("no agent: pass --agent URL or set GANTRY_AGENT")
	}
	f := &Fleet{opts: o, poke: make(chan struct{}, 1)}
	for _, u := range o.Agents {
		c, err := NewTLSClient(u, o.Token, o.TLS)
		if err != nil {
			return nil, err
		}
		c.Operator, c.FeedIdle = o.Operator, o.FeedIdle
		f.agents = append(f.agents, &agentConn{c: c, name: hostOf(c.URL())})
	}
	return f, nil
}

// memberHost is the host:port of a member's HTTP address, which may come
// with or without a scheme.
func memberHost(addr string) string {
	if strings.Contains(addr, "://") {
		return hostOf(addr)
	}
	return addr
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}

// Run connects to the agents and sends what it hears to send until ctx
// ends; it returns once every goroutine it started has stopped.
func (f *Fleet) Run(ctx context.Context, send func(tea.Msg)) {
	f.mu.Lock()
	f.send, f.ctx = send, ctx
	agents := append([]*agentConn(nil), f.agents...)
	f.mu.Unlock()
	for _, a := range agents {
		f.start(a)
	}
	f.wg.Add(2)
	go f.flushLoop(ctx)
	go f.pollLoop(ctx)
	<-ctx.Done()
	f.wg.Wait()
}

// start runs an agent's feed; the caller holds no lock.
func (f *Fleet) start(a *agentConn) {
	ctx, cancel := context.WithCancel(f.ctx)
	a.stop = cancel
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.feedLoop(ctx, a)
	}()
}

// forget stops following agents that are no longer members: a removed
// member is not stale, it is gone, and its mark must not linger. The last
// agent is kept whatever the list says: it is the console's only way in.
func (f *Fleet) forget(m api.Members) {
	if m.Leader == "" || len(m.Members) == 0 {
		return // without quorum the list may be partial
	}
	f.mu.Lock()
	var keep, gone []*agentConn
	for _, a := range f.agents {
		member := false
		for _, mem := range m.Members {
			if a.Name() == mem.ID || hostOf(a.c.URL()) == memberHost(mem.HTTPAddr) {
				member = true
				break
			}
		}
		if member {
			keep = append(keep, a)
		} else {
			gone = append(gone, a)
		}
	}
	if len(keep) == 0 {
		f.mu.Unlock()
		return
	}
	f.agents = keep
	f.mu.Unlock()
	for _, a := range gone {
		if a.stop != nil {
			a.stop()
		}
		f.send(tui.AgentStatusMsg{Agent: a.Name(), Left: true})
	}
}

// Refresh asks the poller to fetch now, e.g. after a label moved.
func (f *Fleet) Refresh() {
	select {
	case f.poke <- struct{}{}:
	default:
	}
}

// Agents returns the names of the agents the fleet knows.
func (f *Fleet) Agents() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.agents {
		out = append(out, a.Name())
	}
	return out
}

func (f *Fleet) snapshot() []*agentConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*agentConn(nil), f.agents...)
}

// setStale records whether an agent is reachable and tells the program on
// every change.
func (f *Fleet) setStale(a *agentConn, stale bool, err error) {
	a.mu.Lock()
	changed := a.stale != stale
	a.stale = stale
	name := a.name
	a.mu.Unlock()
	if changed {
		f.send(tui.AgentStatusMsg{Agent: name, Stale: stale, Err: err})
	}
}

// rename takes the node id an agent reported; a stale mark under the old
// name is cleared so it does not linger in the header.
func (f *Fleet) rename(a *agentConn, node string) {
	a.mu.Lock()
	old, stale := a.name, a.stale
	a.name = node
	a.mu.Unlock()
	if old != node && stale {
		f.send(tui.AgentStatusMsg{Agent: old, Stale: false})
		f.send(tui.AgentStatusMsg{Agent: node, Stale: true})
	}
}

// feedLoop keeps one agent's live feed open, reconnecting with exponential
// backoff, and marks the agent stale while it is away.
func (f *Fleet) feedLoop(ctx context.Context, a *agentConn) {
	backoff := f.opts.MinBackoff
	named := false
	for ctx.Err() == nil {
		var err error
		if !named {
			var node string
			if node, err = a.c.Health(ctx); err == nil && node != "" {
				f.rename(a, node)
				named = true
			}
		}
		if err == nil {
			err = a.c.Feed(ctx, func() {
				backoff = f.opts.MinBackoff
				f.backfill(ctx, a)
				f.setStale(a, false, nil)
			}, func(s trace.Summary) { f.add(a, s) })
		}
		if ctx.Err() != nil {
			return
		}
		f.setStale(a, true, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, f.opts.MaxBackoff)
	}
}

// backfill lists what the agent served since the console last heard from
// it (or its newest traces on first contact); the TUI drops duplicates.
func (f *Fleet) backfill(ctx context.Context, a *agentConn) {
	a.mu.Lock()
	since := a.lastSeen
	a.mu.Unlock()
	q := api.TraceQuery{Limit: f.opts.Backfill}
	if !since.IsZero() {
		q.Since = since.Add(-time.Second)
	}
	cctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	list, err := a.c.Traces(cctx, q)
	if err != nil {
		return // the feed is up; missing history is not worth dropping it
	}
	for i := len(list.Traces) - 1; i >= 0; i-- { // oldest first
		f.add(a, list.Traces[i])
	}
}

// add holds a summary for the next tick.
func (f *Fleet) add(a *agentConn, s trace.Summary) {
	if s.Node == "" {
		s.Node = a.Name()
	}
	a.mu.Lock()
	if s.Start.After(a.lastSeen) {
		a.lastSeen = s.Start
	}
	a.mu.Unlock()
	f.mu.Lock()
	f.pending = append(f.pending, s)
	if over := len(f.pending) - f.opts.MaxPending; over > 0 {
		f.pending = append(f.pending[:0], f.pending[over:]...)
	}
	f.mu.Unlock()
}

// flushLoop hands the held rows of every agent to the program, one batch
// per tick: each message costs the program one render.
func (f *Fleet) flushLoop(ctx context.Context) {
	defer f.wg.Done()
	t := time.NewTicker(f.opts.FeedTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.mu.Lock()
		batch := f.pending
		f.pending = nil
		f.mu.Unlock()
		if len(batch) > 0 {
			f.send(tui.TracesMsg(batch))
		}
	}
}

// pollLoop fetches the overview of every agent and the cluster-wide data
// (members, features, budgets) every PollEvery, and at once when poked.
func (f *Fleet) pollLoop(ctx context.Context) {
	defer f.wg.Done()
	t := time.NewTicker(f.opts.PollEvery)
	defer t.Stop()
	for {
		f.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.poke:
		}
	}
}

func (f *Fleet) poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	agents := f.snapshot()
	var wg sync.WaitGroup
	errs := make([]error, len(agents))
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := a.c.Overview(ctx)
			errs[i] = err
			a.mu.Lock()
			if err == nil {
				a.overview = &o
			} else if errors.Is(err, ErrNotFound) {
				a.overview = nil
			}
			a.mu.Unlock()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	// No agent answered: say why rather than wait on a screen that never
	// fills (a token revoked while the console runs, every agent down).
	if i := slices.IndexFunc(errs, func(err error) bool { return err == nil }); i < 0 && len(agents) > 0 {
		var why []string
		for i, err := range errs {
			why = append(why, Explain(agents[i].c.URL(), err))
		}
		f.send(tui.OverviewErrMsg{Err: errors.New(strings.Join(why, "; "))})
	}
	var ovs []api.Overview
	for _, a := range agents {
		a.mu.Lock()
		if a.overview != nil {
			ovs = append(ovs, *a.overview)
		}
		a.mu.Unlock()
	}
	if len(ovs) > 0 {
		f.send(tui.OverviewMsg(MergeOverviews(ovs)))
	}
	f.pollMembers(ctx, agents)
	if fs, err := firstOf(ctx, agents, (*Client).Features); err == nil {
		f.send(tui.FeaturesMsg(fs))
	}
	if b, err := firstOf(ctx, agents, (*Client).Budgets); err == nil {
		f.send(tui.BudgetsMsg(b))
	}
	// Any agent answers for the whole cluster, with percentiles of merged
	// sketches; the releases view prefers these to the merged overviews.
	if rs, err := firstOf(ctx, agents, (*Client).ReleaseStats); err == nil {
		f.send(tui.ReleaseStatsMsg(rs))
	}
	if ev, err := firstOf(ctx, agents, (*Client).Evals); err == nil {
		f.send(ev)
	}
	// Each agent raises its own alerts (its breakers, its disk) and sees
	// the cluster's; each counts its own calls by model.
	if as, err := fromEach(ctx, agents, (*Client).Alerts); len(as) > 0 {
		f.send(tui.AlertsMsg(MergeAlerts(as)))
	} else if err != nil {
		f.send(tui.FetchErrMsg{What: "alerts", Err: err})
	}
	f.mu.Lock()
	health, costs := f.health, f.costs
	f.mu.Unlock()
	if costs {
		// Each agent counts only its own calls: the cluster's are the sum.
		if cs, err := fromEach(ctx, agents, (*Client).CostsByRelease); len(cs) > 0 {
			f.send(tui.CostsMsg(api.MergeCosts(cs...)))
		} else if err != nil {
			f.send(tui.FetchErrMsg{What: "costs", Err: err})
		}
	}
	if health {
		if hs, err := fromEach(ctx, agents, (*Client).ModelHealth); len(hs) > 0 {
			f.send(tui.HealthMsg(MergeHealth(hs)))
		} else if err != nil {
			f.send(tui.FetchErrMsg{What: "health", Err: err})
		}
	}
	f.pollAudit(ctx, agents)
}

// fromEach asks every agent at once and returns the answers of those that
// gave one, and why the others did not, each explained.
func fromEach[T any](ctx context.Context, agents []*agentConn, get func(*Client, context.Context) (T, error)) ([]T, error) {
	res := make([]*T, len(agents))
	errs := make([]error, len(agents))
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := get(a.c, ctx)
			if err == nil {
				res[i] = &v
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	var out []T
	var why []string
	for i, v := range res {
		if v != nil {
			out = append(out, *v)
		} else if errs[i] != nil {
			why = append(why, Explain(agents[i].c.URL(), errs[i]))
		}
	}
	if len(why) == 0 {
		return out, nil
	}
	return out, errors.New(strings.Join(why, "; "))
}

// WatchHealth polls the model health of every agent from now on, and at
// once: an agent computes it over its recent traces, so it is asked for
// only once an operator looks.
func (f *Fleet) WatchHealth() {
	f.mu.Lock()
	f.health = true
	f.mu.Unlock()
	f.Refresh()
}

// WatchCosts polls every agent's cost table from now on, and at once.
func (f *Fleet) WatchCosts() {
	f.mu.Lock()
	f.costs = true
	f.mu.Unlock()
	f.Refresh()
}

// SetAuditQuery is the filter of the audit log from now on; the next poll
// (at once) answers it.
func (f *Fleet) SetAuditQuery(q api.AuditQuery) {
	f.mu.Lock()
	f.auditQ = &q
	f.mu.Unlock()
	f.Refresh()
}

// pollAudit reads the newest page of the audit log that the audit view
// filters for, once it was opened. The log is replicated, so any agent
// answers for all.
func (f *Fleet) pollAudit(ctx context.Context, agents []*agentConn) {
	f.mu.Lock()
	asked := f.auditQ
	f.mu.Unlock()
	if asked == nil {
		return
	}
	q := *asked
	if q.Limit == 0 {
		q.Limit = DefaultAuditLimit
	}
	l, err := firstOf(ctx, agents, func(c *Client, ctx context.Context) (api.AuditList, error) { return c.Audit(ctx, q) })
	if errors.Is(err, ErrNotFound) {
		return
	}
	f.send(tui.AuditMsg{Query: q, List: l, Err: err})
}

// DefaultAuditLimit is how many audit entries the console reads per poll.
const DefaultAuditLimit = 200

// SearchTraces asks every agent for the traces q matches and hands them
// to the program like feed rows; the table drops the ones it has.
func (f *Fleet) SearchTraces(ctx context.Context, q api.TraceQuery) tui.TracesMsg {
	agents := f.snapshot()
	lists, _ := fromEach(ctx, agents, func(c *Client, ctx context.Context) (api.TraceList, error) { return c.Traces(ctx, q) })
	var out tui.TracesMsg
	for _, l := range lists {
		out = append(out, l.Traces...)
	}
	return out
}

// firstOf asks the first reachable agent for cluster-wide data: every
// agent holds the same replicated state. A 404 ends the search: the
// agents do not serve that endpoint.
func firstOf[T any](ctx context.Context, agents []*agentConn, get func(*Client, context.Context) (T, error)) (T, error) {
	var zero T
	err := errors.New("no agent reachable")
	for _, a := range reachableFirst(agents) {
		var v T
		if v, err = get(a.c, ctx); err == nil {
			return v, nil
		}
		if errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			return zero, err
		}
	}
	return zero, err
}

// reachableFirst orders agents with the ones not stale first.
func reachableFirst(agents []*agentConn) []*agentConn {
	out := append([]*agentConn(nil), agents...)
	sort.SliceStable(out, func(i, j int) bool { return !out[i].isStale() && out[j].isStale() })
	return out
}

// pollMembers learns the cluster's members and starts a feed for every
// agent not yet known. Agents without the members endpoint leave the
// console with the agents it was given, shown as members of unknown role.
func (f *Fleet) pollMembers(ctx context.Context, agents []*agentConn) {
	m, err := firstOf(ctx, agents, (*Client).Members)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			return
		}
		m = api.Members{}
		for _, a := range agents {
			a.mu.Lock()
			m.Members = append(m.Members, api.Member{ID: a.name, HTTPAddr: hostOf(a.c.URL()), Role: api.RoleUnknown, Healthy: !a.stale})
			a.mu.Unlock()
		}
		f.send(tui.MembersMsg(m))
		return
	}
	f.send(tui.MembersMsg(m))
	f.forget(m)
	scheme := "http"
	if len(agents) > 0 && strings.HasPrefix(agents[0].c.URL(), "https:") {
		scheme = "https"
	}
	for _, mem := range m.Members {
		if mem.HTTPAddr == "" || f.knows(mem) {
			continue
		}
		addr := mem.HTTPAddr
		if !strings.Contains(addr, "://") {
			addr = scheme + "://" + addr
		}
		c, err := NewTLSClient(addr, f.opts.Token, f.opts.TLS)
		if err != nil {
			continue
		}
		c.Operator, c.FeedIdle = f.opts.Operator, f.opts.FeedIdle
		a := &agentConn{c: c, name: mem.ID}
		f.mu.Lock()
		f.agents = append(f.agents, a)
		f.mu.Unlock()
		f.start(a)
	}
}

func (f *Fleet) knows(m api.Member) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.agents {
		if a.Name() == m.ID || hostOf(a.c.URL()) == memberHost(m.HTTPAddr) {
			return true
		}
	}
	return false
}

// Trace fetches a trace from the agent that served it, or from every agent
// in turn when the node is not known.
func (f *Fleet) Trace(ctx context.Context, id, node string) (*trace.Trace, error) {
	agents := reachableFirst(f.snapshot())
	if node != "" {
		for _, a := range agents {
			if a.Name() == node {
				return a.c.Trace(ctx, id)
			}
		}
	}
	var firstErr error
	for _, a := range agents {
		t, err := a.c.Trace(ctx, id)
		if err == nil {
			return t, nil
		}
		if firstErr == nil || errors.Is(firstErr, ErrNotFound) && !errors.Is(err, ErrNotFound) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("trace %s: no agent", id)
	}
	return nil, firstErr
}

// Diff asks a reachable agent for the diff of two releases.
func (f *Fleet) Diff(ctx context.Context, feature string, a, b int) (api.Diff, error) {
	return firstOf(ctx, f.snapshot(), func(c *Client, ctx context.Context) (api.Diff, error) {
		return c.Diff(ctx, feature, a, b)
	})
}

// MoveLabel sends a label move to one reachable agent, which forwards it to
// the leader. It is sent once: a move is never retried on another agent
// behind the operator's back.
func (f *Fleet) MoveLabel(ctx context.Context, m api.LabelMove) (api.LabelMoveResult, error) {
	agents := reachableFirst(f.snapshot())
	if len(agents) == 0 {
		return api.LabelMoveResult{}, errors.New("no agent")
	}
	res, err := agents[0].c.MoveLabel(ctx, m)
	f.Refresh()
	return res, err
}

// MergeOverviews combines the overviews of several agents into the
// cluster's: counts, rates and costs add up; latency percentiles cannot be
// merged exactly, so the slowest agent's is shown, which never hides a
// slow agent behind fast ones. Agents that keep cluster-wide release
// counters (ReleaseStats) give exact merged percentiles per release.
func MergeOverviews(ovs []api.Overview) api.Overview {
	if len(ovs) == 1 {
		return ovs[0]
	}
	out := api.Overview{Node: "cluster"}
	var errs float64
	features := map[string]*api.FeatureStats{}
	releases := map[string]*api.ReleaseStats{}
	for _, o := range ovs {
		if o.Time.After(out.Time) {
			out.Time = o.Time
		}
		out.WindowSeconds = max(out.WindowSeconds, o.WindowSeconds)
		out.RequestsPerSec += o.RequestsPerSec
		errs += o.ErrorRate * o.RequestsPerSec
		out.P50 = max(out.P50, o.P50)
		out.P95 = max(out.P95, o.P95)
		out.CostPerMinute += o.CostPerMinute
		out.Totals = addStats(out.Totals, o.Totals)
		out.NoFeature = addStats(out.NoFeature, o.NoFeature)
		// Series end at the same minute: align them on the right.
		if n := len(o.CostSeries); n > len(out.CostSeries) {
			out.CostSeries = append(make([]float64, n-len(out.CostSeries)), out.CostSeries...)
		}
		off := len(out.CostSeries) - len(o.CostSeries)
		for i, c := range o.CostSeries {
			out.CostSeries[off+i] += c
		}
		for _, fs := range o.Features {
			if cur, ok := features[fs.Feature]; ok {
				cur.Stats = addStats(cur.Stats, fs.Stats)
			} else {
				c := fs
				features[fs.Feature] = &c
			}
		}
		for _, rs := range o.Releases {
			if cur, ok := releases[rs.Release]; ok {
				cur.Stats = addStats(cur.Stats, rs.Stats)
				if cur.Label == "" {
					cur.Label = rs.Label
				}
			} else {
				c := rs
				releases[rs.Release] = &c
			}
		}
	}
	if out.RequestsPerSec > 0 {
		out.ErrorRate = errs / out.RequestsPerSec
	}
	for _, fs := range features {
		out.Features = append(out.Features, *fs)
	}
	sort.Slice(out.Features, func(i, j int) bool { return out.Features[i].Feature < out.Features[j].Feature })
	for _, rs := range releases {
		out.Releases = append(out.Releases, *rs)
	}
	sort.Slice(out.Releases, func(i, j int) bool { return out.Releases[i].Release < out.Releases[j].Release })
	return out
}

func addStats(a, b api.Stats) api.Stats {
	a.Requests += b.Requests
	a.Errors += b.Errors
	a.ValidationFailures += b.ValidationFailures
	a.FeedbackUp += b.FeedbackUp
	a.FeedbackDown += b.FeedbackDown
	a.P50 = max(a.P50, b.P50)
	a.P95 = max(a.P95, b.P95)
	a.CostUSD += b.CostUSD
	a.InputTokens += b.InputTokens
	a.OutputTokens += b.OutputTokens
	return a
}
