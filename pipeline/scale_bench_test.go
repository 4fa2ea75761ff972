package pipeline

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/budget"
	"gantry/pipeline/cache"
	"gantry/pipeline/chat"
	"gantry/pipeline/limit"
	"gantry/pipeline/provider"
	"gantry/pipeline/tokens"
	"gantry/pipeline/trace"
)

// canned answers every call at once with the same answer, so the scale
// benchmarks measure the pipeline, not an upstream.
type canned struct{}

func (canned) Complete(_ context.Context, req *chat.Request) (*chat.Response, error) {
	return &chat.Response{ID: "c", Object: "chat.completion", Model: req.Model, Choices: []chat.Choice{{
		Message: chat.Message{Role: "assistant", Content: chat.Text("Hello, load generator.")}, FinishReason: "stop"}},
		Usage: &chat.Usage{PromptTokens: 20, CompletionTokens: 5, TotalTokens: 25}}, nil
}

func (canned) Stream(context.Context, *chat.Request) (provider.Stream, error) {
	return nil, &provider.Error{Kind: provider.KindProtocol, Message: "canned answers whole"}
}

// scale is the size of a configuration and of the state around it.
type scale struct {
	keys, features, releases, budgets, users int
	fullStore                                bool
}

// scaleConfig builds a configuration of the given size. Calls use key 0
// and feature 0; everything else is there to be looked past.
func scaleConfig(sc scale) *config.Config {
	cfg := &config.Config{
		Providers: []config.Provider{{Name: "p", Kind: config.KindOpenAI}},
		Models:    []config.Model{{Name: "m", Provider: "p", Price: config.Price{Input: 1, Output: 2}}},
		Routes:    []config.Route{{Name: "r", Targets: []config.Target{{Model: "m", Weight: 1}}, Retry: config.Retry{Attempts: 1}}},
	}
	for i := range sc.keys {
		cfg.Keys = append(cfg.Keys, config.Key{Name: fmt.Sprint("key-", i), Team: fmt.Sprint("team-", i%50),
			Hash: config.HashKey(fmt.Sprintf("gk_scale-key-%08d", i)), RateLimit: &config.RateLimit{RPM: 10_000_000}})
	}
	for i := range sc.features {
		f := config.Feature{Name: fmt.Sprint("feature-", i), Labels: config.Labels{Production: sc.releases}}
		for v := 1; v <= sc.releases; v++ {
			f.Releases = append(f.Releases, config.Release{Version: v, Route: "r",
				System: fmt.Sprintf("You are assistant %d, release %d.", i, v), Template: []config.Message{{Role: "user", Content: "{{ question }}"}},
				Variables: []config.Variable{{Name: "question", Required: true}}})
		}
		cfg.Features = append(cfg.Features, f)
	}
	for i := range sc.budgets {
		b := config.Budget{Name: fmt.Sprint("budget-", i), Scope: config.ScopeKey, Match: fmt.Sprint("key-", i),
			Period: config.PeriodDay, LimitUSD: 1e9}
		if i == 0 && sc.users > 0 {
			b.Scope, b.Match = config.ScopeUser, ""
		}
		cfg.Budgets = append(cfg.Budgets, b)
	}
	return cfg
}

