package trace

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTraceparent(t *testing.T) {
	const (
		tid = "4bf92f3577b34da6a3ce929d0e0e4736"
		sid = "00f067aa0ba902b7"
	)
	tests := []struct {
		name  string
		in    string
		ok    bool
		flags byte
	}{
		{"sampled", "00-" + tid + "-" + sid + "-01", true, 1},
		{"not sampled", "00-" + tid + "-" + sid + "-00", true, 0},
		{"other flags kept", "00-" + tid + "-" + sid + "-ff", true, 0xff},
		{"future version", "01-" + tid + "-" + sid + "-01", true, 1},
		{"future version with more", "cc-" + tid + "-" + sid + "-01-whatever", true, 1},
		{"empty", "", false, 0},
		{"short", "00-" + tid + "-" + sid + "-0", false, 0},
		{"version 00 too long", "00-" + tid + "-" + sid + "-01-x", false, 0},
		{"future version junk after", "01-" + tid + "-" + sid + "-01x", false, 0},
		{"version ff", "ff-" + tid + "-" + sid + "-01", false, 0},
		{"version upper", "0A-" + tid + "-" + sid + "-01", false, 0},
		{"zero trace id", "00-" + strings.Repeat("0", 32) + "-" + sid + "-01", false, 0},
		{"zero parent id", "00-" + tid + "-" + strings.Repeat("0", 16) + "-01", false, 0},
		{"upper hex", "00-" + strings.ToUpper(tid) + "-" + sid + "-01", false, 0},
		{"non hex", "00-" + tid[:31] + "g-" + sid + "-01", false, 0},
		{"wrong separator", "00_" + tid + "-" + sid + "-01", false, 0},
		{"bad flags", "00-" + tid + "-" + sid + "-0x", false, 0},
		{"spaces", " 00-" + tid + "-" + sid + "-1", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseTraceparent(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseTraceparent(%q): got error %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrTraceparent) {
					t.Fatalf("error %v does not wrap ErrTraceparent", err)
				}
				return
			}
			if p.TraceID.String() != tid || p.SpanID.String() != sid || p.Flags != tt.flags {
				t.Fatalf("parsed %s %s %02x, want %s %s %02x", p.TraceID, p.SpanID, p.Flags, tid, sid, tt.flags)
			}
		})
	}
}

func TestFormatTraceparent(t *testing.T) {
	in := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	p, err := ParseTraceparent(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != in {
		t.Fatalf("round trip: got %s, want %s", got, in)
	}
	if !p.Sampled() {
		t.Fatal("sampled flag lost")
	}
	child := FormatTraceparent(p.TraceID, NewSpanID(), p.Flags)
	q, err := ParseTraceparent(child)
	if err != nil {
		t.Fatalf("our own traceparent %q does not parse: %v", child, err)
	}
	if q.TraceID != p.TraceID || q.SpanID == p.SpanID {
		t.Fatalf("child %s: want the same trace id and a new span id", child)
	}
}

func TestNewIDs(t *testing.T) {
	seen := make(map[TraceID]bool)
	for range 1000 {
		id := NewTraceID()
		if id.IsZero() || seen[id] {
			t.Fatalf("NewTraceID gave %s twice or zero", id)
		}
		seen[id] = true
		if s := id.String(); len(s) != 32 || strings.ToLower(s) != s {
			t.Fatalf("trace id %q: want 32 lower-case hex digits", s)
		}
		if NewSpanID().IsZero() {
			t.Fatal("NewSpanID gave zero")
		}
	}
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseTraceparent(s)
		if err != nil {
			if !errors.Is(err, ErrTraceparent) {
				t.Fatalf("error %v does not wrap ErrTraceparent", err)
			}
			return
		}
		if p.TraceID.IsZero() || p.SpanID.IsZero() {
			t.Fatalf("accepted zero id in %q", s)
		}
		out := p.String()
		if s[:2] == "00" && out != s {
			t.Fatalf("version 00 round trip: got %q, want %q", out, s)
		}
		if q, err := ParseTraceparent(out); err != nil || q != p {
			t.Fatalf("re-parse of %q: got %+v, %v; want %+v", out, q, err, p)
		}
	})
}

func BenchmarkParseTraceparent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewTraceID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewTraceID()
	}
}
