package tui

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/pipeline/trace"
)

// DefaultMaxTraces bounds the live trace table; older rows fall off.
const DefaultMaxTraces = 5000

// row is a summary with its arrival number, which tells rows that came in
// while paused from the ones on screen.
type row struct {
	seq uint64
	s   trace.Summary
}

// openTraceMsg asks the App to open a trace.
type openTraceMsg struct{ ID, Node string }

// tracesView is the live table of traces merged from every agent, newest
// first. It keeps the newest max rows in start-time order and shows the
// ones that pass the filter. Paused, the shown rows are frozen while new
// ones are still taken in and counted.
type tracesView struct {
	env  *env
	w, h int
	max  int

	all []row // every kept row, oldest first
	ids map[string]struct{}
	seq uint64

	shown []row // rows that pass the filter, oldest first; frozen when paused

	filter     traceFilter
	filterText string
	editing    bool
	edit       []rune
	before     string // filter text when editing began, for esc
	filterErr  string

	paused   bool
	pauseSeq uint64 // last seq on screen when paused
	held     int    // rows that arrived since and pass the filter

	cur    list
	anchor string // id of the selected row; empty follows the newest

	sortBy    string  // api.SortTime, SortDuration or SortCost
	sorted    []int32 // indexes of shown rows in sortBy order, when not by time
	sortStale bool    // shown changed since sorted was built

	cache string // rendered table, valid while !dirty
	dirty bool
}

func newTracesView(e *env, maxRows int) *tracesView {
	if maxRows <= 0 {
		maxRows = DefaultMaxTraces
	}
	return &tracesView{
		env:    e,
		sortBy: api.SortTime,
		max:    maxRows,
		ids:    make(map[string]struct{}, maxRows+maxRows/4+1),
		all:    make([]row, 0, maxRows+maxRows/4+1),
		shown:  make([]row, 0, maxRows+maxRows/4+1),
		dirty:  true,
	}
}

func (v *tracesView) Init() tea.Cmd { return nil }

func (v *tracesView) SetSize(w, h int) { v.w, v.h = w, h; v.dirty = true }

// bodyRows is how many table rows fit under the title and header lines.
func (v *tracesView) bodyRows() int { return max(1, v.h-2) }

func (v *tracesView) Actions() []Action {
	k := v.env.keys
	return append(navActions(k),
		Action{ID: ActFilter, Name: "filter", Key: k.Filter},
		Action{ID: ActPause, Name: "pause", Key: k.Pause},
		Action{ID: ActOpen, Name: "open trace", Key: k.Open},
		Action{ID: ActSort, Name: "sort", Key: key.NewBinding(key.WithKeys(k.Sort.Keys()...), key.WithHelp(k.Sort.Help().Key, "sort: time, duration, cost"))},
		Action{ID: ActYank, Name: "copy id", Key: k.Yank},
	)
}

// notes are the filter's fields for the ? screen.
func (v *tracesView) notes() []string {
	return []string{
		"",
		v.env.st.Header.Render("Filter (/): words all match; field:value matches part of that field"),
		"  feature: release: model: provider: node: user: team: key: (name or fingerprint) fp: (key fingerprint) kind: (error kind) code: status:ok|err|502 feedback: id: client:",
		"  dur:>2s dur:<=500ms cost:>0.01 cost:<$1 (also >= <=); slow:2s is dur:>=2s",
		"  a word without field matches any of them; enter also asks every agent for older matches",
		"  s sorts by time, duration or cost (slowest, dearest first); y copies the selected trace id (OSC 52, works over SSH)",
	}
}

func (v *tracesView) ShortHelp() []key.Binding {
	s, _ := helpOf(v.env, v.Actions())
	return s
}

func (v *tracesView) FullHelp() [][]key.Binding {
	_, f := helpOf(v.env, v.Actions())
	return f
}

func (v *tracesView) Editing() bool { return v.editing }

// Back clears the filter, then resumes a paused table; otherwise esc is the
// App's.
func (v *tracesView) Back() bool {
	switch {
	case v.filterText != "":
		v.setFilter("")
		return true
	case v.paused:
		v.resume()
		return true
	}
	return false
}

func (v *tracesView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case TracesMsg:
		v.add(msg)
	case tea.KeyMsg:
		if v.editing {
			return v, v.editKey(msg)
		}
	case actionMsg:
		return v, v.do(msg.Action)
	}
	return v, nil
}

