package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"gantry/pipeline/trace"
)

// column is one column of a table. Flex columns share what the fixed ones
// leave; a column with min > 0 is dropped when even min does not fit.
type column struct {
	title string
	width int
	right bool
	flex  bool
	drop  int // columns with higher drop are dropped first when narrow
}

// layout returns the widths of cols for a table of the given width, 0 for
// dropped columns. Two characters go to the row marker.
func layout(cols []column, width int) []int {
	w := make([]int, len(cols))
	avail := width - 2
	need := func() int {
		n := 0
		for i, c := range cols {
			if w[i] > 0 || c.flex {
				n += c.width + 1
			}
		}
		return n
	}
	for i, c := range cols {
		w[i] = c.width
	}
	// Drop columns, highest drop first, until the rest fit.
	for need() > avail {
		best := -1
		for i, c := range cols {
			if w[i] > 0 && c.drop > 0 && (best < 0 || c.drop > cols[best].drop) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		w[best] = 0
	}
	extra := avail - need()
	flex := 0
	for i, c := range cols {
		if c.flex && w[i] > 0 {
			flex++
		}
	}
	for i, c := range cols {
		if c.flex && w[i] > 0 && flex > 0 {
			add := extra / flex
			w[i] += add
			extra -= add
			flex--
		}
	}
	return w
}

// renderRow lays cells out in widths; "> " marks the selected row so it
// shows without colour.
func renderRow(cols []column, widths []int, cells []string, selected bool) string {
	var b strings.Builder
	if selected {
		b.WriteString("> ")
	} else {
		b.WriteString("  ")
	}
	first := true
	for i, c := range cols {
		if widths[i] <= 0 {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		cell := ""
		if i < len(cells) {
			// Cells carry what agents sent; no escape sequence gets through.
			cell = clean(cells[i], false)
		}
		b.WriteString(fit(cell, widths[i], c.right))
	}
	return strings.TrimRight(b.String(), " ")
}

// headerRow is the column titles.
func headerRow(cols []column, widths []int) string {
	t := make([]string, len(cols))
	for i, c := range cols {
		t[i] = c.title
	}
	return renderRow(cols, widths, t, false)
}

// fit pads or cuts s to exactly w cells.
func fit(s string, w int, right bool) string {
	n := ansi.StringWidth(s)
	if n > w {
		if w <= 1 {
			return ansi.Truncate(s, w, "")
		}
		return ansi.Truncate(s, w, "…")
	}
	pad := strings.Repeat(" ", w-n)
	if right {
		return pad + s
	}
	return s + pad
}

// fitLine cuts one line to w cells with an ellipsis.
func fitLine(s string, w int) string {
	if ansi.StringWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, max(1, w), "…")
}

// clip cuts every line of s to width cells.
func clip(s string, width int) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if ansi.StringWidth(l) > width {
			lines[i] = ansi.Truncate(l, width, "")
		}
	}
	return strings.Join(lines, "\n")
}

// fillLines returns exactly h lines: lines cut or padded with empty ones.
func fillLines(lines []string, h int) string {
	if h <= 0 {
		return ""
	}
	if len(lines) > h {
		lines = lines[:h]
	}
	out := make([]string, h)
	copy(out, lines)
	return strings.Join(out, "\n")
}

// list is a cursor over n rows in a window of h rows.
type list struct {
	cursor, offset int
}

// move applies a navigation action for n rows shown h at a time.
func (l *list) move(id ActionID, n, h int) {
	page := max(1, h/2)
	switch id {
	case ActUp:
		l.cursor--
	case ActDown:
		l.cursor++
	case ActTop:
		l.cursor = 0
	case ActBottom:
		l.cursor = n - 1
	case ActPageUp:
		l.cursor -= page
	case ActPageDown:
		l.cursor += page
	}
	l.clamp(n, h)
}

// clamp keeps the cursor on a row and in the window.
func (l *list) clamp(n, h int) {
	if l.cursor >= n {
		l.cursor = n - 1
	}
	if l.cursor < 0 {
		l.cursor = 0
	}
	if h < 1 {
		h = 1
	}
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+h {
		l.offset = l.cursor - h + 1
	}
	if l.offset > max(0, n-h) {
		l.offset = max(0, n-h)
	}
	if l.offset < 0 {
		l.offset = 0
	}
}

