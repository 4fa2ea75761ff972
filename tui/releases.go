package tui

import (
	"fmt"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/config"
)

// statusMsg puts a line in the status bar.
type statusMsg struct {
	Text string
	Err  bool
}

func status(text string, isErr bool) tea.Cmd {
	return func() tea.Msg { return statusMsg{Text: text, Err: isErr} }
}

// confirmMsg asks the App to open the confirmation dialog for a change.
type confirmMsg struct {
	Req      ActionRequest
	Feature  api.Feature
	DiffWant *DiffRequest // the diff the dialog should summarise, if any
}

// relRow is one release of the releases table.
type relRow struct {
	f int // index into features
	r api.Release
}

// releasesView lists every feature's releases with their labels and live
// per-release stats, diffs two releases, and starts promotions, rollbacks
// and canary changes, which the App confirms before anything is sent.
type releasesView struct {
	env      *env
	w, h     int
	features []api.Feature
	stats    map[string]api.ReleaseStats
	rows     []relRow
	cur      list
	anchor   string // release id under the cursor
	mark     string // release id marked for diff

	// cluster is set once cluster-wide counters arrived; the overview's
	// per-agent numbers no longer replace them.
	cluster bool

	diffOpen  bool
	diffWant  DiffRequest
	diff      *api.Diff
	diffErr   error
	diffLines []string
	diffOff   int // first diff line on screen
}

func newReleasesView(e *env) *releasesView {
	return &releasesView{env: e, stats: map[string]api.ReleaseStats{}}
}

func (v *releasesView) Init() tea.Cmd    { return nil }
func (v *releasesView) SetSize(w, h int) { v.w, v.h = w, h; v.renderDiff() }

func (v *releasesView) Actions() []Action {
	k := v.env.keys
	acts := navActions(k)
	if v.diffOpen {
		return acts
	}
	return append(acts,
		Action{ID: ActMark, Name: "mark", Key: k.Mark},
		Action{ID: ActDiff, Name: "diff", Key: k.Diff},
		Action{ID: ActPromote, Name: "promote", Key: k.Promote, Dangerous: true},
		Action{ID: ActRollback, Name: "roll back", Key: k.Rollback, Dangerous: true},
		Action{ID: ActWeight, Name: "canary weight", Key: k.Weight, Dangerous: true},
		Action{ID: ActAbort, Name: "end canary", Key: k.Abort, Dangerous: true},
	)
}

func (v *releasesView) ShortHelp() []key.Binding {
	s, _ := helpOf(v.env, v.Actions())
	return s
}

func (v *releasesView) FullHelp() [][]key.Binding {
	_, f := helpOf(v.env, v.Actions())
	return f
}

// Back closes the diff, then drops the mark.
func (v *releasesView) Back() bool {
	switch {
	case v.diffOpen:
		v.diffOpen = false
		return true
	case v.mark != "":
		v.mark = ""
		return true
	}
	return false
}

func (v *releasesView) tableRows() int { return max(1, v.h-6) }

func (v *releasesView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case FeaturesMsg:
		v.setFeatures(msg)
	case OverviewMsg:
		if v.cluster {
			break
		}
		v.stats = make(map[string]api.ReleaseStats, len(msg.Releases))
		for _, r := range msg.Releases {
			v.stats[r.Release] = r
		}
	case ReleaseStatsMsg:
		v.cluster = true
		v.stats = make(map[string]api.ReleaseStats, len(msg.Releases))
		for _, r := range msg.Releases {
			if r.Window.Requests > 0 {
				v.stats[r.Release] = api.ReleaseStats{Feature: r.Feature, Release: r.Release, Version: r.Version, Label: r.Label, Stats: r.Window}
			}
		}
	case DiffMsg:
		if msg.Request == v.diffWant {
			d := msg.Diff
			v.diff, v.diffErr = &d, msg.Err
			v.diffOff = 0
			v.renderDiff()
		}
	case actionMsg:
		return v, v.do(msg.Action)
	}
	return v, nil
}