func (v *tracesView) do(a Action) tea.Cmd {
	switch a.ID {
	case ActFilter:
		v.editing = true
		v.before = v.filterText
		v.edit = []rune(v.filterText)
	case ActPause:
		if v.paused {
			v.resume()
		} else {
			v.pause()
		}
	case ActOpen:
		if r, ok := v.selected(); ok {
			return func() tea.Msg { return openTraceMsg{ID: r.ID, Node: r.Node} }
		}
	case ActSort:
		switch v.sortBy {
		case api.SortTime:
			v.sortBy = api.SortDuration
		case api.SortDuration:
			v.sortBy = api.SortCost
		default:
			v.sortBy = api.SortTime
		}
		v.sortStale = true
		v.reanchorFull()
		return v.search()
	case ActYank:
		if r, ok := v.selected(); ok {
			return yank(r.ID, "trace id")
		}
	default:
		v.cur.move(a.ID, len(v.shown), v.bodyRows())
		v.anchor = ""
		if v.cur.cursor > 0 {
			v.anchor = v.at(v.cur.cursor).s.ID
		}
		v.dirty = true
	}
	return nil
}

// editKey edits the filter; the filter applies as it is typed.
func (v *tracesView) editKey(k tea.KeyMsg) tea.Cmd {
	switch k.Type {
	case tea.KeyEnter:
		v.editing = false
		return v.search()
	case tea.KeyEsc:
		v.editing = false
		v.setFilter(v.before)
		return nil
	case tea.KeyBackspace:
		if len(v.edit) > 0 {
			v.edit = v.edit[:len(v.edit)-1]
		}
	case tea.KeyCtrlU:
		v.edit = v.edit[:0]
	case tea.KeyRunes, tea.KeySpace:
		if len(v.edit)+len(k.Runes) > maxFilterLen {
			v.filterErr = fmt.Sprintf("a filter is at most %d characters", maxFilterLen)
			v.dirty = true
			return nil
		}
		v.edit = append(v.edit, k.Runes...)
	default:
		return nil
	}
	v.setFilter(string(v.edit))
	v.dirty = true
	return nil
}

// search asks the agents for older traces the filter matches, in the
// order the table is sorted by; nothing without a filter or sort, which
// the live table already shows.
func (v *tracesView) search() tea.Cmd {
	if v.filterErr != "" {
		return nil
	}
	q := v.filter.query()
	if q == (api.TraceQuery{}) && v.sortBy == api.SortTime {
		return nil // nothing the agents could narrow: the live table has it
	}
	q.Sort, q.Limit = v.sortBy, searchLimit
	return func() tea.Msg { return TraceSearchRequest(q) }
}

// searchLimit is how many traces a search asks each agent for.
const searchLimit = 200

// SetFilter replaces the filter, as if typed after /.
func (v *tracesView) setFilter(text string) {
	f, err := parseTraceFilter(text)
	v.filterErr = ""
	if err != nil {
		// Keep the last good filter while the text is being fixed.
		v.filterErr = err.Error()
		v.filterText = text
		v.dirty = true
		return
	}
	v.filter, v.filterText = f, text
	if v.paused {
		v.refilterFrozen()
	} else {
		v.rebuild()
	}
}

// at returns the row shown at display index i: 0 is the newest, or the
// slowest or dearest when sorted so.
func (v *tracesView) at(i int) row {
	if v.sortBy != api.SortTime {
		v.ensureSorted()
		return v.shown[v.sorted[i]]
	}
	return v.shown[len(v.shown)-1-i]
}

// ensureSorted orders the shown rows by sortBy, largest first, ties
// newest first; it runs at most once per change of the shown rows.
func (v *tracesView) ensureSorted() {
	if !v.sortStale && len(v.sorted) == len(v.shown) {
		return
	}
	// Indexes, not rows, are moved: a row is a few hundred bytes.
	v.sorted = v.sorted[:0]
	for i := range v.shown {
		v.sorted = append(v.sorted, int32(i))
	}
	byCost := v.sortBy == api.SortCost
	slices.SortStableFunc(v.sorted, func(i, j int32) int {
		a, b := &v.shown[i].s, &v.shown[j].s
		var c int
		if byCost {
			c = cmp.Compare(b.CostUSD, a.CostUSD)
		} else {
			c = cmp.Compare(b.Duration, a.Duration)
		}
		if c != 0 {
			return c
		}
		return b.Start.Compare(a.Start)
	})
	v.sortStale = false
}

func (v *tracesView) selected() (trace.Summary, bool) {
	if len(v.shown) == 0 {
		return trace.Summary{}, false
	}
	return v.at(v.cur.cursor).s, true
}

