package trace

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// mk builds a distinct call; i fixes its id, W3C trace id and start.
func mk(i int) *Trace {
	features := []string{"support-answer", "summarise", "classify"}
	models := []string{"gpt-4o-mini", "claude-haiku", "sim-small"}
	t := &Trace{
		ID:           fmt.Sprintf("req-%d", i),
		TraceID:      fmt.Sprintf("%032x", i+1),
		RequestID:    fmt.Sprintf("req-%d", i),
		Start:        t0.Add(time.Duration(i) * time.Second),
		Duration:     Millis(100 + i%50),
		Entry:        "invoke",
		Feature:      features[i%3],
		Release:      fmt.Sprintf("%s@v%d", features[i%3], 1+i%2),
		Model:        models[i%3],
		Provider:     "sim",
		Status:       "ok",
		HTTPStatus:   200,
		InputTokens:  10 + i,
		OutputTokens: 20 + i,
		CostUSD:      0.001,
	}
	if i%5 == 4 {
		t.Status, t.HTTPStatus, t.Error, t.ErrorCode = "error", 502, "upstream timed out", "upstream_timeout"
	}
	return t
}

func open(t *testing.T, dir string, lim Limits) *Store {
	t.Helper()
	s, err := Open(dir, lim)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func closeStore(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func size(t *testing.T, tr *Trace) int64 {
	t.Helper()
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b))
}

// ids lists the summaries' ids.
func ids(sums []Summary) string {
	var b strings.Builder
	for i, s := range sums {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d", idNum(s.ID))
	}
	return b.String()
}

func idNum(id string) int {
	n := -1
	fmt.Sscanf(id, "req-%d", &n)
	return n
}

// uniform builds traces 10..19 that all encode to the same size.
func uniform(i int) *Trace {
	t := mk(i)
	t.Feature, t.Release, t.Model = "summarise", "summarise@v1", "sim-small"
	t.Status, t.HTTPStatus, t.Error, t.ErrorCode = "ok", 200, "", ""
	return t
}

func TestStoreBounds(t *testing.T) {
	one := size(t, uniform(10))
	if size(t, uniform(19)) != one {
		t.Fatal("uniform traces differ in size")
	}
	tests := []struct {
		name      string
		lim       Limits
		add       int
		wantCount int
		wantFirst int // oldest kept
	}{
		{"under both", Limits{MaxCount: 100, MaxBytes: 1 << 20}, 10, 10, 10},
		{"by count", Limits{MaxCount: 4, MaxBytes: 1 << 20}, 10, 4, 16},
		{"by bytes", Limits{MaxCount: 100, MaxBytes: 3*one + one/2}, 10, 3, 17},
		{"bytes exactly", Limits{MaxCount: 100, MaxBytes: 5 * one}, 10, 5, 15},
	}
	for _, tt := range tests {
		for _, disk := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/disk=%v", tt.name, disk), func(t *testing.T) {
				dir := ""
				if disk {
					dir = t.TempDir()
				}
				s := open(t, dir, tt.lim)
				for i := 10; i < 10+tt.add; i++ {
					s.Add(uniform(i))
				}
				st := s.Stats()
				if st.Count != tt.wantCount {
					t.Fatalf("count: got %d, want %d", st.Count, tt.wantCount)
				}
				if st.Bytes != int64(tt.wantCount)*one {
					t.Fatalf("bytes: got %d, want %d", st.Bytes, int64(tt.wantCount)*one)
				}
				if st.Evicted != uint64(tt.add-tt.wantCount) {
					t.Fatalf("evicted: got %d, want %d", st.Evicted, tt.add-tt.wantCount)
				}
				if _, ok := s.Get(mk(tt.wantFirst).ID); !ok {
					t.Fatalf("oldest kept trace %d missing", tt.wantFirst)
				}
				if _, ok := s.Get(mk(tt.wantFirst - 1).ID); ok && tt.wantFirst > 10 {
					t.Fatalf("trace %d should have been evicted", tt.wantFirst-1)
				}
			})
		}
	}
}

