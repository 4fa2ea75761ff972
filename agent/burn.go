package agent

import (
	"sync"
	"time"

	"gantry/agent/admin"
	"gantry/cluster/spend"
	"gantry/cluster/state"
)

// burnSampleEvery spaces the samples of a shared budget's committed spend;
// a half-hour window then holds at most 181 per budget.
const burnSampleEvery = 10 * time.Second

// burnMinSpan is how long an agent must have watched a shared budget
// before it reports the cluster's burn rate rather than its own traffic's.
const burnMinSpan = time.Minute

// burnMeter samples the committed spend of the budgets a cluster shares, so
// that an agent can tell how fast the whole cluster spends one: its own
// traces show only the calls it served.
type burnMeter struct {
	mu      sync.Mutex
	samples map[string][]burnSample // by budget, oldest first, one period
}

type burnSample struct {
	at     time.Time
	period string
	spent  float64
}

// observe samples every shared budget of st and forgets budgets no longer
// configured.
func (m *burnMeter) observe(st *state.State, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.samples == nil {
		m.samples = map[string][]burnSample{}
	}
	seen := map[string]bool{}
	for _, b := range st.Config.Budgets {
		if !spend.Tracked(b) {
			continue
		}
		seen[b.Name] = true
		period, spent := spend.PeriodKey(b, now), 0.0
		if a, ok := st.Spend.Accounts[b.Name]; ok && a.Period == period {
			spent = a.Spent
		}
		m.samples[b.Name] = addSample(m.samples[b.Name], burnSample{at: now, period: period, spent: spent})
	}
	for name := range m.samples {
		if !seen[name] {
			delete(m.samples, name)
		}
	}
}

// addSample appends s unless the last sample is too recent, starting over
// when the period rolled, and keeps one sample at or before the window.
func addSample(ss []burnSample, s burnSample) []burnSample {
	if n := len(ss); n > 0 && ss[n-1].period != s.period {
		ss = nil
	}
	if n := len(ss); n > 0 && s.at.Sub(ss[n-1].at) < burnSampleEvery {
		return ss
	}
	cut := 0
	for cut+1 < len(ss) && s.at.Sub(ss[cut+1].at) >= admin.BudgetWindow {
		cut++
	}
	return append(ss[cut:], s)
}

// perHour is how fast the cluster's committed spend of a budget grew over
// the window, in USD per hour; false until the samples of this period
// span burnMinSpan.
func (m *burnMeter) perHour(name, period string) (float64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ss := m.samples[name]
	if len(ss) < 2 || ss[0].period != period {
		return 0, false
	}
	first, last := ss[0], ss[len(ss)-1]
	span := last.at.Sub(first.at)
	if span < burnMinSpan {
		return 0, false
	}
	return max(0, last.spent-first.spent) / span.Hours(), true
}
