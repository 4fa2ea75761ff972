package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
)

// auditView is the cluster's audit log: every accepted change, whoever
// made it (console, CLI, API or a reload), newest first, filterable by
// actor, kind and object, with the selected entry's before/after diff.
type auditView struct {
	env  *env
	w, h int

	list  *api.AuditList
	err   string
	asked api.AuditQuery // the query the shown page answers

	filter     auditFilter
	filterText string
	editing    bool
	edit       []rune
	before     string
	filterErr  string

	shown  []api.AuditEntry
	cur    list
	anchor uint64 // seq of the selected entry; 0 follows the newest
}

func newAuditView(e *env) *auditView { return &auditView{env: e} }

func (v *auditView) Init() tea.Cmd    { return nil }
func (v *auditView) SetSize(w, h int) { v.w, v.h = w, h }

func (v *auditView) Actions() []Action {
	k := v.env.keys
	return append(navActions(k), Action{ID: ActFilter, Name: "filter", Key: k.Filter})
}

func (v *auditView) ShortHelp() []key.Binding {
	s, _ := helpOf(v.env, v.Actions())
	return s
}

func (v *auditView) FullHelp() [][]key.Binding {
	_, f := helpOf(v.env, v.Actions())
	return f
}

func (v *auditView) notes() []string {
	return []string{"",
		v.env.st.Header.Render("Filter (/): all terms match"),
		"  actor:NAME part of who made the change (token:alice, local:root); kind:KIND the change, exactly",
		"  (move_label, apply_config, put_key, …); object:TEXT part of what changed (support-answer, key/);",
		"  a word without field matches any column, the diff included",
		"  under the list: the selected change, field by field: - before, + after"}
}

func (v *auditView) Editing() bool { return v.editing }

// Back clears the filter first.
func (v *auditView) Back() bool {
	if v.filterText != "" {
		v.setFilter("")
		return true
	}
	return false
}

// request asks for the log the filter wants: kind and object narrow the
// agent's page; actor and words are applied to it here, as actors carry
// the operator's name after the token's.
func (v *auditView) request() tea.Cmd {
	q := api.AuditQuery{Kind: v.filter.kind, Object: v.filter.object, Limit: 200}
	if v.filter.actor != "" || len(v.filter.words) > 0 {
		q.Limit = api.MaxAuditLimit
	}
	return func() tea.Msg { return AuditRequest(q) }
}

func (v *auditView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case AuditMsg:
		if msg.Err != nil {
			v.err = msg.Err.Error()
			return v, nil
		}
		v.err = ""
		l := msg.List
		v.list, v.asked = &l, msg.Query
		v.refilter()
	case tea.KeyMsg:
		if v.editing {
			return v, v.editKey(msg)
		}
	case actionMsg:
		if msg.Action.ID == ActFilter {
			v.editing, v.before, v.edit = true, v.filterText, []rune(v.filterText)
			return v, nil
		}
		v.cur.move(msg.Action.ID, len(v.shown), v.tableRows())
		v.anchor = 0
		if v.cur.cursor > 0 {
			v.anchor = v.shown[v.cur.cursor].Seq
		}
	}
	return v, nil
}

func (v *auditView) editKey(k tea.KeyMsg) tea.Cmd {
	switch k.Type {
	case tea.KeyEnter:
		v.editing = false
		return v.request()
	case tea.KeyEsc:
		v.editing = false
		v.setFilter(v.before)
		return v.request()
	case tea.KeyBackspace:
		if len(v.edit) > 0 {
			v.edit = v.edit[:len(v.edit)-1]
		}
	case tea.KeyCtrlU:
		v.edit = v.edit[:0]
	case tea.KeyRunes, tea.KeySpace:
		if len(v.edit)+len(k.Runes) > maxFilterLen {
			v.filterErr = fmt.Sprintf("a filter is at most %d characters", maxFilterLen)
			return nil
		}
		v.edit = append(v.edit, k.Runes...)
	default:
		return nil
	}
	v.setFilter(string(v.edit))
	return nil
}

// setFilter applies a filter to the page shown; the agents are asked for
// a fresh page when typing ends.
func (v *auditView) setFilter(text string) {
	f, err := parseAuditFilter(text)
	v.filterText, v.filterErr = text, ""
	if err != nil {
		v.filterErr = err.Error()
		return
	}
	v.filter = f
	v.refilter()
}

func (v *auditView) refilter() {
	v.shown = v.shown[:0]
	if v.list != nil {
		for _, e := range v.list.Entries {
			if v.filter.match(&e) {
				v.shown = append(v.shown, e)
			}
		}
	}
	// At the top, the cursor follows the newest change; moved down, it
	// stays on its entry as newer ones arrive.
	v.cur.cursor = 0
	for i, e := range v.shown {
		if v.anchor != 0 && e.Seq == v.anchor {
			v.cur.cursor = i
		}
	}
	v.cur.clamp(len(v.shown), v.tableRows())
}

// detailRows is the height of the selected entry's pane.
func (v *auditView) detailRows() int { return max(4, v.h/3) }

func (v *auditView) tableRows() int {
	n := v.h - 2 - v.detailRows() - 1
	if v.editing || v.filterText != "" {
		n--
	}
	return max(1, n)
}

var auditCols = []column{
	{title: "TIME", width: 8},
	{title: "ACTOR", width: 16, flex: true},
	{title: "KIND", width: 14},
	{title: "OBJECT", width: 24},
	{title: "CHANGE", width: 24, drop: 1},
}