func TestStoreOversizedTrace(t *testing.T) {
	s := open(t, "", Limits{MaxCount: 10, MaxBytes: 4 << 10})
	big := mk(1)
	big.Input = strings.Repeat("é", 8<<10)
	s.Add(big)
	got, ok := s.Get(big.ID)
	if !ok {
		t.Fatal("trimmed trace missing")
	}
	if len(got.Input) > maxCaptured || got.Attrs["gantry.trimmed"] != "true" {
		t.Fatalf("trace not trimmed: input %d bytes, attrs %v", len(got.Input), got.Attrs)
	}
	if !strings.HasPrefix(big.Input, got.Input) || !json.Valid([]byte(fmt.Sprintf("%q", got.Input))) {
		t.Fatal("trimmed input is not a prefix of the original")
	}

	huge := mk(2)
	huge.Validation = []string{strings.Repeat("x", 8<<10)}
	s.Add(huge)
	if _, ok := s.Get(huge.ID); ok {
		t.Fatal("trace too large even trimmed was kept")
	}
	if st := s.Stats(); st.Dropped != 1 || st.Count != 1 {
		t.Fatalf("stats: got dropped %d count %d, want 1 and 1", st.Dropped, st.Count)
	}
}

func TestStorePersistence(t *testing.T) {
	dir := t.TempDir()
	lim := Limits{MaxCount: 50, MaxBytes: 1 << 20, SegmentBytes: 2 << 10}
	s := open(t, dir, lim)
	for i := range 120 {
		s.Add(mk(i))
	}
	before := s.Search(Query{Limit: 1000})
	beforeStats := s.Stats()
	closeStore(t, s)

	s2 := open(t, dir, lim)
	after := s2.Search(Query{Limit: 1000})
	if ids(after) != ids(before) {
		t.Fatalf("after reopen: got %s, want %s", ids(after), ids(before))
	}
	got, ok := s2.Get(mk(100).ID)
	if !ok {
		t.Fatal("trace 100 missing after reopen")
	}
	if got.RequestID != "req-100" || !got.Start.Equal(mk(100).Start) {
		t.Fatalf("trace 100 after reopen: got %+v", got)
	}
	// Segments no longer backing memory are deleted, so the disk holds about
	// what memory holds.
	st := s2.Stats()
	if st.DiskBytes > beforeStats.Bytes*3/2+lim.SegmentBytes*2 {
		t.Fatalf("disk bytes %d for %d bytes in memory: old segments kept", st.DiskBytes, beforeStats.Bytes)
	}
	if beforeStats.Segments >= 120*int(size(t, mk(100)))/int(lim.SegmentBytes) {
		t.Fatalf("segments: %d, evicted segments were not removed", beforeStats.Segments)
	}
}

func TestStoreReopenWithSmallerBounds(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Limits{MaxCount: 100, MaxBytes: 1 << 20})
	for i := range 30 {
		s.Add(mk(i))
	}
	closeStore(t, s)
	s2 := open(t, dir, Limits{MaxCount: 5, MaxBytes: 1 << 20})
	if got := ids(s2.Search(Query{})); got != "29,28,27,26,25" {
		t.Fatalf("after reopen with MaxCount 5: got %s", got)
	}
}

func TestStoreTornLine(t *testing.T) {
	dir := t.TempDir()
	lim := Limits{MaxCount: 100, MaxBytes: 1 << 20}
	s := open(t, dir, lim)
	for i := range 5 {
		s.Add(mk(i))
	}
	closeStore(t, s)

	// A crash mid-append leaves half a line at the end of the last segment,
	// and a bad disk may leave garbage in the middle.
	segs, _ := filepath.Glob(filepath.Join(dir, "traces-*.jsonl"))
	if len(segs) != 1 {
		t.Fatalf("segments: got %d, want 1", len(segs))
	}
	whole, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(whole), "\n")
	torn := strings.Join(lines[:2], "") + "{not json}\n" + strings.Join(lines[2:5], "")
	torn = torn[:len(torn)-40]
	if err := os.WriteFile(segs[0], []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, dir, lim)
	if got := ids(s2.Search(Query{})); got != "3,2,1,0" {
		t.Fatalf("after torn line: got %s, want 3,2,1,0", got)
	}
	if st := s2.Stats(); st.Skipped != 2 {
		t.Fatalf("skipped: got %d, want 2", st.Skipped)
	}
	// Writing goes on in a new segment and survives another reopen.
	s2.Add(mk(9))
	closeStore(t, s2)
	s3 := open(t, dir, lim)
	if got := ids(s3.Search(Query{})); got != "9,3,2,1,0" {
		t.Fatalf("after second reopen: got %s, want 9,3,2,1,0", got)
	}
}

