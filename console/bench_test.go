package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"gantry/tui"
)

// frameWatch is the program's output: it tells when a wanted text has
// been drawn since the last key press.
type frameWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want []byte
	seen chan struct{}
}

func (w *frameWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.want == nil {
		return len(p), nil
	}
	w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), w.want) {
		w.want = nil
		w.buf.Reset()
		close(w.seen)
	}
	return len(p), nil
}

func (w *frameWatch) expect(s string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	w.want = []byte(s)
	w.seen = make(chan struct{})
	return w.seen
}

// BenchmarkKeypressUnderFeed runs the console program with an agent
// serving 1,000 traces a second through the live feed, and measures how
// long a key press takes to reach the screen: each iteration switches
// view and waits for the frame showing it. It reports the latency
// percentiles, the feed rate the program really took in, and the CPU the
// whole process used (the program, its fleet and the agent's feed).
//
//	go test -run '^$' -bench KeypressUnderFeed -benchtime 200x ./console
func BenchmarkKeypressUnderFeed(b *testing.B) {
	a := newFakeAgent(b, "n1")
	f, err := NewFleet(FleetOptions{Agents: []string{a.srv.URL}, Token: testToken})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := NewModel(ctx, f, Options{Renderer: lipgloss.NewRenderer(io.Discard, termenv.WithProfile(termenv.Ascii))})
	inR, inW := io.Pipe()
	out := &frameWatch{}
	p := tea.NewProgram(m, tea.WithInput(inR), tea.WithOutput(out), tea.WithoutSignalHandler())
	var rows atomic.Int64
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		f.Run(ctx, func(msg tea.Msg) {
			if t, ok := msg.(tui.TracesMsg); ok {
				rows.Add(int64(len(t)))
			}
			p.Send(msg)
		})
	}()
	go func() {
		defer wg.Done()
		p.Run()
	}()
	// The agent: 10 traces every 10 ms.
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			now := time.Now()
			for range 10 {
				n++
				a.serve(summary(fmt.Sprintf("%032x", n), "", now))
			}
		}
	}()
	defer func() {
		cancel()
		p.Kill()
		inW.Close()
		wg.Wait()
	}()
	press := func(key, want string) time.Duration {
		seen := out.expect(want)
		start := time.Now()
		inW.Write([]byte(key))
		select {
		case <-seen:
			return time.Since(start)
		case <-time.After(10 * time.Second):
			b.Fatalf("no frame with %q within 10s of pressing %q", want, key)
			return 0
		}
	}
	// Warm up: the feed is flowing and the traces view is full.
	press("2", "[2 traces]")
	for rows.Load() < 2000 {
		time.Sleep(10 * time.Millisecond)
	}
	var before syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	rows0, wall := rows.Load(), time.Now()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		key, want := "3", "[3 costs]"
		if i%2 == 1 {
			key, want = "2", "[2 traces]"
		}
		lat = append(lat, press(key, want))
		time.Sleep(20 * time.Millisecond) // a fast typist, not a flood
	}
	b.StopTimer()
	elapsed := time.Since(wall)
	var after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.5), "p50-ms/key")
	b.ReportMetric(pct(0.95), "p95-ms/key")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms/key")
	b.ReportMetric(float64(rows.Load()-rows0)/elapsed.Seconds(), "traces/s")
	b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "cpu-%")
}