// scaleGateway compiles sc's configuration and fills the state a gateway
// of that size carries: per-user budget counters and the trace store.
func scaleGateway(b *testing.B, sc scale) *Gateway {
	b.Helper()
	set := NewProviderSet(func(config.Provider) (provider.Provider, error) { return canned{}, nil })
	snap, err := Compile(scaleConfig(sc), set)
	if err != nil {
		b.Fatal(err)
	}
	store, err := trace.Open(b.TempDir(), trace.Limits{MaxCount: 5000, MaxBytes: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if sc.fullStore {
		for i := range 6000 {
			store.Add(&trace.Trace{ID: fmt.Sprint("old-", i), RequestID: fmt.Sprint("old-", i), Start: time.Now(), Status: "ok",
				Feature: "feature-0", Input: "user: an earlier question of about this size", Output: "an earlier answer"})
		}
	}
	rec := trace.NewRecorder(store, 4096, nil)
	b.Cleanup(func() { rec.Close(context.Background()) })
	ledger := budget.NewLocal(budget.Options{MaxUsers: 200_000})
	if sc.users > 0 {
		scopes := budget.ScopesFor(snap.Config, budget.Subject{Key: "key-0", User: "x"})
		for i := range sc.users {
			user := fmt.Sprint("user-", i)
			s := slices.Clone(scopes)
			for j := range s {
				if s[j].User != "" {
					s[j].Key, s[j].User = s[j].Budget.Name+"/user:"+user, user
				}
			}
			id := fmt.Sprint("seed-", i)
			if _, err := ledger.Reserve(context.Background(), budget.Reservation{RequestID: id, Scopes: s, AmountUSD: 0.001}); err != nil {
				b.Fatal(err)
			}
			ledger.Settle(id, 0.0005)
		}
	}
	g := NewGateway(Deps{Record: rec.Record, Counter: tokens.Counter{}, Limiter: limit.New(limit.Options{}),
		Ledger: ledger, Cache: cache.New(16<<20, time.Now)})
	g.Swap(snap)
	return g
}

// BenchmarkScale serves calls through the whole pipeline (auth, resolve,
// prompt, policy with rate limit and budgets, route, validate, trace into
// a recorder and store) on configurations and state of growing size. Each
// large case should stay within 10 % of its small one in ns/op and in p99.
//
//	go test -run '^$' -bench Scale -benchmem ./pipeline/
func BenchmarkScale(b *testing.B) {
	cases := []struct {
		name string
		sc   scale
	}{
		{"keys=10", scale{keys: 10, features: 3, releases: 1, budgets: 1}},
		{"keys=10000", scale{keys: 10_000, features: 3, releases: 1, budgets: 1}},
		{"features=3x10", scale{keys: 10, features: 3, releases: 10, budgets: 1}},
		{"features=1000x10", scale{keys: 10, features: 1000, releases: 10, budgets: 1}},
		{"budgets=1", scale{keys: 10, features: 3, releases: 1, budgets: 1}},
		{"budgets=1000+users=100000", scale{keys: 1000, features: 3, releases: 1, budgets: 1000, users: 100_000}},
		{"store=empty", scale{keys: 10, features: 3, releases: 1, budgets: 1}},
		{"store=full", scale{keys: 10, features: 3, releases: 1, budgets: 1, fullStore: true}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			g := scaleGateway(b, tc.sc)
			var n atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					i := n.Add(1)
					c := &Call{ID: fmt.Sprint("req-", i), Received: time.Now(), Entry: EntryInvoke, Secret: "gk_scale-key-00000000",
						User: fmt.Sprint("user-", i%100_000), Vars: map[string]any{"question": "Where is my order?"},
						Req: &chat.Request{Model: "feature/feature-0", MaxTokens: 16}}
					start := time.Now()
					if err := g.Serve(context.Background(), c); err != nil {
						b.Fatalf("serve: %v", err)
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
			}
		})
	}
}

// BenchmarkCompileLarge compiles and installs the largest configuration
// of BenchmarkScale: 10,000 keys, 1,000 features of 10 releases, 1,000
// budgets.
func BenchmarkCompileLarge(b *testing.B) {
	cfg := scaleConfig(scale{keys: 10_000, features: 1000, releases: 10, budgets: 1000})
	set := NewProviderSet(func(config.Provider) (provider.Provider, error) { return canned{}, nil })
	g := NewGateway(Deps{})
	b.Run("compile", func(b *testing.B) {
		for range b.N {
			if _, err := Compile(cfg, set); err != nil {
				b.Fatal(err)
			}
		}
	})
	snap, err := Compile(cfg, set)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("swap", func(b *testing.B) {
		for range b.N {
			g.Swap(snap)
		}
	})
}
