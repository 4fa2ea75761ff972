package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"gantry/pipeline/trace"
)

// traceView shows one trace: its span waterfall with attempts and
// fallbacks, prompt and response as the agent sent them, retrieval sources,
// validation errors, policy decisions and feedback.
type traceView struct {
	env   *env
	w, h  int
	id    string
	node  string
	tr    *trace.Trace
	err   error
	lines []string
	off   int // first line on screen
}

func newTraceView(e *env) *traceView { return &traceView{env: e} }

func (v *traceView) Init() tea.Cmd { return nil }

func (v *traceView) SetSize(w, h int) { v.w, v.h = w, h; v.render() }

func (v *traceView) Actions() []Action {
	k := v.env.keys
	return append(navActions(k), Action{ID: ActYank, Name: "copy id", Key: k.Yank})
}

func (v *traceView) ShortHelp() []key.Binding {
	s, _ := helpOf(v.env, v.Actions())
	return s
}

func (v *traceView) FullHelp() [][]key.Binding {
	_, f := helpOf(v.env, v.Actions())
	return f
}

// open starts showing the trace id, loading until its TraceMsg arrives.
func (v *traceView) open(id, node string) {
	v.id, v.node, v.tr, v.err = id, node, nil, nil
	v.off = 0
	v.render()
}

func (v *traceView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case TraceMsg:
		if msg.ID != "" && msg.ID != v.id {
			return v, nil // an answer to a trace no longer on screen
		}
		if msg.Trace != nil {
			v.id = msg.Trace.ID
		}
		v.tr, v.err = msg.Trace, msg.Err
		v.off = 0
		v.render()
	case actionMsg:
		if msg.Action.ID == ActYank {
			if v.id == "" {
				return v, nil
			}
			return v, yank(v.id, "trace id")
		}
		v.off = scroll(v.off, msg.Action.ID, len(v.lines), v.h)
	}
	return v, nil
}

func (v *traceView) View() string {
	end := min(len(v.lines), v.off+v.h)
	return fillLines(v.lines[min(v.off, end):end], v.h)
}

func (v *traceView) render() {
	st := v.env.st
	switch {
	case v.id == "":
		v.lines = []string{st.Dim.Render("No trace open: press enter on a row of the traces view.")}
		return
	case v.err != nil:
		v.lines = []string{st.Err.Render(fmt.Sprintf("Trace %s: %v", v.id, v.err))}
		return
	case v.tr == nil:
		from := ""
		if v.node != "" {
			from = " from " + v.node
		}
		v.lines = []string{st.Dim.Render(fmt.Sprintf("Loading trace %s%s…", v.id, from))}
		return
	}
	v.lines = traceLines(v.tr, st, v.w, v.env.loc)
}