// setFeatures takes a new feature list and keeps the cursor on the same
// release.
func (v *releasesView) setFeatures(fs []api.Feature) {
	v.features = append([]api.Feature(nil), fs...)
	sort.SliceStable(v.features, func(i, j int) bool { return v.features[i].Name < v.features[j].Name })
	v.rows = v.rows[:0]
	for i, f := range v.features {
		rs := append([]api.Release(nil), f.Releases...)
		sort.SliceStable(rs, func(a, b int) bool { return rs[a].Version > rs[b].Version })
		for _, r := range rs {
			v.rows = append(v.rows, relRow{f: i, r: r})
		}
	}
	v.cur.clamp(len(v.rows), v.tableRows())
	if v.anchor != "" {
		for i, r := range v.rows {
			if r.r.ID == v.anchor {
				v.cur.cursor = i
				break
			}
		}
	}
	v.cur.clamp(len(v.rows), v.tableRows())
	if r, ok := v.selected(); ok {
		v.anchor = r.r.ID
	}
}

func (v *releasesView) selected() (relRow, bool) {
	if len(v.rows) == 0 {
		return relRow{}, false
	}
	return v.rows[v.cur.cursor], true
}

func (v *releasesView) find(id string) (relRow, bool) {
	for _, r := range v.rows {
		if r.r.ID == id {
			return r, true
		}
	}
	return relRow{}, false
}

func (v *releasesView) do(a Action) tea.Cmd {
	if v.diffOpen {
		v.diffOff = scroll(v.diffOff, a.ID, len(v.diffLines), v.h)
		return nil
	}
	sel, ok := v.selected()
	switch a.ID {
	case ActMark, ActDiff, ActPromote, ActRollback, ActWeight, ActAbort:
		if !ok {
			return status("no release selected", true)
		}
	}
	switch a.ID {
	case ActMark:
		if v.mark == sel.r.ID {
			v.mark = ""
			return status("mark cleared", false)
		}
		v.mark = sel.r.ID
		return status(fmt.Sprintf("marked %s: press %s on another release of %s to diff", sel.r.ID, v.env.keys.Diff.Help().Key, v.features[sel.f].Name), false)
	case ActDiff:
		return v.openDiff(sel)
	case ActPromote:
		return v.promote(sel)
	case ActRollback:
		return v.rollback(sel)
	case ActWeight:
		return v.canary(sel)
	case ActAbort:
		return v.abort(sel)
	default:
		v.cur.move(a.ID, len(v.rows), v.tableRows())
		if r, ok := v.selected(); ok {
			v.anchor = r.r.ID
		}
	}
	return nil
}

// openDiff diffs the marked release, or production, against the selected
// one.
func (v *releasesView) openDiff(sel relRow) tea.Cmd {
	f := v.features[sel.f]
	a := f.Labels.Production
	if m, ok := v.find(v.mark); ok && m.f == sel.f && m.r.Version != sel.r.Version {
		a = m.r.Version
	}
	if a == 0 || a == sel.r.Version {
		return status(fmt.Sprintf("nothing to diff: mark another release of %s with %s first", f.Name, v.env.keys.Mark.Help().Key), true)
	}
	req := DiffRequest{Feature: f.Name, A: a, B: sel.r.Version}
	v.diffOpen, v.diffWant, v.diff, v.diffErr = true, req, nil, nil
	v.diffOff = 0
	v.renderDiff()
	return func() tea.Msg { return req }
}

func (v *releasesView) promote(sel relRow) tea.Cmd {
	f := v.features[sel.f]
	from := f.Labels.Production
	if sel.r.Version == from {
		return status(fmt.Sprintf("%s is already in production", sel.r.ID), true)
	}
	req := ActionRequest{Kind: KindPromote, Feature: f.Name, Label: config.LabelProduction, From: from, To: sel.r.Version}
	return v.confirm(req, f)
}

// rollback undoes the feature's last rollout, exactly as the agent says it
// would now: it ends a live canary, or moves production back.
func (v *releasesView) rollback(sel relRow) tea.Cmd {
	f := v.features[sel.f]
	if f.Rollback == nil {
		why := f.RollbackRefused
		if why == "" {
			why = fmt.Sprintf("%s has nothing to roll back", f.Name)
		}
		return status(why, true)
	}
	p := f.Rollback
	req := ActionRequest{Kind: KindRollback, Feature: f.Name, Label: p.Label, From: p.From, To: p.To}
	return v.confirm(req, f)
}

func (v *releasesView) canary(sel relRow) tea.Cmd {
	f := v.features[sel.f]
	if sel.r.Version == f.Labels.Production {
		return status(fmt.Sprintf("%s is production; pick another release for the canary", sel.r.ID), true)
	}
	weight := 10
	if f.Labels.Canary == sel.r.Version && f.Labels.CanaryWeight > 0 {
		weight = f.Labels.CanaryWeight
	}
	req := ActionRequest{Kind: KindCanary, Feature: f.Name, Label: config.LabelCanary, From: f.Labels.Canary, To: sel.r.Version, Weight: weight}
	return v.confirm(req, f)
}

