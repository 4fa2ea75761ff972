package tui

import (
	"fmt"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"gantry/pipeline/trace"
)

// BenchmarkFeed1000 is one tick of a busy feed: 1,000 new summaries from
// three agents into the live table, then a full View of the 120x40 screen.
// One op is one second of traffic at 1,000 traces/s batched per second; at
// a 100 ms tick the same work is split over ten messages.
func BenchmarkFeed1000(b *testing.B) { benchFeed(b, nil) }

// BenchmarkFeed1000ByDuration is the same tick with the table sorted by
// duration: the shown rows are re-sorted once per batch.
func BenchmarkFeed1000ByDuration(b *testing.B) {
	benchFeed(b, func(a *App) { press(b, a, a.Keys().Sort) })
}

// BenchmarkFeed1000Filtered is the same tick with a range and text filter,
// as after following an alert.
func BenchmarkFeed1000Filtered(b *testing.B) {
	benchFeed(b, func(a *App) { a.traces.setFilter("model:sim dur:>500ms cost:<=0.01 status:err") })
}

func benchFeed(b *testing.B, setup func(*App)) {
	a := loaded(b, false, 120, 40)
	press(b, a, a.Keys().Traces)
	if setup != nil {
		setup(a)
	}
	const batch, pool = 1000, 20
	batches := make([][]trace.Summary, pool)
	for i := range batches {
		batches[i] = summaries(batch, clock)
		for j := range batches[i] {
			batches[i][j].ID = fmt.Sprintf("%02d%030x", i, j)
		}
	}
	base := clock
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt := batches[i%pool]
		for j := range bt {
			// Keep time moving forward, as a live feed does.
			bt[j].Start = base.Add(time.Duration(j) * time.Millisecond)
		}
		base = base.Add(time.Second)
		a.Update(TracesMsg(bt))
		_ = a.View()
	}
	b.StopTimer()
	if len(a.traces.all) > DefaultMaxTraces+DefaultMaxTraces/4 {
		b.Fatalf("ring grew to %d rows", len(a.traces.all))
	}
}

// BenchmarkFeedPaused is the same feed while paused: rows are taken in and
// counted but the frozen table is not rebuilt.
func BenchmarkFeedPaused(b *testing.B) {
	a := loaded(b, false, 120, 40)
	k := a.Keys()
	press(b, a, k.Traces)
	press(b, a, k.Pause)
	batches := make([][]trace.Summary, 20)
	for i := range batches {
		batches[i] = summaries(1000, clock)
		for j := range batches[i] {
			batches[i][j].ID = fmt.Sprintf("%02d%030x", i, j)
		}
	}
	base := clock
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt := batches[i%20]
		for j := range bt {
			bt[j].Start = base.Add(time.Duration(j) * time.Millisecond)
		}
		base = base.Add(time.Second)
		a.Update(TracesMsg(bt))
		_ = a.View()
	}
}

// BenchmarkTracesFrame is one redraw of a full 120x40 traces screen after
// a change, the cost per frame whatever the feed rate.
func BenchmarkTracesFrame(b *testing.B) {
	a := loaded(b, false, 120, 40)
	press(b, a, a.Keys().Traces)
	a.Update(TracesMsg(summaries(5000, clock)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.traces.dirty, a.dirty = true, true
		_ = a.View()
	}
}

// BenchmarkFeedOneByOne is a console that sends each trace as its own
// message, with FeedBatch on: 1,000 messages, each followed by the View
// bubbletea draws after every message, and one flush. One op is one
// second of traffic at 1,000 traces/s.
func BenchmarkFeedOneByOne(b *testing.B) {
	r := newTestApp(b, false)
	a := New(Options{Renderer: nil, FeedBatch: 100 * time.Millisecond, Now: r.env.now, Location: time.UTC})
	a.env.st = r.env.st
	a.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	press(b, a, a.Keys().Traces)
	batches := make([][]trace.Summary, 20)
	for i := range batches {
		batches[i] = summaries(1000, clock)
		for j := range batches[i] {
			batches[i][j].ID = fmt.Sprintf("%02d%030x", i, j)
		}
	}
	base := clock
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt := batches[i%20]
		for j := range bt {
			bt[j].Start = base.Add(time.Duration(j) * time.Millisecond)
			a.Update(TracesMsg(bt[j : j+1]))
			_ = a.View()
			if j%100 == 99 { // the 100ms flush tick
				a.Update(feedFlushMsg{})
				_ = a.View()
			}
		}
		base = base.Add(time.Second)
	}
}