// traceLines lays a trace out for width w.
func traceLines(t *trace.Trace, st Styles, w int, loc *time.Location) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	section := func(name string) { out = append(out, "", st.Header.Render(name)) }

	status := "ok"
	if t.Status != "ok" {
		status = "ERROR"
	}
	cost := usd(t.CostUSD)
	if t.PriceUnknown {
		cost = "cost unknown"
	}
	out = append(out, st.Title.Render(fmt.Sprintf("Trace %s  %s %d  %s  %s", t.ID, status, t.HTTPStatus, ms(t.Duration), cost)))
	label := ""
	if t.Label != "" {
		label = " (" + t.Label + ")"
	}
	add("started %s on %s  entry %s", t.Start.In(loc).Format("2006-01-02 15:04:05.000"), orDash(t.Node), t.Entry)
	add("feature %s  release %s%s %s", orDash(t.Feature), orDash(t.Release), label, shortHash(t.ReleaseHash))
	flags := ""
	if t.Stream {
		flags += "  stream"
	}
	if t.Cached {
		flags += "  cached"
	}
	add("model %s via %s  requested %s  route %s%s", orDash(t.Model), orDash(t.Provider), orDash(t.Requested), orDash(t.Route), flags)
	est := ""
	if t.TokensEstimate {
		est = " (estimated)"
	}
	add("tokens %d in / %d out, %d cached%s  ttft %s  upstream %s", t.InputTokens, t.OutputTokens, t.CachedTokens, est, ms(t.TTFT), ms(t.Upstream))
	switch {
	case t.PriceUnknown:
		out = append(out, st.Warn.Render("price UNKNOWN: no configured or table price; counted as $0"))
	case t.PriceSource != "":
		add("price from %s", t.PriceSource)
	}
	if t.User != "" || t.Key != "" || t.Team != "" || t.Journey != "" {
		add("user %s  key %s  team %s  journey %s", orDash(t.User), orDash(t.Key), orDash(t.Team), orDash(t.Journey))
	}
	// Who called: for a refused call, the only way to find the caller.
	if t.KeyFP != "" || t.ClientAddr != "" || t.UserAgent != "" {
		out = append(out, fitLine(clean(fmt.Sprintf("caller key fingerprint %s  from %s  agent %q", orDash(t.KeyFP), orDash(t.ClientAddr), t.UserAgent), false), w))
	}
	if t.Error != "" {
		out = append(out, st.Err.Render(fmt.Sprintf("error %s: %s", orDash(t.ErrorCode), clean(t.Error, false))))
	}

	section(fmt.Sprintf("Waterfall (%d spans, %d attempts, %d fallbacks)", len(t.Spans), len(t.Attempts), t.Fallbacks))
	out = append(out, waterfall(t, w)...)

	if len(t.Attempts) > 0 {
		section("Attempts")
		for i, a := range t.Attempts {
			line := fmt.Sprintf("  %d %-8s %s/%s  %s", i+1, a.Status, a.Provider, a.Model, ms(a.Duration))
			if a.Backoff > 0 {
				line += "  backoff " + ms(a.Backoff)
			}
			if a.Error != "" {
				line += "  " + clean(a.Error, false)
			}
			if i > 0 && a.Model != t.Attempts[i-1].Model {
				line += "  (fallback)"
			}
			if a.Status != "ok" {
				line = st.Warn.Render(line)
			}
			out = append(out, line)
		}
	}
	if len(t.Validation) > 0 {
		section(fmt.Sprintf("Validation failures (%d)", len(t.Validation)))
		for _, v := range t.Validation {
			out = append(out, st.Err.Render("  ✗ "+clean(v, false)))
		}
	}
	if len(t.Policy) > 0 {
		section("Policy")
		for _, d := range t.Policy {
			where := d.Field
			if d.End > d.Start {
				where += fmt.Sprintf("[%d:%d]", d.Start, d.End)
			}
			add("  %s %s %s", d.Rule, orDash(where), d.Action)
		}
	}
	if len(t.Sources) > 0 {
		section(fmt.Sprintf("Retrieval sources (%d)", len(t.Sources)))
		for _, s := range t.Sources {
			idx := ""
			if s.Index != "" {
				idx = "  index " + s.Index
			}
			add("  %.2f %s#%s%s", s.Score, s.Document, s.Chunk, idx)
		}
	}
	section("Prompt (as the agent sent it: redacted unless captured)")
	out = append(out, wrapped(t.Input, w)...)
	section("Response")
	out = append(out, wrapped(t.Output, w)...)
	section(fmt.Sprintf("Feedback (%d)", len(t.Feedback)))
	if len(t.Feedback) == 0 {
		out = append(out, st.Dim.Render("  none"))
	}
	for _, f := range t.Feedback {
		line := "  " + f.Time.In(loc).Format("15:04:05")
		if f.Thumbs != "" {
			line += " thumbs " + f.Thumbs
		}
		if f.Score != nil {
			line += fmt.Sprintf(" score %.2f", *f.Score)
		}
		if f.Comment != "" {
			line += " \"" + clean(f.Comment, false) + "\""
		}
		if f.Correction != "" {
			line += " correction: " + clean(f.Correction, false)
		}
		out = append(out, line)
	}
	for i, l := range out {
		out[i] = ansi.Truncate(l, w, "")
	}
	return out
}

// waterfall draws each span and attempt as a bar placed on the trace's
// time axis, so where time went shows at a glance.
func waterfall(t *trace.Trace, w int) []string {
	nameW, durW := 16, 8
	if w >= 100 {
		nameW = 24 // room for the model names of attempts
	}
	barW := w - nameW - durW - 6
	if barW < 10 {
		barW = 10
	}
	total := t.Duration.D()
	for _, s := range t.Spans {
		if end := s.Offset.D() + s.Duration.D(); end > total {
			total = end
		}
	}
	if total <= 0 {
		total = time.Millisecond
	}
	draw := func(name string, start, d trace.Millis, failed bool) string {
		off := float64(start.D()) / float64(total) * float64(barW)
		length := float64(d.D()) / float64(total) * float64(barW)
		from := int(math.Max(0, math.Min(float64(barW-1), math.Floor(off))))
		n := int(math.Max(1, math.Round(length)))
		if from+n > barW {
			n = barW - from
		}
		glyph := "█"
		if failed {
			glyph = "▒" // failures differ in shape, not only colour
		}
		b := strings.Repeat(" ", from) + strings.Repeat(glyph, n) + strings.Repeat(" ", barW-from-n)
		return fmt.Sprintf("  %s %s |%s|", fit(name, nameW, false), fit(ms(d), durW, true), b)
	}
	scale := fmt.Sprintf("  %s %s  0%s%s", fit("", nameW, false), fit("", durW, false), strings.Repeat(" ", max(0, barW-1-len(ms(trace.Ms(total))))), ms(trace.Ms(total)))
	out := []string{scale}
	for _, s := range t.Spans {
		out = append(out, draw(s.Name, s.Offset, s.Duration, s.Error != ""))
		if s.Error != "" {
			out = append(out, "    ! "+clean(s.Error, false))
		}
	}
	for i, a := range t.Attempts {
		out = append(out, draw(fmt.Sprintf(" └ try %d %s", i+1, a.Model), a.Offset, a.Duration, a.Status != "ok"))
	}
	if len(t.Spans) == 0 && len(t.Attempts) == 0 {
		out = append(out, "  (no spans recorded)")
	}
	return out
}

// wrapped wraps text to the width, indented, or says it is empty.
func wrapped(s string, w int) []string {
	if strings.TrimSpace(s) == "" {
		return []string{"  (empty)"}
	}
	var out []string
	for _, l := range strings.Split(ansi.Wrap(clean(s, true), max(10, w-2), ""), "\n") {
		out = append(out, "  "+l)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