// abort ends the feature's live canary.
func (v *releasesView) abort(sel relRow) tea.Cmd {
	f := v.features[sel.f]
	if !f.Labels.Live() {
		return status(fmt.Sprintf("%s has no live canary", f.Name), true)
	}
	req := ActionRequest{Kind: KindAbort, Feature: f.Name, Label: config.LabelCanary, From: f.Labels.Canary}
	return v.confirm(req, f)
}

func (v *releasesView) confirm(req ActionRequest, f api.Feature) tea.Cmd {
	msg := confirmMsg{Req: req, Feature: f}
	base := req.From
	if req.Label == config.LabelCanary {
		base = f.Labels.Production // a canary is judged against production
	}
	if base != 0 && base != req.To {
		msg.DiffWant = &DiffRequest{Feature: f.Name, A: base, B: req.To}
	}
	return func() tea.Msg { return msg }
}

func (v *releasesView) renderDiff() {
	st := v.env.st
	w := v.diffWant
	lines := []string{st.Title.Render(fmt.Sprintf("Diff %s v%d -> v%d", w.Feature, w.A, w.B))}
	switch {
	case v.diffErr != nil:
		lines = append(lines, st.Err.Render("diff failed: "+v.diffErr.Error()))
	case v.diff == nil:
		lines = append(lines, st.Dim.Render("loading diff…"))
	default:
		d := v.diff
		lines = append(lines, fmt.Sprintf("a %s  b %s", shortHash(d.AHash), shortHash(d.BHash)), d.Summary())
		for _, f := range d.Fields {
			lines = append(lines, "", st.Header.Render(f.Field))
			for _, l := range f.Lines {
				text := l.Op + " " + clean(l.Text, false)
				switch l.Op {
				case api.DiffAdd:
					text = st.Add.Render(text)
				case api.DiffRemove:
					text = st.Remove.Render(text)
				}
				lines = append(lines, "  "+text)
			}
		}
	}
	v.diffLines = lines
}

var releaseCols = []column{
	{title: "FEATURE", width: 14, flex: true},
	{title: "VER", width: 4},
	{title: "LABEL", width: 10},
	{title: "HASH", width: 8, drop: 4},
	{title: "AGE", width: 6, right: true, drop: 3},
	{title: "BY", width: 8, drop: 5},
	{title: "REQ", width: 6, right: true},
	{title: "ERR%", width: 6, right: true},
	{title: "VAL", width: 5, right: true, drop: 2},
	{title: "FB +/-", width: 7, right: true},
	{title: "P95", width: 8, right: true, drop: 1},
	{title: "COST", width: 7, right: true, drop: 6},
}