func TestStoreFeedback(t *testing.T) {
	dir := t.TempDir()
	lim := Limits{MaxCount: 100, MaxBytes: 1 << 20}
	s := open(t, dir, lim)
	for i := range 3 {
		s.Add(mk(i))
	}
	score := 0.25
	steps := []struct {
		id      string
		fb      Feedback
		wantErr error
		wantSum string
	}{
		{mk(1).ID, Feedback{Thumbs: "up"}, nil, "up"},
		{"req-1", Feedback{Comment: "good enough"}, nil, "up"}, // by request id; no signal, column kept
		{mk(1).ID, Feedback{Score: &score}, nil, "0.25"},
		{mk(1).ID, Feedback{Thumbs: "down", Correction: "the refund window is 30 days"}, nil, "down"},
		{"missing", Feedback{Thumbs: "up"}, ErrNotFound, ""},
	}
	for i, st := range steps {
		err := s.Feedback(st.id, st.fb)
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("step %d: Feedback error: got %v, want %v", i, err, st.wantErr)
		}
		if err != nil {
			continue
		}
		if got := s.Search(Query{Text: "req-1"})[0].Feedback; got != st.wantSum {
			t.Fatalf("step %d: summary feedback: got %q, want %q", i, got, st.wantSum)
		}
	}
	closeStore(t, s)

	s2 := open(t, dir, lim)
	tr, ok := s2.Get(mk(1).ID)
	if !ok {
		t.Fatal("trace missing after reopen")
	}
	if len(tr.Feedback) != 4 {
		t.Fatalf("feedback after reopen: got %d entries, want 4", len(tr.Feedback))
	}
	if tr.Feedback[3].Correction != "the refund window is 30 days" || tr.Feedback[3].Time.IsZero() {
		t.Fatalf("last feedback after reopen: got %+v", tr.Feedback[3])
	}
	if got := tr.Summary().Feedback; got != "down" {
		t.Fatalf("summary after reopen: got %q, want down", got)
	}
	if other, _ := s2.Get(mk(0).ID); len(other.Feedback) != 0 {
		t.Fatalf("feedback leaked to another trace: %+v", other.Feedback)
	}
}

