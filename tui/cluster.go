package tui

import (
	"fmt"
	"sort"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
)

// clusterView lists the members with their raft role, vote, health and
// indexes, and marks the agents the console has lost.
type clusterView struct {
	env    *env
	w, h   int
	m      *api.Members
	errs   map[string]string // agent -> why the console lost it
	cur    list
	anchor string
}

func newClusterView(e *env) *clusterView {
	return &clusterView{env: e, errs: map[string]string{}}
}

func (v *clusterView) Init() tea.Cmd    { return nil }
func (v *clusterView) SetSize(w, h int) { v.w, v.h = w, h }

func (v *clusterView) Actions() []Action { return navActions(v.env.keys) }

func (v *clusterView) ShortHelp() []key.Binding {
	s, _ := helpOf(v.env, v.Actions())
	return s
}

func (v *clusterView) FullHelp() [][]key.Binding {
	_, f := helpOf(v.env, v.Actions())
	return f
}

func (v *clusterView) members() []api.Member {
	if v.m == nil {
		return nil
	}
	return v.m.Members
}

func (v *clusterView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case MembersMsg:
		m := api.Members(msg)
		m.Members = append([]api.Member(nil), m.Members...)
		// Leader first, then by id: a stable order to come back to.
		sort.SliceStable(m.Members, func(i, j int) bool {
			a, b := m.Members[i], m.Members[j]
			if (a.Role == api.RoleLeader) != (b.Role == api.RoleLeader) {
				return a.Role == api.RoleLeader
			}
			return a.ID < b.ID
		})
		v.m = &m
		for i, x := range m.Members {
			if x.ID == v.anchor {
				v.cur.cursor = i
			}
		}
		v.cur.clamp(len(m.Members), v.rows())
	case AgentStatusMsg:
		if msg.Err != nil {
			v.errs[msg.Agent] = msg.Err.Error()
		} else {
			delete(v.errs, msg.Agent)
		}
	case actionMsg:
		v.cur.move(msg.Action.ID, len(v.members()), v.rows())
		if ms := v.members(); len(ms) > 0 {
			v.anchor = ms[v.cur.cursor].ID
		}
	}
	return v, nil
}

func (v *clusterView) rows() int { return max(1, v.h-4) }

var memberCols = []column{
	{title: "ID", width: 10, flex: true},
	{title: "ROLE", width: 9},
	{title: "VOTER", width: 5},
	{title: "HEALTH", width: 7},
	{title: "RAFT", width: 15, drop: 3},
	{title: "HTTP", width: 15, drop: 4},
	{title: "CONTACT", width: 8, right: true},
	{title: "LAST", width: 7, right: true, drop: 2},
	{title: "APPLIED", width: 7, right: true},
	{title: "LAG", width: 5, right: true},
}

func (v *clusterView) View() string {
	st := v.env.st
	now := v.env.now()
	var lines []string
	if v.m == nil {
		lines = append(lines, st.Title.Render("Cluster"), st.Dim.Render("Waiting for the member list…"))
		return fillLines(lines, v.h)
	}
	voters, maxIdx := 0, uint64(0)
	for _, m := range v.m.Members {
		if m.Voter {
			voters++
		}
		maxIdx = max(maxIdx, m.AppliedIndex)
	}
	leader := v.m.Leader
	if leader == "" {
		leader = st.Err.Render("NONE (no quorum: agents serve with their last config)")
	}
	lines = append(lines, st.Title.Render(fmt.Sprintf("Cluster  leader %s  term %d  %d members, %d voters", leader, v.m.Term, len(v.m.Members), voters)))
	widths := layout(memberCols, v.w)
	lines = append(lines, st.Header.Render(headerRow(memberCols, widths)))
	n := v.rows()
	v.cur.clamp(len(v.m.Members), n)
	for i := v.cur.offset; i < len(v.m.Members) && i < v.cur.offset+n; i++ {
		m := v.m.Members[i]
		health := "ok"
		if !m.Healthy {
			health = "DOWN"
		}
		if v.env.stale[m.ID] {
			health = "STALE!"
		}
		voter := "no"
		if m.Voter {
			voter = "yes"
		}
		contact := "-"
		if !m.LastContact.IsZero() {
			contact = span(now.Sub(m.LastContact))
		}
		cells := []string{
			m.ID, m.Role, voter, health, m.RaftAddr, m.HTTPAddr, contact,
			fmt.Sprint(m.LastIndex), fmt.Sprint(m.AppliedIndex), fmt.Sprint(maxIdx - m.AppliedIndex),
		}
		line := renderRow(memberCols, widths, cells, i == v.cur.cursor)
		switch {
		case i == v.cur.cursor:
			line = st.Selected.Render(line)
		case health != "ok":
			line = st.Err.Render(line)
		}
		lines = append(lines, line)
	}
	var notes []string
	for _, m := range v.m.Members {
		if m.Error != "" {
			notes = append(notes, fmt.Sprintf("%s: %s", m.ID, clean(m.Error, false)))
		}
	}
	for a, e := range v.errs {
		notes = append(notes, fmt.Sprintf("%s: console lost contact: %s", a, clean(e, false)))
	}
	sort.Strings(notes)
	if len(notes) > 0 {
		lines = append(lines, "")
		for _, n := range notes {
			lines = append(lines, st.Warn.Render(n))
		}
	}
	return fillLines(lines, v.h)
}