// scroll moves the top line of a text of total lines shown h at a time.
func scroll(off int, id ActionID, total, h int) int {
	page := max(1, h/2)
	switch id {
	case ActUp:
		off--
	case ActDown:
		off++
	case ActTop:
		off = 0
	case ActBottom:
		off = total
	case ActPageUp:
		off -= page
	case ActPageDown:
		off += page
	}
	return max(0, min(off, total-h))
}

// sparkline draws values as block glyphs, scaled to their maximum, newest on
// the right, in at most w cells.
func sparkline(vals []float64, w int) string {
	if w <= 0 || len(vals) == 0 {
		return ""
	}
	if len(vals) > w {
		vals = vals[len(vals)-w:]
	}
	const glyphs = "▁▂▃▄▅▆▇█"
	g := []rune(glyphs)
	hi := 0.0
	for _, v := range vals {
		hi = math.Max(hi, v)
	}
	var b strings.Builder
	for _, v := range vals {
		i := 0
		if hi > 0 && v > 0 {
			i = int(math.Round(v / hi * float64(len(g)-1)))
		}
		b.WriteRune(g[i])
	}
	return b.String()
}

// bar draws frac (0..1, clipped) as a w-cell bar.
func bar(frac float64, w int) string {
	if w <= 0 {
		return ""
	}
	if frac < 0 || math.IsNaN(frac) {
		frac = 0
	}
	full := int(math.Round(math.Min(frac, 1) * float64(w)))
	return strings.Repeat("█", full) + strings.Repeat("░", w-full)
}

// ms formats milliseconds for a table cell.
func ms(m trace.Millis) string {
	switch {
	case m <= 0:
		return "-"
	case m < 10:
		return fmt.Sprintf("%.1fms", float64(m))
	case m < 1000:
		return fmt.Sprintf("%.0fms", float64(m))
	case m < 60_000:
		return fmt.Sprintf("%.2fs", float64(m)/1000)
	}
	return fmt.Sprintf("%.1fm", float64(m)/60_000)
}

// usd formats dollars with precision that suits the amount.
func usd(v float64) string {
	switch {
	case v == 0:
		return "$0"
	case v < 0.01:
		return fmt.Sprintf("$%.4f", v)
	case v < 100:
		return fmt.Sprintf("$%.2f", v)
	}
	return fmt.Sprintf("$%.0f", v)
}

// pct formats a 0..1 fraction.
func pct(f float64) string {
	if f == 0 {
		return "0%"
	}
	if f < 0.1 {
		return fmt.Sprintf("%.1f%%", f*100)
	}
	return fmt.Sprintf("%.0f%%", f*100)
}

// count formats a count compactly.
func count(n int64) string {
	switch {
	case n < 10_000:
		return fmt.Sprintf("%d", n)
	case n < 10_000_000:
		return fmt.Sprintf("%.1fk", float64(n)/1000)
	}
	return fmt.Sprintf("%.1fM", float64(n)/1e6)
}

// ago formats how long ago t was, relative to now.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return span(now.Sub(t)) + " ago"
}

// age is how old t is, for narrow columns.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return span(now.Sub(t))
}

// span formats a duration coarsely.
func span(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// shortHash shows the first 8 hex digits of a sha256:... hash.
func shortHash(h string) string {
	h = strings.TrimPrefix(h, "sha256:")
	if len(h) > 8 {
		return h[:8]
	}
	return h
}

// center places s in the middle of a w x h box.
func center(s string, w, h int) string {
	return lipgloss.Place(w, h, lipgloss.Center, lipgloss.Center, s)
}

// clean removes control characters, escape sequences included, from text
// that came from users or upstreams, so a prompt cannot drive the terminal.
// Tabs become spaces; newlines stay when keepNL is set.
func clean(s string, keepNL bool) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			ok = false
			break
		}
	}
	if ok && !strings.ContainsRune(s, '\u009b') {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' && keepNL:
			return r
		case r == '\t' || r == '\n':
			return ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return -1
		}
		return r
	}, s)
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

// msOf is a float of milliseconds as the tables' Millis.
func msOf(v float64) trace.Millis { return trace.Millis(v) }

// secsF is a float of seconds as a duration.
func secsF(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }
