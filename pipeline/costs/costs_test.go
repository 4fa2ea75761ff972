package costs

import (
	"strings"
	"testing"
	"time"
)

func TestSumGroupsTheWindow(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tab := New(func() time.Time { return now })
	a := Key{Feature: "answer", Release: "answer@v1", Model: "small", Team: "core"}
	b := Key{Feature: "answer", Release: "answer@v2", Model: "large", Team: "web"}
	tab.Add(Call{Key: a, Time: now.Add(-time.Minute), CostUSD: 0.01, BaseCostUSD: 0.01, Answered: true, Validated: true})
	tab.Add(Call{Key: a, Time: now.Add(-2 * time.Minute), CostUSD: 0.03, BaseCostUSD: 0.01, Answered: true, Validated: true, Cascade: true, Escalated: true})
	tab.Add(Call{Key: a, Time: now.Add(-3 * time.Minute), CostUSD: 0.02, BaseCostUSD: 0.02, Answered: true})
	tab.Add(Call{Key: b, Time: now.Add(-2 * time.Hour), CostUSD: 0.5, Answered: true, Validated: true})
	tab.Add(Call{Key: b, Time: now.Add(-25 * time.Hour), CostUSD: 99}) // past retention
	tab.NegativeFeedback(now.Add(-time.Minute), a, 1)
	tab.NegativeFeedback(now.Add(-time.Minute), a, 1)
	tab.NegativeFeedback(now.Add(-time.Minute), a, -1) // a change of mind

	rows, err := tab.Sum(ByRelease, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Name != "answer@v1" {
		t.Fatalf("rows %+v, want answer@v1 only", rows)
	}
	r := rows[0]
	if r.Calls != 3 || r.Validated != 2 || r.NegativeFeedback != 1 || r.Escalated != 1 || r.CascadeCalls != 1 {
		t.Fatalf("counters %+v", r.Counters)
	}
	if d := r.CostUSD - 0.06; d > 1e-12 || d < -1e-12 {
		t.Fatalf("cost %v", r.CostUSD)
	}
	if d := r.BaseCostUSD - 0.04; d > 1e-12 || d < -1e-12 {
		t.Fatalf("cost without escalation %v", r.BaseCostUSD)
	}
	if p := Per(r.CostUSD, r.Validated); p == nil || *p < 0.0299 || *p > 0.0301 {
		t.Fatalf("cost per validated %v", p)
	}
	if Per(1, 0) != nil {
		t.Fatal("a cost per nothing is unknown, not a number")
	}

	rows, _ = tab.Sum(ByFeature, 24*time.Hour)
	if len(rows) != 1 || rows[0].Calls != 4 || rows[0].CostUSD < 0.5599 || rows[0].CostUSD > 0.5601 {
		t.Fatalf("day by feature %+v: the call past retention counts", rows)
	}
	rows, _ = tab.Sum(ByTeam, 24*time.Hour)
	if len(rows) != 2 || rows[0].Name != "web" {
		t.Fatalf("by team %+v, want web first (larger cost)", rows)
	}
	if _, err := tab.Sum("region", time.Hour); err == nil || !strings.Contains(err.Error(), `unknown dimension "region"`) {
		t.Fatalf("err %v", err)
	}
	if _, err := tab.Sum(ByModel, 48*time.Hour); err == nil {
		t.Fatal("a window past retention was answered")
	}
}

func TestKeysAreBounded(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tab := New(func() time.Time { return now })
	for i := range MaxKeys + 10 {
		tab.Add(Call{Key: Key{Feature: "f", Release: "r", Model: "m", Team: string(rune('A'+i%26)) + time.Duration(i).String()}, Time: now, CostUSD: 1})
	}
	rows, _ := tab.Sum(ByTeam, time.Hour)
	if len(rows) != MaxKeys+1 {
		t.Fatalf("%d groups, want %d and (other)", len(rows), MaxKeys+1)
	}
	total := int64(0)
	for _, r := range rows {
		total += r.Calls
	}
	if total != MaxKeys+10 {
		t.Fatalf("%d calls counted, want every one", total)
	}
}

func TestConcurrentAddAndSum(t *testing.T) {
	tab := New(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			if _, err := tab.Sum(ByModel, time.Hour); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range 1000 {
		tab.Add(Call{Key: Key{Feature: "f", Model: []string{"a", "b"}[i%2]}, Time: time.Now(), CostUSD: 0.001})
	}
	<-done
	rows, _ := tab.Sum(ByFeature, time.Hour)
	if len(rows) != 1 || rows[0].Calls != 1000 {
		t.Fatalf("rows %+v", rows)
	}
}
