package cluster

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// timedLogStore measures raft's log writes, so a leader whose disk stalls
// can notice and step aside. A leader on a stalled disk still answers
// heartbeats (they do not touch the disk), so its followers never elect
// another one and every write in the cluster waits on that one disk.
type timedLogStore struct {
	raft.LogStore
	// inflight is when the write in progress began (unix nanoseconds), or
	// 0 when none is.
	inflight atomic.Int64
	// slowest is the longest write since the watchdog last looked.
	slowest atomic.Int64
}

func (s *timedLogStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

func (s *timedLogStore) StoreLogs(logs []*raft.Log) error {
	start := time.Now()
	s.inflight.Store(start.UnixNano())
	err := s.LogStore.StoreLogs(logs)
	d := int64(time.Since(start))
	s.inflight.Store(0)
	for {
		cur := s.slowest.Load()
		if d <= cur || s.slowest.CompareAndSwap(cur, d) {
			break
		}
	}
	return err
}

// stalled reports how long the current or the slowest recent write took,
// and resets the latter.
func (s *timedLogStore) stalled(now time.Time) time.Duration {
	d := time.Duration(s.slowest.Swap(0))
	if start := s.inflight.Load(); start != 0 {
		d = max(d, now.Sub(time.Unix(0, start)))
	}
	return d
}

// watchdogLoop hands leadership to another voter when this leader's log
// writes take longer than DiskStallThreshold, at most once per ten
// thresholds so a cluster whose disks are all slow does not churn.
func (n *Node) watchdogLoop(ctx context.Context) {
	limit := n.opts.DiskStallThreshold
	t := time.NewTicker(max(limit/4, 10*time.Millisecond))
	defer t.Stop()
	var lastTransfer time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			d := n.logs.stalled(now)
			if d >= limit {
				n.lastStall.Store(&DiskStall{Write: d, At: now})
			}
			if d < limit || !n.IsLeader() || now.Sub(lastTransfer) < 10*limit {
				continue
			}
			n.log.Warn("cluster log write stalled; handing over leadership", "write", d, "threshold", limit)
			lastTransfer = now
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.log.Warn("cluster leadership transfer failed", "error", err)
			}
		}
	}
}

// DiskStall is a cluster log write that took longer than the stall
// threshold: how long, and when the watchdog saw it.
type DiskStall struct {
	Write time.Duration
	At    time.Time
}

// LastDiskStall is the latest log write slower than the stall threshold,
// on a leader or a follower; nil when there has been none.
func (n *Node) LastDiskStall() *DiskStall { return n.lastStall.Load() }
