package tui

import (
	"strings"
	"testing"
	"time"

	"gantry/pipeline/trace"
)

func TestSparkline(t *testing.T) {
	cases := []struct {
		vals []float64
		w    int
		want string
	}{
		{nil, 5, ""},
		{[]float64{0, 0}, 5, "▁▁"},
		{[]float64{1, 2, 4, 8}, 8, "▂▃▅█"},
		{[]float64{8, 1, 2, 4, 8}, 3, "▃▅█"}, // newest kept
	}
	for _, c := range cases {
		if got := sparkline(c.vals, c.w); got != c.want {
			t.Fatalf("sparkline(%v, %d) = %q, want %q", c.vals, c.w, got, c.want)
		}
	}
}

func TestBar(t *testing.T) {
	cases := []struct {
		f    float64
		w    int
		want string
	}{
		{0, 4, "░░░░"},
		{0.5, 4, "██░░"},
		{1.7, 4, "████"},
		{-1, 2, "░░"},
	}
	for _, c := range cases {
		if got := bar(c.f, c.w); got != c.want {
			t.Fatalf("bar(%v, %d) = %q, want %q", c.f, c.w, got, c.want)
		}
	}
}

func TestLayoutDropsColumnsInOrder(t *testing.T) {
	cols := []column{
		{title: "A", width: 10, flex: true},
		{title: "B", width: 10, drop: 1},
		{title: "C", width: 10, drop: 2},
		{title: "D", width: 10},
	}
	cases := []struct {
		w    int
		want []int
	}{
		{100, []int{64, 10, 10, 10}}, // the flex column takes the rest
		{45, []int{20, 10, 0, 10}},   // C goes first
		{30, []int{16, 0, 0, 10}},
	}
	for _, c := range cases {
		got := layout(cols, c.w)
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("layout at %d = %v, want %v", c.w, got, c.want)
			}
		}
	}
}

func TestFormatters(t *testing.T) {
	cases := []struct{ got, want string }{
		{ms(0), "-"},
		{ms(3.25), "3.2ms"},
		{ms(420), "420ms"},
		{ms(1920), "1.92s"},
		{ms(trace.Ms(90 * time.Second)), "1.5m"},
		{usd(0), "$0"},
		{usd(0.0031), "$0.0031"},
		{usd(12.5), "$12.50"},
		{usd(2150), "$2150"},
		{pct(0.021), "2.1%"},
		{pct(0.5), "50%"},
		{count(9200), "9200"},
		{count(4_500_000), "4500.0k"},
		{span(73 * time.Minute), "1h13m"},
		{span(3 * 24 * time.Hour), "3d"},
		{shortHash("sha256:0123456789abcdef"), "01234567"},
		{clean("a\x1b[31mb\tc\nd", false), "a[31mb c d"},
		{clean("a\nb", true), "a\nb"},
		{fit("support-answer", 8, false), "support…"},
		{fit("42", 5, true), "   42"},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Fatalf("case %d: got %q, want %q", i, c.got, c.want)
		}
	}
}

func TestReleaseTrendAgainstProduction(t *testing.T) {
	a := loaded(t, false, 120, 40)
	press(t, a, a.Keys().Releases)
	v := a.View()
	var canary, prod string
	for _, l := range strings.Split(v, "\n") {
		switch {
		case strings.Contains(l, "canary10%"):
			canary = l
		case strings.Contains(l, "support-answer") && strings.Contains(l, "PROD"):
			prod = l
		}
	}
	if !strings.Contains(canary, "12%↑") || !strings.Contains(canary, "4.10s↑") {
		t.Fatalf("canary row lacks worse-than-production glyphs: %q", canary)
	}
	if strings.ContainsAny(prod, "↑↓") {
		t.Fatalf("production row compared with itself: %q", prod)
	}
}

func TestScroll(t *testing.T) {
	cases := []struct {
		off      int
		id       ActionID
		total, h int
		want     int
	}{
		{0, ActDown, 50, 20, 1},
		{0, ActUp, 50, 20, 0},
		{0, ActPageDown, 50, 20, 10},
		{25, ActPageDown, 50, 20, 30}, // never past the last screenful
		{30, ActPageUp, 50, 20, 20},
		{5, ActBottom, 50, 20, 30},
		{5, ActTop, 50, 20, 0},
		{0, ActDown, 10, 20, 0}, // shorter than the screen
	}
	for _, c := range cases {
		if got := scroll(c.off, c.id, c.total, c.h); got != c.want {
			t.Fatalf("scroll(%d, %d, %d, %d) = %d, want %d", c.off, c.id, c.total, c.h, got, c.want)
		}
	}
}

func TestRowCellsAreCleaned(t *testing.T) {
	cols := []column{{title: "A", width: 20}}
	got := renderRow(cols, []int{20}, []string{"evil\x1b]52;c;aGk=\x07"}, false)
	if strings.ContainsAny(got, "\x1b\x07") {
		t.Fatalf("escape sequence reached the row: %q", got)
	}
}