func (v *releasesView) View() string {
	st := v.env.st
	if v.diffOpen {
		end := min(len(v.diffLines), v.diffOff+v.h)
		return fillLines(v.diffLines[min(v.diffOff, end):end], v.h)
	}
	now := v.env.now()
	lines := []string{st.Title.Render(fmt.Sprintf("Releases  %d features  (↑ ↓: worse or better than production)", len(v.features)))}
	if len(v.rows) == 0 {
		lines = append(lines, st.Dim.Render("Waiting for features from the agents…"))
		return fillLines(lines, v.h)
	}
	widths := layout(releaseCols, v.w)
	lines = append(lines, st.Header.Render(headerRow(releaseCols, widths)))
	n := v.tableRows()
	v.cur.clamp(len(v.rows), n)
	for i := v.cur.offset; i < len(v.rows) && i < v.cur.offset+n; i++ {
		r := v.rows[i]
		f := v.features[r.f]
		label := ""
		switch {
		case f.Labels.Production == r.r.Version:
			label = "PROD"
		case f.Labels.Canary == r.r.Version:
			label = fmt.Sprintf("canary%d%%", f.Labels.CanaryWeight)
		}
		ver := fmt.Sprintf("v%d", r.r.Version)
		if r.r.ID == v.mark {
			ver += "*"
		}
		cells := []string{f.Name, ver, label, shortHash(r.r.Hash), age(now, r.r.Created), r.r.CreatedBy}
		if s, ok := v.stats[r.r.ID]; ok {
			// Against production, with a glyph: worse or better shows
			// without colour.
			prod, hasProd := v.stats[fmt.Sprintf("%s@v%d", f.Name, f.Labels.Production)]
			cmp := hasProd && r.r.Version != f.Labels.Production && s.Requests > 0 && prod.Requests > 0
			errCell, valCell, p95Cell := pct(s.ErrorRate()), count(s.ValidationFailures), ms(s.P95)
			if cmp {
				errCell += trend(s.ErrorRate(), prod.ErrorRate(), 0.01)
				valCell += trend(rate(s.ValidationFailures, s.Requests), rate(prod.ValidationFailures, prod.Requests), 0.01)
				p95Cell += trend(float64(s.P95), float64(prod.P95), float64(prod.P95)*0.2)
			}
			cells = append(cells, count(s.Requests), errCell, valCell,
				fmt.Sprintf("%d/%d", s.FeedbackUp, s.FeedbackDown), p95Cell, usd(s.CostUSD))
		}
		line := renderRow(releaseCols, widths, cells, i == v.cur.cursor)
		if i == v.cur.cursor {
			line = st.Selected.Render(line)
		}
		lines = append(lines, line)
	}
	// The selected feature's latest label moves: who, what, when, why.
	if sel, ok := v.selected(); ok {
		f := v.features[sel.f]
		// The live canary's analysis and the selected release's gate.
		if c := canaryText(f.CanaryAnalysis, now); c != "" {
			lines = append(lines, "", "Canary analysis: "+c)
		}
		if g := gateText(sel.r.Gate); g != "" {
			lines = append(lines, fmt.Sprintf("Gate of v%d %s", sel.r.Version, g))
		}
		room := v.h - len(lines) - 1
		if room > 0 {
			lines = append(lines, "", st.Header.Render("History of "+f.Name))
			hist := f.History
			if len(hist) > room-1 {
				hist = hist[len(hist)-max(0, room-1):]
			}
			if len(hist) == 0 {
				lines = append(lines, st.Dim.Render("  no label moves yet"))
			}
			for i := len(hist) - 1; i >= 0; i-- {
				h := hist[i]
				line := fmt.Sprintf("  %-6s %s", age(now, h.Time), moveText(h))
				lines = append(lines, line)
			}
		}
	}
	return fillLines(lines, v.h)
}

// trend is "↑" when v is worse (higher) than base by more than margin,
// "↓" when better by as much, else "".
func trend(v, base, margin float64) string {
	switch {
	case v > base+margin:
		return "↑"
	case v < base-margin:
		return "↓"
	}
	return ""
}

func rate(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// statsLine is one release's live numbers for the confirmation dialog.
func statsLine(s api.ReleaseStats, ok bool) string {
	if !ok {
		return "no traffic in the window"
	}
	return strings.Join([]string{
		count(s.Requests) + " req",
		pct(s.ErrorRate()) + " err",
		count(s.ValidationFailures) + " val",
		fmt.Sprintf("fb +%d/-%d", s.FeedbackUp, s.FeedbackDown),
		"p95 " + ms(s.P95),
	}, ", ")
}

// selectFeature puts the cursor on a feature's canary release when it has
// a live one, else on its production release.
func (v *releasesView) selectFeature(name string) {
	for i, r := range v.rows {
		f := v.features[r.f]
		if f.Name != name {
			continue
		}
		want := f.Labels.Production
		if f.Labels.Live() {
			want = f.Labels.Canary
		}
		if r.r.Version == want {
			v.cur.cursor = i
			v.anchor = r.r.ID
			v.cur.clamp(len(v.rows), v.tableRows())
			return
		}
	}
}

// rollbackCanary opens the rollback dialog of a feature's live canary. A
// canary that ended meanwhile is not a reason to move production back:
// that is said, and nothing opens.
func (v *releasesView) rollbackCanary(name string) tea.Cmd {
	for _, r := range v.rows {
		f := v.features[r.f]
		if f.Name != name {
			continue
		}
		if !f.Labels.Live() || f.Rollback == nil || f.Rollback.Label != config.LabelCanary {
			return status(fmt.Sprintf("%s has no live canary any more: nothing to roll back", name), true)
		}
		v.selectFeature(name)
		return v.rollback(r)
	}
	return status(fmt.Sprintf("no feature %s in the release list", name), true)
}
