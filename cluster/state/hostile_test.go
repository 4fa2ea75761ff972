package state

import (
	"gantry/eval/sketch"

	"bytes"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/stats"
	"gantry/config"
)

// rawCommand is a command whose payload is written by hand, as a faulty
// or hostile agent holding the cluster secret could.
func rawCommand(typ command.Type, id, payload string) command.Envelope {
	return command.Envelope{Type: typ, Version: 1, RequestID: id, Actor: "agent:x", Time: t0, Skippable: true, Payload: json.RawMessage(payload)}
}

// readEverything calls what the admin endpoints call on a state: the
// release stats with their windows and quantiles, the spend ledger, the
// audit log, the hash and the encoding. It reports the bytes allocated,
// which a well-formed state keeps small whatever it holds.
func readEverything(t *testing.T, s *State) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	now := t0.Add(time.Minute)
	for _, r := range s.Stats.Releases {
		c, w := r.Window(now.Add(-stats.WindowMinutes*time.Minute), now)
		_ = c.Add(r.Counters)
		w.Quantiles(0.5, 0.95, 0.99)
		r.Latency.Quantiles(0.5, 0.95)
		_ = r.Latency.Merge(w).Count()
	}
	for _, b := range s.Config.Budgets {
		_ = s.Spend.Available(b, now)
	}
	_ = s.Audit()
	_ = s.Hash()
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatalf("encode: %v", err)
	}
	if _, err := Decode(&buf); err != nil {
		t.Fatalf("a state does not decode what it encodes: %v", err)
	}
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestHostileCommandsCannotPoisonReaders(t *testing.T) {
	s := seeded(t)
	b := config.Budget{Name: "all", Scope: config.ScopeGlobal, Period: config.PeriodDay, LimitUSD: 10}
	s, _ = mustApply(t, s, 2, mk(t, command.PutObject, command.Object{Kind: "budgets", Object: mustJSON(t, b)}, "budget"))
	item := func(bins string) string {
		return `{"batch":{"agent":"x","seq":1,"items":[{"feature":"support","version":1,"requests":2,"latency":{"bins":` + bins + `}}]}}`
	}
	hostile := []struct {
		name string
		e    command.Envelope
	}{
		{"bins spanning ±2e9", rawCommand(command.CommitStats, "h1", item(`[[-2000000000,1],[2000000000,1]]`))},
		{"a bin beyond the mapping", rawCommand(command.CommitStats, "h2", item(`[[40000,1]]`))},
		{"a bin below the mapping", rawCommand(command.CommitStats, "h3", item(`[[-40000,1]]`))},
		{"a count past any batch", rawCommand(command.CommitStats, "h4", item(`[[10,1099511627777]]`))},
		{"bins out of order", rawCommand(command.CommitStats, "h5", item(`[[10,1],[5,1]]`))},
		{"an empty bin", rawCommand(command.CommitStats, "h6", item(`[[10,0]]`))},
		{"a bin that is not a pair", rawCommand(command.CommitStats, "h7", item(`[[10,1,2]]`))},
		{"too many bins", rawCommand(command.CommitStats, "h8", item(manyBins(sketch.MaxBins+1)))},
		{"a negative count", rawCommand(command.CommitStats, "h9", `{"batch":{"agent":"x","seq":1,"items":[{"feature":"support","version":1,"requests":-5}]}}`)},
		{"a cost past any batch", rawCommand(command.CommitStats, "h10", `{"batch":{"agent":"x","seq":1,"items":[{"feature":"support","version":1,"requests":1,"cost_usd":1e300}]}}`)},
		{"a number JSON cannot hold", rawCommand(command.CommitStats, "h11", `{"batch":{"agent":"x","seq":1,"items":[{"feature":"support","version":1,"cost_usd":1e400}]}}`)},
		{"sequence zero", rawCommand(command.CommitStats, "h12", `{"batch":{"agent":"x","seq":0,"items":[]}}`)},
		{"spend out of range", rawCommand(command.CommitSpend, "h13", `{"batch":{"agent":"x","seq":1,"items":[{"budget":"all","amount":-1}]}}`)},
		{"a grant out of range", rawCommand(command.GrantSpend, "h14", `{"budget":"all","agent":"x","amount":1e300}`)},
		{"a payload that is not JSON", rawCommand(command.CommitStats, "h15", `{"batch":`)},
	}
	before := s.Hash()
	for i, h := range hostile {
		next, _, err := s.Apply(uint64(10+i), h.e)
		if !errors.Is(err, ErrInvalid) || next != s {
			t.Fatalf("%s: applied with %v, want ErrInvalid and no change", h.name, err)
		}
	}
	if s.Hash() != before {
		t.Fatal("a refused command changed the state")
	}
	// The widest batches a command may carry are accepted, and every
	// reader stays small on them.
	spread := `[[` + itoa(int(sketch.MinIndex)) + `,1],[0,3],[` + itoa(int(sketch.MaxIndex)) + `,1]]`
	for seq := 1; seq <= 20; seq++ {
		e := rawCommand(command.CommitStats, "ok"+itoa(seq), strings.Replace(item(spread), `"seq":1`, `"seq":`+itoa(seq), 1))
		e.Time = t0.Add(time.Duration(seq) * time.Second)
		s, _ = mustApply(t, s, uint64(100+seq), e)
	}
	if got := s.Stats.Releases["support@v1"].Latency.Count(); got != 100 {
		t.Fatalf("the spread batches count %d latencies, want 100", got)
	}
	if n := readEverything(t, s); n > 16<<20 {
		t.Fatalf("reading the state allocated %d bytes", n)
	}
}

func TestHostileSnapshotIsRefused(t *testing.T) {
	s := seeded(t)
	e := rawCommand(command.CommitStats, "s1", `{"batch":{"agent":"x","seq":1,"items":[{"feature":"support","version":1,"requests":1,"latency":{"bins":[[100,1]]}}]}}`)
	s, _ = mustApply(t, s, 2, e)
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	if _, err := Decode(strings.NewReader(good)); err != nil {
		t.Fatalf("the untouched snapshot: %v", err)
	}
	edits := []struct{ name, from, to string }{
		{"bins spanning ±2e9", `"bins":[[100,1]]`, `"bins":[[-2000000000,1],[2000000000,1]]`},
		{"a release under another's id", `"support@v1":{"feature":"support","version":1`, `"support@v1":{"feature":"support","version":2`},
		{"a negative total", `"requests":1,`, `"requests":-1,`},
		{"a count past any sketch", `"bins":[[100,1]]`, `"bins":[[100,9007199254740993]]`},
		{"negative spend", `"spend":{}`, `"spend":{"accounts":{"all":{"period":"total","spent":-5}}}`},
		{"too many label moves", `"label_history":{"support":[`, `"label_history":{"support":[` + strings.Repeat(`{"index":1,"time":"2026-01-01T00:00:00Z","actor":"a","action":"promote","label":"production","from":1,"to":1},`, MaxLabelHistory+1)},
		{"a member without an address", `"config_index"`, `"members":[{"id":"a1","raft_addr":"nowhere","http_addr":""}],"config_index"`},
	}
	for _, ed := range edits {
		t.Run(ed.name, func(t *testing.T) {
			bad := strings.Replace(good, ed.from, ed.to, 1)
			if bad == good {
				t.Fatalf("the edit found nothing to replace: %s", ed.from)
			}
			if _, err := Decode(strings.NewReader(bad)); err == nil {
				t.Fatal("a hostile snapshot decoded")
			}
		})
	}
}

func manyBins(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("[" + itoa(i) + ",1]")
	}
	b.WriteByte(']')
	return b.String()
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