// add takes new summaries in. It costs O(batch) in the common case (rows
// arrive in time order) and renders nothing: the table is drawn once per
// View.
func (v *tracesView) add(batch []trace.Summary) {
	added := 0
	for _, s := range batch {
		if _, dup := v.ids[s.ID]; dup || s.ID == "" {
			continue
		}
		v.ids[s.ID] = struct{}{}
		v.seq++
		r := row{seq: v.seq, s: s}
		v.all = insertRow(v.all, r)
		if !v.filter.match(&s) {
			continue
		}
		if v.paused {
			v.held++
			continue
		}
		v.shown = insertRow(v.shown, r)
		added++
	}
	v.trim()
	if added > 0 {
		v.sortStale = true
		v.reanchor(added)
		v.dirty = true
	} else if v.paused && len(batch) > 0 {
		v.dirty = true // the held-back counter changed
	}
}

// insertRow puts r into rows by start time. Feeds from several agents
// interleave, so a row may belong a little before the end.
func insertRow(rows []row, r row) []row {
	n := len(rows)
	if n == 0 || !r.s.Start.Before(rows[n-1].s.Start) {
		return append(rows, r)
	}
	i := sort.Search(n, func(i int) bool { return rows[i].s.Start.After(r.s.Start) })
	rows = append(rows, row{})
	copy(rows[i+1:], rows[i:])
	rows[i] = r
	return rows
}

// trim drops the oldest rows beyond max. It waits for a quarter of slack
// and compacts in place, so rows are moved once per max/4 arrivals and the
// backing arrays, allocated once, are never grown again.
func (v *tracesView) trim() {
	if len(v.all) > v.max+v.max/4 {
		drop := len(v.all) - v.max
		for _, r := range v.all[:drop] {
			delete(v.ids, r.s.ID)
		}
		v.all = compact(v.all, drop)
	}
	if !v.paused && len(v.shown) > v.max+v.max/4 {
		v.shown = compact(v.shown, len(v.shown)-v.max)
		v.sortStale = true
		v.dirty = true
	}
}

// compact removes the first drop rows, keeping the backing array and
// clearing the tail so dropped summaries can be collected.
func compact(rows []row, drop int) []row {
	n := copy(rows, rows[drop:])
	clear(rows[n:])
	return rows[:n]
}

// reanchor keeps the cursor on the selected trace after rows came in.
// Following the newest (no anchor), it stays on top.
func (v *tracesView) reanchor(added int) {
	h := v.bodyRows()
	if v.anchor == "" {
		v.cur.cursor = 0
		v.cur.clamp(len(v.shown), h)
		return
	}
	prev := v.cur.cursor
	// Common case: the new rows are all newer than the selected one.
	if i := prev + added; v.sortBy == api.SortTime && i < len(v.shown) && v.at(i).s.ID == v.anchor {
		v.shiftTo(i, prev, h)
		return
	}
	for i := range v.shown {
		if v.at(i).s.ID == v.anchor {
			v.shiftTo(i, prev, h)
			return
		}
	}
	// The selected row fell off the end: stay at the bottom.
	v.cur.cursor = len(v.shown) - 1
	v.cur.clamp(len(v.shown), h)
	if len(v.shown) > 0 {
		v.anchor = v.at(v.cur.cursor).s.ID
	}
}

// shiftTo moves the cursor to i and the window with it, so the selected
// row stays where it was on screen while rows are added above it.
func (v *tracesView) shiftTo(i, prev, h int) {
	v.cur.offset += i - prev
	v.cur.cursor = i
	v.cur.clamp(len(v.shown), h)
}

// rebuild recomputes the shown rows from all rows and the filter.
func (v *tracesView) rebuild() {
	if c := v.max + v.max/4 + 1; cap(v.shown) < c {
		v.shown = make([]row, 0, c)
	}
	v.shown = v.shown[:0]
	for _, r := range v.all {
		if v.filter.match(&r.s) {
			v.shown = append(v.shown, r)
		}
	}
	v.sortStale = true
	v.reanchorFull()
}

// refilterFrozen applies a new filter while paused: to the frozen rows, and
// to the count of those held back.
func (v *tracesView) refilterFrozen() {
	frozen := v.shown[:0:0]
	v.held = 0
	for _, r := range v.all {
		if !v.filter.match(&r.s) {
			continue
		}
		if r.seq > v.pauseSeq {
			v.held++
		} else {
			frozen = append(frozen, r)
		}
	}
	v.shown = frozen
	v.sortStale = true
	v.reanchorFull()
}

func (v *tracesView) reanchorFull() {
	v.dirty = true
	h := v.bodyRows()
	if v.anchor != "" {
		for i := range v.shown {
			if v.at(i).s.ID == v.anchor {
				v.cur.cursor = i
				v.cur.clamp(len(v.shown), h)
				return
			}
		}
	}
	v.anchor = ""
	v.cur = list{}
}

