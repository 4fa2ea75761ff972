package api

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"gantry/pipeline/trace"
)

func TestAuditQueryRoundTrip(t *testing.T) {
	for _, q := range []AuditQuery{
		{},
		{Actor: "token:alice", Kind: "move_label", Object: "support-answer", Limit: 20, Cursor: "41"},
	} {
		got, err := ParseAuditQuery(q.Values())
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if got != q {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, q)
		}
	}
}

func TestParseAuditQueryErrors(t *testing.T) {
	for _, c := range []struct{ query, want string }{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"cursor=x", "cursor"},
		{"cursor=0", "cursor"},
		{"actor=" + strings.Repeat("a", 257), "actor"},
		{"object=" + strings.Repeat("o", 257), "object"},
	} {
		v, _ := url.ParseQuery(c.query)
		if _, err := ParseAuditQuery(v); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Fatalf("%s: error %v, want one about %s", c.query, err, c.want)
		}
	}
}

func TestSortTraces(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	sums := []trace.Summary{
		{ID: "a", Start: t0, Duration: 100, CostUSD: 0.3},
		{ID: "b", Start: t0.Add(time.Second), Duration: 900, CostUSD: 0.1},
		{ID: "c", Start: t0.Add(2 * time.Second), Duration: 100, CostUSD: 0.2},
	}
	ids := func() string {
		var s []string
		for _, x := range sums {
			s = append(s, x.ID)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct{ by, want string }{
		{SortDuration, "b,c,a"}, // ties newest first
		{SortCost, "a,c,b"},
		{SortTime, "c,b,a"},
		{"", "c,b,a"},
	} {
		SortTraces(sums, c.by)
		if got := ids(); got != c.want {
			t.Fatalf("sort %q: got %s, want %s", c.by, got, c.want)
		}
	}
}

func TestSortAlertsWorstFirst(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	as := []Alert{
		{ID: "i", Severity: SeverityInfo, Since: t0},
		{ID: "w-new", Severity: SeverityWarning, Since: t0.Add(time.Minute)},
		{ID: "c", Severity: SeverityCritical, Since: t0.Add(time.Hour)},
		{ID: "w-old", Severity: SeverityWarning, Since: t0},
	}
	SortAlerts(as)
	var got []string
	for _, a := range as {
		got = append(got, a.ID)
	}
	if want := []string{"c", "w-old", "w-new", "i"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if n := (Alerts{Alerts: as}).Count(); n[SeverityWarning] != 2 || n[SeverityCritical] != 1 {
		t.Fatalf("count %v", n)
	}
	if l := ViewLink("traces", url.Values{"model": {"gpt-4o"}, "status": {"error"}}); l != "traces?model=gpt-4o&status=error" {
		t.Fatalf("link %s", l)
	}
}

// FuzzParseTraceQuery feeds arbitrary query strings to the trace list's
// parser: it never panics, and what it accepts encodes back to itself.
func FuzzParseTraceQuery(f *testing.F) {
	f.Add("feature=a&sort=cost&min_cost=0.5&max_duration=2s&q=x")
	f.Add("min_duration=1h&user=u&key_fp=ab&error_kind=http_500&limit=10")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseTraceQuery(v)
		if err != nil {
			return
		}
		back, err := ParseTraceQuery(q.Values())
		if err != nil {
			t.Fatalf("accepted %q but not its encoding: %v", raw, err)
		}
		if !back.Since.Equal(q.Since) || !back.Until.Equal(q.Until) {
			t.Fatalf("times changed: %+v vs %+v", back, q)
		}
		back.Since, back.Until, q.Since, q.Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if back != q {
			t.Fatalf("round trip of %q:\n got %+v\nwant %+v", raw, back, q)
		}
	})
}

// FuzzParseAuditQuery does the same for the audit log's parser.
func FuzzParseAuditQuery(f *testing.F) {
	f.Add("actor=token:alice&kind=move_label&object=support&limit=5&cursor=9")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseAuditQuery(v)
		if err != nil {
			return
		}
		back, err := ParseAuditQuery(q.Values())
		if err != nil || back != q {
			t.Fatalf("round trip of %q: %+v, %v", raw, back, err)
		}
	})
}