func (v *auditView) View() string {
	st := v.env.st
	var lines []string
	title := "Audit log of the cluster"
	if v.list != nil {
		title += fmt.Sprintf("  %d of %d newest", len(v.shown), len(v.list.Entries))
	}
	lines = append(lines, st.Title.Render(title))
	if v.err != "" {
		lines = append(lines, st.Err.Render(fitLine("! "+clean(v.err, false), v.w)))
	}
	widths := layout(auditCols, v.w)
	lines = append(lines, st.Header.Render(headerRow(auditCols, widths)))
	n := v.tableRows()
	v.cur.clamp(len(v.shown), n)
	switch {
	case v.list == nil && v.err == "":
		lines = append(lines, st.Dim.Render("  waiting for the audit log…"))
	case v.list != nil && len(v.shown) == 0:
		lines = append(lines, st.Dim.Render("  no change matches"))
	}
	for i := v.cur.offset; i < len(v.shown) && i < v.cur.offset+n; i++ {
		e := v.shown[i]
		cells := []string{e.Time.In(v.env.loc).Format("15:04:05"), e.Actor, e.Command, e.Target, changeText(e)}
		line := renderRow(auditCols, widths, cells, i == v.cur.cursor)
		if i == v.cur.cursor {
			line = st.Selected.Render(line)
		}
		lines = append(lines, line)
	}
	body := fillLines(lines, v.h-v.detailRows()-boolInt(v.editing || v.filterText != ""))
	detail := fillLines(v.detail(), v.detailRows())
	out := body + "\n" + detail
	if v.editing || v.filterText != "" {
		f := "/" + v.filterText
		if v.editing {
			f = "/" + string(v.edit) + "_"
		}
		if v.filterErr != "" {
			f += "  " + st.Err.Render(v.filterErr)
		}
		out += "\n" + fitLine(f, v.w)
	}
	return out
}

// changeText is an entry's change in one cell: before -> after.
func changeText(e api.AuditEntry) string {
	switch {
	case e.Before == "" && e.After == "":
		return ""
	case e.Before == "":
		return "+ " + e.After
	case e.After == "":
		return "- " + e.Before
	}
	return e.Before + " -> " + e.After
}

// detail is the selected entry: who, when, why, and the diff.
func (v *auditView) detail() []string {
	st := v.env.st
	if len(v.shown) == 0 {
		return nil
	}
	e := v.shown[v.cur.cursor]
	head := fmt.Sprintf("%s %s by %s at %s, log index %d", e.Command, e.Target, e.Actor, e.Time.In(v.env.loc).Format("2006-01-02 15:04:05"), e.Index)
	out := []string{st.Header.Render(fitLine(clean(head, false), v.w))}
	if e.Reason != "" {
		out = append(out, fitLine("  why: "+clean(e.Reason, false), v.w))
	}
	if e.RequestID != "" {
		out = append(out, st.Dim.Render(fitLine("  request "+clean(e.RequestID, false), v.w)))
	}
	side := func(op, field, val string) string {
		if val == "" {
			val = "(absent)"
		}
		return fitLine(fmt.Sprintf("  %s %s: %s", op, clean(field, false), clean(val, false)), v.w)
	}
	if len(e.Diff) == 0 {
		out = append(out, st.Remove.Render(side("-", "before", e.Before)), st.Add.Render(side("+", "after", e.After)))
	}
	for _, d := range e.Diff {
		if d.Before != "" || d.After == "" {
			out = append(out, st.Remove.Render(side("-", d.Field, d.Before)))
		}
		if d.After != "" || d.Before == "" {
			out = append(out, st.Add.Render(side("+", d.Field, d.After)))
		}
	}
	return out
}

// auditFilter is a parsed audit filter.
type auditFilter struct {
	actor, kind, object string // actor lower case, for matching
	words               []string
}

func parseAuditFilter(text string) (auditFilter, error) {
	var f auditFilter
	words, err := filterWords(text)
	if err != nil {
		return f, err
	}
	for _, w := range words {
		name, val, ok := strings.Cut(w, ":")
		if !ok {
			f.words = append(f.words, strings.ToLower(w))
			continue
		}
		if val == "" {
			return auditFilter{}, fmt.Errorf("%s: needs a value, e.g. %s:support-answer", name, name)
		}
		switch strings.ToLower(name) {
		case "actor", "who", "a":
			f.actor = strings.ToLower(val)
		case "kind", "k", "command":
			f.kind = val
		case "object", "o", "target":
			f.object = val
		default:
			return auditFilter{}, fmt.Errorf("unknown field %q: use actor, kind or object", name)
		}
	}
	return f, nil
}

func (f auditFilter) match(e *api.AuditEntry) bool {
	if f.actor != "" && !containsFold(e.Actor, f.actor) {
		return false
	}
	if f.kind != "" && e.Command != f.kind {
		return false
	}
	if f.object != "" && !containsFold(e.Target, strings.ToLower(f.object)) {
		return false
	}
	for _, w := range f.words {
		if !(containsFold(e.Actor, w) || containsFold(e.Command, w) || containsFold(e.Target, w) || containsFold(e.Before, w) ||
			containsFold(e.After, w) || containsFold(e.Reason, w) || diffHas(e.Diff, w)) {
			return false
		}
	}
	return true
}

func diffHas(d []api.AuditChange, w string) bool {
	for _, c := range d {
		if containsFold(c.Field, w) || containsFold(c.Before, w) || containsFold(c.After, w) {
			return true
		}
	}
	return false
}
