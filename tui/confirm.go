package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/config"
)

// Dialog fields, in focus order.
type field int

const (
	fieldWeight field = iota
	fieldReason
	fieldCancel
	fieldConfirm
)

// confirmDialog shows exactly what a change will do (feature, label, from
// and to release, what differs, how each is doing) and the gantry command
// that does the same. Cancel has the focus when it opens, so a stray enter
// changes nothing.
type confirmDialog struct {
	env     *env
	req     ActionRequest
	feature api.Feature
	stats   func() map[string]api.ReleaseStats // live: stats keep arriving while the dialog is open
	want    *DiffRequest
	diff    string
	fields  []field
	focus   int
	weight  []rune
	reason  []rune
	err     string
	closed  bool // set by the closing key, so a second enter cannot send twice
	moved   int  // where the label points now, when it moved since the dialog opened; -1 when not
	// gate is the promoted release's standing against the feature's
	// evaluation gate, nil when the feature has none.
	gate *api.Gate
	w, h int
}

// dialogClosedMsg tells the App the dialog closed; Req is set when it
// closed by confirming.
type dialogClosedMsg struct{ Req *ActionRequest }

var _ tea.Model = (*confirmDialog)(nil)

func (d *confirmDialog) Init() tea.Cmd { return nil }

// SetSize sets the area the dialog is centred in.
func (d *confirmDialog) SetSize(w, h int) { d.w, d.h = w, h }

// Update takes keys and the diff the dialog waits for.
func (d *confirmDialog) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case DiffMsg:
		d.setDiff(msg)
	case FeaturesMsg:
		d.labelsChanged(msg)
	case tea.KeyMsg:
		if d.closed {
			return d, nil
		}
		done, req := d.key(msg)
		if done {
			d.closed = true
			return d, func() tea.Msg { return dialogClosedMsg{Req: req} }
		}
	}
	return d, nil
}

// View draws the dialog centred in its area.
func (d *confirmDialog) View() string { return d.view(d.w, d.h) }

// ShortHelp is the dialog's keys.
func (d *confirmDialog) ShortHelp() []key.Binding {
	k := d.env.keys
	return []key.Binding{k.NextField, k.Confirm, k.Back}
}

// FullHelp is the dialog's keys in one column.
func (d *confirmDialog) FullHelp() [][]key.Binding { return [][]key.Binding{d.ShortHelp()} }

func newConfirmDialog(e *env, m confirmMsg, stats func() map[string]api.ReleaseStats) *confirmDialog {
	d := &confirmDialog{env: e, req: m.Req, feature: m.Feature, stats: stats, want: m.DiffWant, moved: -1}
	if m.Req.Kind == KindCanary {
		d.fields = []field{fieldWeight}
		d.weight = []rune(strconv.Itoa(m.Req.Weight))
	}
	if r, ok := m.Feature.Release(m.Req.To); ok && m.Req.Kind == KindPromote && r.Gate != nil && r.Gate.Gated {
		d.gate = r.Gate
	}
	d.fields = append(d.fields, fieldReason, fieldCancel, fieldConfirm)
	d.focus = len(d.fields) - 2 // Cancel
	if d.want == nil {
		d.diff = "no diff (nothing to compare with)"
	} else {
		d.diff = "loading diff…"
	}
	return d
}

// Focused reports which field has the focus, for tests and help.
func (d *confirmDialog) focused() field { return d.fields[d.focus] }

// setDiff takes the diff summary when it is the one the dialog waits for.
func (d *confirmDialog) setDiff(m DiffMsg) {
	if d.want == nil || m.Request != *d.want {
		return
	}
	if m.Err != nil {
		d.diff = "diff unavailable: " + m.Err.Error()
		return
	}
	d.diff = m.Diff.Summary()
}

// labelsChanged notices when someone else moved the label while the
// dialog is open. Confirming still sends the From the operator saw, which
// the agent refuses as a conflict; the warning says so before that.
func (d *confirmDialog) labelsChanged(fs []api.Feature) {
	for _, f := range fs {
		if f.Name != d.req.Feature {
			continue
		}
		now := f.Labels.Production
		if d.req.Label == config.LabelCanary {
			now = f.Labels.Canary
		}
		d.moved = -1
		if now != d.req.From {
			d.moved = now
		}
	}
}

// request is the change as it stands with the typed weight and reason.
func (d *confirmDialog) request() (ActionRequest, error) {
	r := d.req
	r.Reason = strings.TrimSpace(string(d.reason))
	if r.Kind == KindCanary {
		w, err := strconv.Atoi(string(d.weight))
		if err != nil || w < 1 || w > config.MaxCanaryWeight {
			return r, fmt.Errorf("weight must be a whole number from 1 to %d (%s ends a canary)", config.MaxCanaryWeight, d.env.keys.Abort.Help().Key)
		}
		r.Weight = w
	}
	if d.gate != nil && d.gate.Refusal != "" {
		// The gate refuses this release: confirming forces it, with the
		// reason the audit log keeps next to the verdict it overrides.
		r.Force = true
		if r.Reason == "" {
			r.CLI = CLICommand(r)
			return r, fmt.Errorf("the evaluation gate refuses v%d; type a reason to force the promotion", r.To)
		}
	}
	r.CLI = CLICommand(r)
	return r, nil
}

