package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"sync/atomic"
	"time"

	"gantry/pipeline"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/pipeline/budget"
	"gantry/pipeline/cache"
	"gantry/pipeline/limit"
	"gantry/pipeline/semcache"
)

// cacheBytes bounds the response cache.
const cacheBytes = 16 << 20

// The embeddings cache has its own bound, so documents embedded in bulk
// do not push chat answers out, and keeps a vector for a day: a model
// gives a text the same vector, and the key names the model.
const (
	embedCacheBytes = 32 << 20
	embedCacheTTL   = 24 * time.Hour
)

// canarySecret keys the leak canaries. Agents of one cluster derive the
// same secret from the cluster secret, so a release's canary is the same on
// every agent; a lone agent makes its own.
func canarySecret(clusterSecret string) []byte {
	if clusterSecret != "" {
		sum := sha256.Sum256([]byte("gantry leak canary\x00" + clusterSecret))
		return sum[:]
	}
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// Bounds of the semantic cache (each release's index is bounded by its
// policy's max_entries) and of the summaries of context policies.
const (
	semanticReleases  = 64
	summaryCacheBytes = 16 << 20
)

// wirePolicy makes the gateway's rate limiter, budget ledger, response
// cache and embeddings cache. The cluster side puts grants in front of the
// ledger when it opens (wireSpend).
func (s *Server) wirePolicy() pipeline.Deps {
	s.ledger = budget.NewLocal(budget.Options{})
	s.gwLedger = &ledgerSwitch{}
	s.gwLedger.use(s.ledger)
	s.cache, s.embedCache = cache.New(cacheBytes, time.Now), cache.New(embedCacheBytes, time.Now)
	d := pipeline.Deps{
		Limiter:    limit.New(limit.Options{Share: s.limitShare}),
		Ledger:     s.gwLedger,
		Cache:      s.cache,
		EmbedCache: s.embedCache,
		EmbedTTL:   embedCacheTTL,
		Observer:   s.metrics,
		Semantic:   semcache.New(semanticReleases, time.Now),
		Summaries:  cache.New(summaryCacheBytes, time.Now),
	}
	reg := s.metrics.Registry()
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "gantry", Name: "budget_holds_reaped_total",
		Help: "Budget reservations freed by the reaper because their request was gone."},
		func() float64 { return float64(s.ledger.Stats().Reaped) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gantry", Name: "budget_holds_open",
		Help: "Budget reservations held by calls in flight."},
		func() float64 { return float64(s.ledger.Stats().OpenHolds) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gantry", Name: "budget_users",
		Help: "End users with a counter of a per-user budget on this agent; at the bound, users with no call in flight are let go into a conservative estimate."},
		func() float64 { return float64(s.ledger.Stats().Users) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "gantry", Name: "budget_users_forgotten_total",
		Help: "End users' counters let go at the bound; their spend stays in the estimate a returning user starts from."},
		func() float64 { return float64(s.ledger.Stats().Forgotten) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gantry", Name: "budget_ended_ids",
		Help: "Request ids the budget ledger remembers as ended, so a retried settle or release is recognised."},
		func() float64 { ids, _ := s.endedIDs(); return float64(ids) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gantry", Name: "budget_ended_bytes",
		Help: "Bytes the budget ledger's remembered request ids take."},
		func() float64 { _, b := s.endedIDs(); return float64(b) }))
	for _, c := range []struct {
		name string
		c    *cache.Cache
	}{{"response_cache", s.cache}, {"embedding_cache", s.embedCache}} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gantry", Name: c.name + "_entries",
			Help: "Entries held by the " + strings.ReplaceAll(c.name, "_", " ") + "."},
			func() float64 { return float64(c.c.Stats().Entries) }))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gantry", Name: c.name + "_bytes",
			Help: "Bytes held by the " + strings.ReplaceAll(c.name, "_", " ") + ", entries' overhead included."},
			func() float64 { return float64(c.c.Stats().Bytes) }))
	}
	return d
}

// endedIDs counts the ended request ids both ledgers remember: the local
// one's and, once the cluster node opens, the grant side's in front.
func (s *Server) endedIDs() (ids, bytes int) {
	st := s.ledger.Stats()
	ids, bytes = st.EndedIDs, st.EndedBytes
	if s.spend != nil {
		gi, gb := s.spend.ledger.Ended()
		ids, bytes = ids+gi, bytes+gb
	}
	return ids, bytes
}

// ledgerSwitch is the gateway's ledger: the local one, until the cluster
// node opens and the grant-backed one goes in front of it. The gateway is
// built once; only what its ledger forwards to changes.
type ledgerSwitch struct{ to atomic.Pointer[budget.Ledger] }

func (l *ledgerSwitch) use(to budget.Ledger) { l.to.Store(&to) }

func (l *ledgerSwitch) Reserve(ctx context.Context, r budget.Reservation) (budget.Hold, error) {
	return (*l.to.Load()).Reserve(ctx, r)
}

func (l *ledgerSwitch) Settle(requestID string, actualUSD float64) error {
	return (*l.to.Load()).Settle(requestID, actualUSD)
}

func (l *ledgerSwitch) Release(requestID string) error { return (*l.to.Load()).Release(requestID) }

// limitShare is the part of every rate limit this agent enforces: an even
// share among the cluster's members, so N agents do not allow N times a
// limit. Traffic spread unevenly over agents is refused a little early.
func (s *Server) limitShare() float64 {
	if s.cl == nil {
		return 1
	}
	if n := s.cl.Servers(); n > 1 {
		return 1 / float64(n)
	}
	return 1
}

// cacheSweepInterval is how often expired cache entries are dropped.
const cacheSweepInterval = time.Minute

// runReaper frees budget holds whose request is gone and drops expired
// cache entries, until ctx ends.
func (s *Server) runReaper(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if s.spend != nil {
			s.spend.ledger.Run(ctx)
			return
		}
		s.ledger.Run(ctx)
	}()
	t := time.NewTicker(cacheSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			return
		case <-t.C:
			s.cache.Sweep()
			s.embedCache.Sweep()
		}
	}
}
