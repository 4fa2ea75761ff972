package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"gantry/pipeline/trace"
)

// StatsSource is what WatchStore reads; *trace.Store satisfies it.
type StatsSource interface{ Stats() trace.Stats }

// RecorderSource is what WatchRecorder reads; *trace.Recorder satisfies it.
type RecorderSource interface{ Stats() trace.RecorderStats }

var (
	_ StatsSource    = (*trace.Store)(nil)
	_ RecorderSource = (*trace.Recorder)(nil)
)

// WatchStore exposes a trace store's size and loss figures, read at
// scrape time. Call it once per agent; a second call returns the
// registry's AlreadyRegisteredError.
func (m *Metrics) WatchStore(s StatsSource) error {
	return m.reg.Register(&storeCollector{src: s})
}

// WatchRecorder exposes a recorder's queue depth, read at scrape time.
func (m *Metrics) WatchRecorder(r RecorderSource) error {
	return m.reg.Register(&recorderCollector{src: r})
}

func desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, nil, nil)
}

var (
	storeTraces      = desc("trace_store_traces", "Traces held by the local trace store.")
	storeBytes       = desc("trace_store_bytes", "Bytes of JSON held by the local trace store.")
	storeDiskBytes   = desc("trace_store_disk_bytes", "Bytes of the trace store's segment files.")
	storeMaxTraces   = desc("trace_store_max_traces", "Trace count bound of the local trace store.")
	storeMaxBytes    = desc("trace_store_max_bytes", "Byte bound of the local trace store.")
	storeEvicted     = desc("trace_store_evicted_total", "Traces pushed out of the store by its bounds.")
	storeDropped     = desc("trace_store_rejected_total", "Traces the store refused as too large.")
	storeWriteErrors = desc("trace_store_write_errors_total", "Failed appends to the trace store's files.")
	feedDropped      = desc("trace_feed_dropped_total", "Live feed summaries lost by slow subscribers.")
	feedSubscribers  = desc("trace_feed_subscribers", "Live feed subscribers.")
	recorderQueued   = desc("trace_queue_length", "Traces waiting in the recording queue.")
	recorderCapacity = desc("trace_queue_capacity", "Capacity of the recording queue.")
)

type storeCollector struct{ src StatsSource }

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{storeTraces, storeBytes, storeDiskBytes, storeMaxTraces, storeMaxBytes,
		storeEvicted, storeDropped, storeWriteErrors, feedDropped, feedSubscribers} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	n := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	g(storeTraces, float64(st.Count))
	g(storeBytes, float64(st.Bytes))
	g(storeDiskBytes, float64(st.DiskBytes))
	g(storeMaxTraces, float64(st.MaxCount))
	g(storeMaxBytes, float64(st.MaxBytes))
	n(storeEvicted, st.Evicted)
	n(storeDropped, st.Dropped)
	n(storeWriteErrors, st.WriteErrors)
	n(feedDropped, st.FeedDropped)
	g(feedSubscribers, float64(st.Subscribers))
}

type recorderCollector struct{ src RecorderSource }

func (c *recorderCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- recorderQueued
	ch <- recorderCapacity
}

func (c *recorderCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(recorderQueued, prometheus.GaugeValue, float64(st.Queued))
	ch <- prometheus.MustNewConstMetric(recorderCapacity, prometheus.GaugeValue, float64(st.Capacity))
}