// key handles a key press. It returns done when the dialog closes, and the
// request when it closed by confirming.
func (d *confirmDialog) key(k tea.KeyMsg) (done bool, req *ActionRequest) {
	keys := d.env.keys
	switch {
	case key.Matches(k, keys.Back):
		return true, nil
	case key.Matches(k, keys.NextField) && k.Type != tea.KeyRight || k.Type == tea.KeyRight && d.focused() >= fieldCancel:
		d.focus = (d.focus + 1) % len(d.fields)
		return false, nil
	case key.Matches(k, keys.PrevField) && k.Type != tea.KeyLeft || k.Type == tea.KeyLeft && d.focused() >= fieldCancel:
		d.focus = (d.focus + len(d.fields) - 1) % len(d.fields)
		return false, nil
	case key.Matches(k, keys.Confirm):
		switch d.focused() {
		case fieldCancel:
			return true, nil
		case fieldConfirm:
			r, err := d.request()
			if err != nil {
				d.err = err.Error()
				return false, nil
			}
			return true, &r
		default:
			d.focus++
			return false, nil
		}
	}
	switch d.focused() {
	case fieldWeight:
		d.weight = edit(d.weight, k, func(r rune) bool { return r >= '0' && r <= '9' && len(d.weight) < 3 })
	case fieldReason:
		d.reason = edit(d.reason, k, func(r rune) bool { return r >= ' ' && len(d.reason) < 200 })
	}
	return false, nil
}

// edit applies a key to a one-line text field.
func edit(buf []rune, k tea.KeyMsg, ok func(rune) bool) []rune {
	switch k.Type {
	case tea.KeyBackspace:
		if len(buf) > 0 {
			buf = buf[:len(buf)-1]
		}
	case tea.KeyCtrlU:
		buf = buf[:0]
	case tea.KeyRunes, tea.KeySpace:
		for _, r := range k.Runes {
			if ok(r) {
				buf = append(buf, r)
			}
		}
	}
	return buf
}

func (d *confirmDialog) title(r ActionRequest) string {
	switch r.Kind {
	case KindPromote:
		return fmt.Sprintf("Promote %s v%d to production?", r.Feature, r.To)
	}
	if r.Label == config.LabelCanary && r.To == 0 {
		return fmt.Sprintf("End the canary v%d of %s? Production stays.", r.From, r.Feature)
	}
	if r.Kind == KindRollback {
		return fmt.Sprintf("Roll back %s production to v%d?", r.Feature, r.To)
	}
	return fmt.Sprintf("Send %d%% of %s traffic to canary v%d?", r.Weight, r.Feature, r.To)
}

// release describes version n of the feature in one line.
func (d *confirmDialog) release(n int) string {
	if n == 0 {
		return "none"
	}
	r, ok := d.feature.Release(n)
	if !ok {
		return fmt.Sprintf("v%d", n)
	}
	s := fmt.Sprintf("v%d %s", n, shortHash(r.Hash))
	if r.CreatedBy != "" {
		s += " by " + r.CreatedBy
	}
	if r.Note != "" {
		s += " \"" + clean(r.Note, false) + "\""
	}
	return s
}

func (d *confirmDialog) view(w, h int) string {
	st := d.env.st
	r, err := d.request()
	inner := min(w-4, 76)
	var b []string
	add := func(name, value string) {
		b = append(b, fit(name, 9, false)+" "+value)
	}
	b = append(b, st.Title.Render(d.title(r)))
	add("feature", r.Feature+", label "+r.Label)
	add("from", d.release(r.From))
	to := d.release(r.To)
	if r.Label == config.LabelCanary && r.To == 0 {
		to = "none: the canary ends"
	}
	add("to", to)
	versions := []int{r.From, r.To}
	if r.Label == config.LabelCanary {
		prod := d.feature.Labels.Production
		add("prod", d.release(prod))
		versions = []int{prod, r.From, r.To}
	}
	add("changes", d.diff)
	if g := d.gate; g != nil {
		add("gate", gateText(g))
		if g.Verdict != nil {
			for _, why := range g.Verdict.Reasons[:min(2, len(g.Verdict.Reasons))] {
				add("", clean(why, false))
			}
		}
	}
	if d.moved >= 0 {
		b = append(b, st.Err.Render(fmt.Sprintf("! %s moved to v%d since this opened: cancel and look again", r.Label, d.moved)))
	}
	// How each release involved is doing right now: the reason to act.
	seen := map[int]bool{}
	for _, n := range versions {
		if n == 0 || seen[n] {
			continue
		}
		seen[n] = true
		s, ok := d.stats()[fmt.Sprintf("%s@v%d", r.Feature, n)]
		add(fmt.Sprintf("v%d now", n), statsLine(s, ok))
	}
	b = append(b, "")
	input := func(f field, text string, width int) string {
		text = fit(text, width, false)
		if d.focused() == f {
			return "[" + text + "_]"
		}
		return "[" + text + " ]"
	}
	if r.Kind == KindCanary {
		add("weight", input(fieldWeight, string(d.weight), 3)+" %")
	}
	add("reason", input(fieldReason, string(d.reason), max(10, inner-13)))
	add("same as", r.CLI)
	if err != nil {
		b = append(b, st.Err.Render(err.Error()))
	} else if d.err != "" {
		b = append(b, st.Err.Render(d.err))
	}
	b = append(b, "")
	button := func(f field, label string) string {
		if d.focused() == f {
			return st.ButtonOn.Render("> " + label + " <")
		}
		return st.Button.Render("  " + label + "  ")
	}
	b = append(b, button(fieldCancel, "Cancel")+"   "+button(fieldConfirm, "Confirm")+"   "+st.Dim.Render("tab moves, enter chooses"))
	for i, l := range b {
		b[i] = fit(l, inner, false)
	}
	box := st.Dialog.Render(strings.Join(b, "\n"))
	return fillLines(strings.Split(center(box, w, h), "\n"), h)
}