// pause freezes the rows on screen: while paused nothing but a new filter
// writes to the shown rows, and trim leaves them alone.
func (v *tracesView) pause() {
	v.paused = true
	v.pauseSeq = v.seq
	v.held = 0
	if v.anchor == "" && len(v.shown) > 0 {
		// Paused rows do not move; pin the cursor so it stays put on resume.
		v.anchor = v.at(v.cur.cursor).s.ID
	}
	v.dirty = true
}

func (v *tracesView) resume() {
	v.paused = false
	v.held = 0
	v.rebuild()
}

var traceCols = []column{
	{title: "TIME", width: 8},
	{title: "NODE", width: 8, drop: 3},
	{title: "FEATURE", width: 12, flex: true},
	{title: "REL", width: 4},
	{title: "MODEL", width: 11, drop: 2},
	{title: "STATUS", width: 7},
	{title: "DUR", width: 7, right: true},
	{title: "TOKENS", width: 9, right: true, drop: 4},
	{title: "COST", width: 7, right: true},
	{title: "VAL", width: 3, right: true, drop: 5},
	{title: "FB", width: 4},
	{title: "ID", width: 8, drop: 6},
}

// traceCells renders one summary; a row from a stale agent has its node
// marked with "!".
func traceCells(s *trace.Summary, stale map[string]bool, loc *time.Location) []string {
	node := s.Node
	if stale[s.Node] {
		node += "!"
	}
	status := s.Status
	if s.Status != "ok" {
		status = "ERR"
		if s.HTTPStatus != 0 {
			status = fmt.Sprintf("ERR %d", s.HTTPStatus)
		}
	}
	if s.Cached {
		status += " c"
	}
	val := ""
	if s.Validation > 0 {
		val = fmt.Sprintf("%d", s.Validation)
	}
	fb := s.Feedback
	switch fb {
	case "up":
		fb = "+1"
	case "down":
		fb = "-1"
	}
	rel := s.Release
	if i := strings.LastIndexByte(rel, '@'); i >= 0 {
		rel = rel[i+1:]
	}
	id := s.ID
	if len(id) > 8 {
		id = id[:8]
	}
	cost := usd(s.CostUSD)
	if s.PriceUnknown { // not free: nobody knows
		cost = "unknown"
	}
	return []string{
		s.Start.In(loc).Format("15:04:05"),
		node,
		s.Feature,
		rel,
		s.Model,
		status,
		ms(s.Duration),
		fmt.Sprintf("%d/%d", s.InputTokens, s.OutputTokens),
		cost,
		val,
		fb,
		id,
	}
}

func (v *tracesView) View() string {
	if !v.dirty && v.cache != "" {
		return v.cache
	}
	st := v.env.st
	var lines []string

	state := "LIVE"
	if v.paused {
		state = fmt.Sprintf("PAUSED  +%d new held back (space resumes)", v.held)
	}
	title := fmt.Sprintf("Traces  %d of %d  %s", len(v.shown), len(v.all), state)
	if v.sortBy != api.SortTime {
		title += "  by " + v.sortBy + ", largest first"
	}
	lines = append(lines, st.Title.Render(title))

	widths := layout(traceCols, v.w)
	lines = append(lines, st.Header.Render(headerRow(traceCols, widths)))
	n := v.bodyRows()
	if v.editing || v.filterText != "" || v.filterErr != "" {
		n-- // the filter line takes one row at the bottom
	}
	v.cur.clamp(len(v.shown), n)
	if len(v.shown) == 0 {
		if len(v.all) == 0 {
			lines = append(lines, st.Dim.Render("  waiting for traces from the agents…"))
		} else {
			lines = append(lines, st.Dim.Render("  no trace matches the filter"))
		}
	}
	for i := v.cur.offset; i < len(v.shown) && i < v.cur.offset+n; i++ {
		r := v.at(i)
		line := renderRow(traceCols, widths, traceCells(&r.s, v.env.stale, v.env.loc), i == v.cur.cursor)
		switch {
		case i == v.cur.cursor:
			line = st.Selected.Render(line)
		case r.s.Status != "ok":
			line = st.Err.Render(line)
		}
		lines = append(lines, line)
	}
	out := fillLines(lines, v.h-boolInt(v.editing || v.filterText != "" || v.filterErr != ""))
	if v.editing || v.filterText != "" || v.filterErr != "" {
		f := "/" + v.filterText
		if v.editing {
			f = "/" + string(v.edit) + "_"
		}
		if v.filterErr != "" {
			f += "  " + st.Err.Render(v.filterErr)
		}
		out += "\n" + f
	}
	v.cache, v.dirty = out, false
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// containsFold reports whether s contains sub, ignoring ASCII case, without
// allocating: the filter runs over thousands of rows per keystroke.
func containsFold(s, sub string) bool {
	if sub == "" {
		return true
	}
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}