func TestFeedbackValidate(t *testing.T) {
	neg, one, nan := -0.1, 1.0, 0.0
	nan = nan / nan
	tests := []struct {
		name string
		fb   Feedback
		ok   bool
	}{
		{"thumbs up", Feedback{Thumbs: "up"}, true},
		{"score one", Feedback{Score: &one}, true},
		{"comment only", Feedback{Comment: "x"}, true},
		{"empty", Feedback{}, false},
		{"bad thumbs", Feedback{Thumbs: "sideways"}, false},
		{"negative score", Feedback{Score: &neg}, false},
		{"NaN score", Feedback{Score: &nan}, false},
		{"long comment", Feedback{Comment: strings.Repeat("x", maxFeedbackText+1)}, false},
		{"long correction", Feedback{Correction: strings.Repeat("x", maxFeedbackText+1)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fb.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate: got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestFeedbackBoundedPerTrace(t *testing.T) {
	s := open(t, "", Limits{})
	s.Add(mk(1))
	for i := range maxFeedback {
		if err := s.Feedback(mk(1).ID, Feedback{Comment: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Feedback(mk(1).ID, Feedback{Thumbs: "up"}); !errors.Is(err, ErrFeedbackLimit) {
		t.Fatalf("feedback past the limit: got %v, want ErrFeedbackLimit", err)
	}
	tr, _ := s.Get(mk(1).ID)
	if len(tr.Feedback) != maxFeedback || tr.Feedback[maxFeedback-1].Comment != fmt.Sprint(maxFeedback-1) {
		t.Fatalf("feedback: got %d entries ending %q", len(tr.Feedback), tr.Feedback[len(tr.Feedback)-1].Comment)
	}
}

func TestFeedbackDoesNotMutateHandedOutTrace(t *testing.T) {
	s := open(t, "", Limits{})
	s.Add(mk(1))
	before, _ := s.Get(mk(1).ID)
	if err := s.Feedback(mk(1).ID, Feedback{Thumbs: "up"}); err != nil {
		t.Fatal(err)
	}
	if len(before.Feedback) != 0 {
		t.Fatal("feedback changed a trace already handed out by Get")
	}
}

func TestSearch(t *testing.T) {
	s := open(t, "", Limits{})
	for i := range 20 {
		s.Add(mk(i))
	}
	tests := []struct {
		name string
		q    Query
		want string
	}{
		{"all newest first", Query{Limit: 5}, "19,18,17,16,15"},
		{"feature", Query{Feature: "classify", Limit: 3}, "17,14,11"},
		{"release", Query{Release: "summarise@v2", Limit: 3}, "19,13,7"},
		{"model", Query{Model: "claude-haiku", Limit: 2}, "19,16"},
		{"status", Query{Status: "error"}, "19,14,9,4"},
		{"feature and status", Query{Feature: "support-answer", Status: "error"}, "9"},
		{"since inclusive", Query{Since: t0.Add(17 * time.Second)}, "19,18,17"},
		{"until exclusive", Query{Until: t0.Add(2 * time.Second)}, "1,0"},
		{"window", Query{Since: t0.Add(5 * time.Second), Until: t0.Add(8 * time.Second)}, "7,6,5"},
		{"text error", Query{Text: "TIMED OUT", Limit: 2}, "19,14"},
		{"text request id", Query{Text: "req-13"}, "13"},
		{"text trace id", Query{Text: mk(7).ID}, "7"},
		{"text release", Query{Text: "classify@v1", Limit: 2}, "14,8"},
		{"text spans no fields", Query{Text: "answer\x00"}, ""},
		{"no match", Query{Feature: "nope"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(s.Search(tt.q)); got != tt.want {
				t.Fatalf("Search(%+v): got %s, want %s", tt.q, got, tt.want)
			}
		})
	}
}

// TestSharedTraceIDTakesNothingOver: calls of one W3C trace, such as two
// teams' keys sending the same traceparent, each keep their own record.
// Their own ids find each of them; the trace id finds one only where it is
// unambiguous (or unambiguous among the calls a caller may see), and lists
// them all.
func TestSharedTraceIDTakesNothingOver(t *testing.T) {
	s := open(t, "", Limits{MaxCount: 3})
	a, b := mk(1), mk(2)
	a.Team, b.Team = "red", "blue"
	b.TraceID = a.TraceID // the same traceparent
	s.Add(a)
	if got, ok := s.Get(a.TraceID); !ok || got.ID != "req-1" {
		t.Fatalf("Get by a trace id only one call has: %v %v", got, ok)
	}
	s.Add(b)
	for _, id := range []string{"req-1", "req-2"} {
		if got, ok := s.Get(id); !ok || got.ID != id {
			t.Fatalf("Get(%s) = %v, %v", id, got, ok)
		}
	}
	if _, err := s.Lookup(a.TraceID, nil); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("Lookup by the shared trace id: %v, want ErrAmbiguous", err)
	}
	red := func(t *Trace) bool { return t.Team == "red" }
	if got, err := s.Lookup(a.TraceID, red); err != nil || got.ID != "req-1" {
		t.Fatalf("red's lookup by the shared trace id: %v %v, want its own call", got, err)
	}
	if err := s.Feedback(a.TraceID, Feedback{Thumbs: "up"}); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("feedback by the shared trace id: %v, want ErrAmbiguous", err)
	}
	if err := s.Feedback("req-1", Feedback{Thumbs: "up"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get("req-2"); len(got.Feedback) != 0 {
		t.Fatalf("feedback reached the other team's call: %+v", got.Feedback)
	}
	if got := ids(s.Search(Query{TraceID: a.TraceID})); got != "2,1" {
		t.Fatalf("calls of the trace: %s, want 2,1", got)
	}
	s.Add(mk(3))
	s.Add(mk(4)) // evicts a; b is the trace's one call again
	if got, ok := s.Get(a.TraceID); !ok || got.ID != "req-2" {
		t.Fatalf("after evicting the older call: %v %v, want req-2", got, ok)
	}
	if got := ids(s.Search(Query{TraceID: a.TraceID})); got != "2" {
		t.Fatalf("calls of the trace after eviction: %s", got)
	}
}

// TestReadsSegmentsOfTheOlderShape replays a segment written when a trace's
// id was its W3C trace id: the call keeps its own id, the trace id moves
// aside, and feedback written then still finds its call.
func TestReadsSegmentsOfTheOlderShape(t *testing.T) {
	dir := t.TempDir()
	old := `{"trace":{"id":"0af7651916cd43dd8448eb211c80319c","request_id":"r-old-1","start":"2026-11-01T12:00:00Z","duration_ms":5,"entry":"chat","requested_model":"m","status":"ok","http_status":200,"input_tokens":1,"output_tokens":1,"cost_usd":0}}
{"trace":{"id":"0af7651916cd43dd8448eb211c80319c","request_id":"r-old-2","start":"2026-11-01T12:00:01Z","duration_ms":5,"entry":"chat","requested_model":"m","status":"ok","http_status":200,"input_tokens":1,"output_tokens":1,"cost_usd":0}}
{"feedback":{"id":"0af7651916cd43dd8448eb211c80319c","request_id":"r-old-1","feedback":{"time":"2026-11-01T12:01:00Z","thumbs":"down"}}}
`
	if err := os.WriteFile(filepath.Join(dir, segName(1)), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, Limits{})
	one, ok := s.Get("r-old-1")
	if !ok || one.TraceID != "0af7651916cd43dd8448eb211c80319c" || len(one.Feedback) != 1 {
		t.Fatalf("the older call: %+v %v", one, ok)
	}
	if two, _ := s.Get("r-old-2"); len(two.Feedback) != 0 {
		t.Fatalf("the feedback reached the other call of the trace")
	}
	if n := len(s.Search(Query{TraceID: "0af7651916cd43dd8448eb211c80319c"})); n != 2 {
		t.Fatalf("%d calls listed for the older trace, want 2", n)
	}
	// Feedback written now names the call, and survives a reopen.
	if err := s.Feedback("r-old-2", Feedback{Thumbs: "up"}); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	s = open(t, dir, Limits{})
	if two, _ := s.Get("r-old-2"); len(two.Feedback) != 1 {
		t.Fatalf("feedback after reopen: %+v", two.Feedback)
	}
}

func TestSummary(t *testing.T) {
	score := 0.8
	tr := mk(4)
	tr.Validation = []string{"$.answer: required", "$.sources: too short"}
	tr.Feedback = []Feedback{{Thumbs: "down"}, {Score: &score}, {Comment: "later note"}}
	tr.User, tr.KeyFP, tr.ClientAddr = "u-9", "1a2b3c4d", "10.0.0.7:51000"
	sum := tr.Summary()
	want := Summary{ID: tr.ID, TraceID: tr.TraceID, Start: tr.Start, Duration: tr.Duration, Feature: tr.Feature, Release: tr.Release,
		Model: tr.Model, Provider: tr.Provider, User: "u-9", KeyFP: "1a2b3c4d", Client: "10.0.0.7:51000", Status: "error", HTTPStatus: 502, ErrorCode: "upstream_timeout", InputTokens: 14,
		OutputTokens: 24, CostUSD: 0.001, Validation: 2, Feedback: "0.8"}
	if sum != want {
		t.Fatalf("Summary: got %+v, want %+v", sum, want)
	}
}

func TestSubscribe(t *testing.T) {
	s := open(t, "", Limits{})
	fast, cancelFast := s.Subscribe(100)
	slow, cancelSlow := s.Subscribe(3)
	defer cancelFast()
	for i := range 10 {
		s.Add(mk(i)) // must not block on the slow subscriber
	}
	var got []Summary
	for range 3 {
		got = append(got, <-slow)
	}
	if ids(got) != "7,8,9" {
		t.Fatalf("slow subscriber: got %s, want the newest 7,8,9", ids(got))
	}
	if n := len(fast); n != 10 {
		t.Fatalf("fast subscriber: got %d summaries, want 10", n)
	}
	st := s.Stats()
	if st.FeedDropped != 7 || st.Subscribers != 2 {
		t.Fatalf("stats: got feed dropped %d subscribers %d, want 7 and 2", st.FeedDropped, st.Subscribers)
	}
	cancelSlow()
	cancelSlow()
	if _, ok := <-slow; ok {
		t.Fatal("channel open after cancel")
	}
	s.Add(mk(10))
	closeStore(t, s)
	for range fast {
	}
	after, cancel := s.Subscribe(1)
	defer cancel()
	if _, ok := <-after; ok {
		t.Fatal("subscription after Close is open")
	}
}

func TestAddAfterClose(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Limits{})
	closeStore(t, s)
	s.Add(mk(1))
	if st := s.Stats(); st.Count != 0 || st.Dropped != 1 {
		t.Fatalf("after Close: got count %d dropped %d, want 0 and 1", st.Count, st.Dropped)
	}
	if err := s.Feedback(mk(1).ID, Feedback{Thumbs: "up"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Feedback after Close: got %v, want ErrClosed", err)
	}
	closeStore(t, s)
}

func TestStoreWriteFailureKeepsMemory(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Limits{SegmentBytes: minSegment})
	s.Add(mk(1))
	// Take the directory away: appends fail, memory keeps working.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil { // a file where the dir was
		t.Fatal(err)
	}
	for i := 2; i < 60; i++ {
		s.Add(mk(i))
	}
	st := s.Stats()
	if st.Count != 59 {
		t.Fatalf("count: got %d, want 59", st.Count)
	}
	if st.WriteErrors == 0 || st.LastError == "" {
		t.Fatalf("write errors not reported: %+v", st)
	}
}

func TestDecodeRecord(t *testing.T) {
	tests := []struct {
		name string
		line string
		ok   bool
	}{
		{"trace", `{"trace":{"id":"ab","status":"ok"}}`, true},
		{"feedback", `{"feedback":{"id":"ab","feedback":{"time":"2026-01-01T00:00:00Z","thumbs":"up"}}}`, true},
		{"both", `{"trace":{"id":"ab"},"feedback":{"id":"ab","feedback":{"thumbs":"up"}}}`, false},
		{"neither", `{}`, false},
		{"trace without id", `{"trace":{"status":"ok"}}`, false},
		{"bad feedback", `{"feedback":{"id":"ab","feedback":{"thumbs":"meh"}}}`, false},
		{"two objects", `{"trace":{"id":"ab"}} {"trace":{"id":"cd"}}`, false},
		{"torn", `{"trace":{"id":"ab","sta`, false},
		{"empty", ``, false},
		{"array", `[1]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeRecord([]byte(tt.line))
			if (err == nil) != tt.ok {
				t.Fatalf("decodeRecord(%s): got %v, want ok=%v", tt.line, err, tt.ok)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	line, _, _ := traceLine(mk(3))
	f.Add(line)
	f.Add([]byte(`{"feedback":{"id":"ab","feedback":{"thumbs":"up"}}}`))
	f.Add([]byte(`{"trace":{"id":"0af7651916cd43dd8448eb211c80319c","request_id":"r1","start":"2026-11-01T12:00:00Z"}}`))
	f.Add([]byte(`{"feedback":{"id":"0af7651916cd43dd8448eb211c80319c","request_id":"r1","feedback":{"score":1,"comment":"\u00e9"}}}`))
	f.Add([]byte(`{"trace":{"id":"a","feedback":[{"thumbs":"sideways"}],"attrs":{"k":"v"}},"feedback":null}`))
	f.Add([]byte(`{"evaluations":{"id":"ab","evaluations":[{"gen_ai.evaluation.name":"is-json","gen_ai.evaluation.score.label":"pass","gen_ai.evaluation.score.value":1}]}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := decodeRecord(line)
		if err != nil {
			return
		}
		// Whatever decodes must encode again and decode to the same id.
		var again []byte
		var id string
		switch {
		case r.Trace != nil:
			again, _, err = traceLine(r.Trace)
			id = r.Trace.ID
		case r.Evaluations != nil:
			again, err = json.Marshal(record{Evaluations: r.Evaluations})
			id = r.Evaluations.ID
		default:
			again, err = feedbackLine(r.Feedback)
			id = r.Feedback.ID
		}
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		r2, err := decodeRecord(again)
		if err != nil {
			t.Fatalf("re-decode %s: %v", again, err)
		}
		if (r2.Trace != nil && r2.Trace.ID != id) || (r2.Feedback != nil && r2.Feedback.ID != id) || (r2.Evaluations != nil && r2.Evaluations.ID != id) {
			t.Fatalf("id changed on round trip: %s", again)
		}
		// A second round trip changes nothing at all.
		var third []byte
		switch {
		case r2.Trace != nil:
			third, _, err = traceLine(r2.Trace)
		case r2.Evaluations != nil:
			third, err = json.Marshal(record{Evaluations: r2.Evaluations})
		default:
			third, err = feedbackLine(r2.Feedback)
		}
		if err != nil || string(third) != string(again) {
			t.Fatalf("the record is not stable on a second round trip:\n%s\n%s", again, third)
		}
	})
}

func BenchmarkStoreAdd(b *testing.B) {
	for _, disk := range []bool{false, true} {
		b.Run(fmt.Sprintf("disk=%v", disk), func(b *testing.B) {
			dir := ""
			if disk {
				dir = b.TempDir()
			}
			s, err := Open(dir, Limits{MaxCount: 10_000, MaxBytes: 16 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			traces := make([]*Trace, 1024)
			for i := range traces {
				traces[i] = mk(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				c := *traces[i%len(traces)]
				s.Add(&c)
			}
		})
	}
}

func BenchmarkSearch10k(b *testing.B) {
	s, err := Open("", Limits{MaxCount: 10_000, MaxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range 10_000 {
		s.Add(mk(i))
	}
	queries := []struct {
		name string
		q    Query
	}{
		{"newest100", Query{}},
		{"feature+status", Query{Feature: "classify", Status: "error"}},
		{"text-rare", Query{Text: "req-42"}},
		{"window", Query{Since: t0.Add(2000 * time.Second), Until: t0.Add(2100 * time.Second), Limit: 1000}},
		{"slowest100", Query{Sort: SortDuration}},
		{"dearest100-in-range", Query{Sort: SortCost, MinDuration: 120, MaxDuration: 140}},
		{"error-kind", Query{ErrorKind: "upstream_timeout"}},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if len(s.Search(q.q)) == 0 {
					b.Fatal("no results")
				}
			}
		})
	}
}

func TestReplayBoundsFeedback(t *testing.T) {
	dir := t.TempDir()
	line, _, err := traceLine(mk(1))
	if err != nil {
		t.Fatal(err)
	}
	data := append([]byte(nil), line...)
	for i := range maxFeedback + 4 {
		fb, err := feedbackLine(&feedbackRecord{ID: mk(1).ID, RequestID: "req-1",
			Feedback: Feedback{Time: t0, Comment: fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, fb...)
	}
	if err := os.WriteFile(filepath.Join(dir, segName(7)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, Limits{})
	tr, ok := s.Get(mk(1).ID)
	if !ok {
		t.Fatal("trace missing")
	}
	if n, last := len(tr.Feedback), tr.Feedback[len(tr.Feedback)-1].Comment; n != maxFeedback || last != fmt.Sprint(maxFeedback+3) {
		t.Fatalf("feedback: got %d ending %q, want %d ending %d", n, last, maxFeedback, maxFeedback+3)
	}
	// New segments continue the numbering.
	s.Add(mk(2))
	if _, err := os.Stat(filepath.Join(dir, segName(8))); err != nil {
		t.Fatalf("new segment: %v", err)
	}
}

func TestStoreConcurrentUse(t *testing.T) {
	s := open(t, t.TempDir(), Limits{MaxCount: 200, MaxBytes: 1 << 20, SegmentBytes: minSegment})
	feed, cancel := s.Subscribe(8)
	defer cancel()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // a slow reader of the feed
		defer wg.Done()
		for {
			select {
			case <-feed:
				time.Sleep(50 * time.Microsecond)
			case <-stop:
				return
			}
		}
	}()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				n := w*1000 + i
				s.Add(mk(n))
				s.Search(Query{Feature: "classify", Limit: 10})
				if tr, ok := s.Get(mk(n).ID); ok {
					_ = tr.Summary()
				}
				s.Feedback(mk(n).ID, Feedback{Thumbs: "up"})
				s.Stats()
			}
		}()
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
	st := s.Stats()
	if st.Count != 200 || st.Added != 1000 {
		t.Fatalf("stats: count %d added %d, want 200 and 1000", st.Count, st.Added)
	}
}

func TestReplaySkipsOverlongLine(t *testing.T) {
	dir := t.TempDir()
	lim := Limits{MaxBytes: 8 << 10}
	long, _, err := traceLine(&Trace{ID: "aa", Input: strings.Repeat("x", 200<<10)})
	if err != nil {
		t.Fatal(err)
	}
	ok, _, _ := traceLine(mk(1))
	if err := os.WriteFile(filepath.Join(dir, segName(1)), append(long, ok...), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, lim)
	if got := ids(s.Search(Query{})); got != "1" {
		t.Fatalf("after an overlong line: got %s, want 1", got)
	}
	if st := s.Stats(); st.Skipped != 1 {
		t.Fatalf("skipped: got %d, want 1", st.Skipped)
	}
}

func TestAddUnencodableTrace(t *testing.T) {
	s := open(t, "", Limits{})
	bad := mk(1)
	zero := 0.0
	bad.CostUSD = 1 / zero // +Inf has no JSON form
	s.Add(bad)
	if st := s.Stats(); st.Count != 0 || st.Dropped != 1 || st.WriteErrors != 0 || st.LastError == "" {
		t.Fatalf("stats after an unencodable trace: %+v", st)
	}
}

// FuzzReplaySegment opens a store over a segment file of arbitrary bytes,
// as a restart after a crash, a full disk or a hand edit would. Opening
// never fails on content and never panics; every call it keeps is found by
// its own id, listed by its W3C trace, within the bounds, and the store
// takes new traces and feedback afterwards.
func FuzzReplaySegment(f *testing.F) {
	line := func(t *Trace) string {
		b, _, _ := traceLine(t)
		return string(b)
	}
	old := mk(2)
	old.ID, old.TraceID = old.TraceID, "" // the older shape: W3C id as the id
	f.Add([]byte(line(mk(1)) + line(mk(2)) + `{"feedback":{"id":"req-1","feedback":{"thumbs":"up"}}}` + "\n"))
	f.Add([]byte(line(old) + `{"feedback":{"id":"` + old.ID + `","request_id":"req-2","feedback":{"score":0.5}}}` + "\n"))
	f.Add([]byte(line(mk(1)) + `{"trace":{"id":"req-1","trace_id":"x"}}` + "\n" + `{"trace":` + "\n"))
	f.Add([]byte(strings.Repeat(`{"feedback":{"id":"req-1","feedback":{"comment":"c"}}}`+"\n", 20)))
	f.Add([]byte("\x00\xff\n\n{}\n[]\nnull\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		lim := Limits{MaxCount: 50, MaxBytes: 1 << 20}
		s, err := Open(dir, lim)
		if err != nil {
			t.Fatalf("a segment's content made Open fail: %v", err)
		}
		defer s.Close()
		st := s.Stats()
		if st.Count > lim.MaxCount || st.Bytes > lim.MaxBytes {
			t.Fatalf("replay kept %d traces, %d bytes, past %+v", st.Count, st.Bytes, lim)
		}
		for _, sum := range s.Search(Query{Limit: lim.MaxCount}) {
			tr, err := s.Lookup(sum.ID, func(x *Trace) bool { return x.ID == sum.ID })
			if err != nil || tr.ID != sum.ID {
				t.Fatalf("a replayed call %q is not found by its id: %v", sum.ID, err)
			}
			if len(tr.Feedback) > maxFeedback {
				t.Fatalf("a replayed call holds %d feedback records", len(tr.Feedback))
			}
			if sum.TraceID != "" {
				found := false
				for _, c := range s.Search(Query{TraceID: sum.TraceID, Limit: lim.MaxCount}) {
					found = found || c.ID == sum.ID
				}
				if !found {
					t.Fatalf("a replayed call is missing from its trace %q", sum.TraceID)
				}
			}
		}
		s.Add(mk(99))
		if err := s.Feedback("req-99", Feedback{Thumbs: "up"}); err != nil {
			t.Fatalf("feedback after replay: %v", err)
		}
	})
}

// TestSearchSortAndRanges is an operator narrowing an incident down: the
// slowest calls, the dearest ones, a user's, a refused caller's by key
// fingerprint, those an upstream 500 failed, and text that only a caller's
// address or an attempt's error holds.
func TestSearchSortAndRanges(t *testing.T) {
	s := open(t, "", Limits{})
	for i := range 20 {
		tr := mk(i)
		tr.Duration = Millis(100 * (i%7 + 1))
		tr.CostUSD = float64(i%4) / 100
		tr.User = fmt.Sprintf("u-%d", i%3)
		if i == 13 {
			tr.Status, tr.HTTPStatus, tr.ErrorCode, tr.Error = "error", 401, "invalid_api_key", "unknown key"
			tr.KeyFP, tr.ClientAddr, tr.UserAgent = "deadbeef", "203.0.113.9:40100", "curl/8.5"
		}
		if i == 7 {
			tr.Attempts = []Attempt{{Model: "gpt-4o-mini", Status: "http_500", Error: "upstream said: overloaded"}, {Model: "claude-haiku", Status: "ok"}}
		}
		s.Add(tr)
	}
	ids := func(sums []Summary) string {
		var out []string
		for _, x := range sums {
			out = append(out, x.ID)
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		name string
		q    Query
		want string
	}{
		{"slowest first", Query{Sort: SortDuration, Limit: 3}, "req-13,req-6,req-19"}, // 700 ms each, newest first among them
		{"dearest first", Query{Sort: SortCost, Limit: 2}, "req-19,req-15"},
		{"duration range", Query{MinDuration: 600, MaxDuration: 600}, "req-19,req-12,req-5"},
		{"cost range sorted by cost", Query{MinCost: 0.015, MaxCost: 0.025, Sort: SortCost}, "req-18,req-14,req-10,req-6,req-2"},
		{"user", Query{User: "u-1", Limit: 3}, "req-19,req-16,req-13"},
		{"key fingerprint", Query{KeyFP: "deadbeef"}, "req-13"},
		{"error kind of the call", Query{ErrorKind: "invalid_api_key"}, "req-13"},
		{"error kind of an attempt", Query{ErrorKind: "http_500"}, "req-7"},
		{"a model tried but not answering", Query{Model: "gpt-4o-mini", Text: "overloaded"}, "req-7"},
		{"text: client address", Query{Text: "203.0.113"}, "req-13"},
		{"text: user agent", Query{Text: "CURL/"}, "req-13"},
		{"text: attempt error", Query{Text: "overloaded"}, "req-7"},
		{"text: provider", Query{Text: "sim", Limit: 1}, "req-19"},
	}
	for _, c := range cases {
		if got := ids(s.Search(c.q)); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}
