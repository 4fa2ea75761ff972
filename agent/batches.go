package agent

import (
	"context"
	"time"

	"gantry/cluster/state"
)

// batchLoop describes how an agent commits something it counts locally
// (spend, per-release counters) as numbered batches.
type batchLoop struct {
	interval time.Duration
	// resume reads the agent's last committed batch from a linearizable
	// read, so a restarted agent numbers its batches after it.
	resume func(*state.State)
	// sync commits once.
	sync            func(context.Context) error
	failing, healed string // logged when syncs start failing and recover
}

// runBatches resumes l, then syncs every interval until ctx ends. A failure
// is logged once, not every interval.
func (r *replica) runBatches(ctx context.Context, l batchLoop) {
	node := r.Node
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := node.ConsistentState(rctx)
		cancel()
		if err == nil {
			l.resume(st)
			break
		}
		if !sleepCtx(ctx, min(l.interval, time.Second)) {
			return
		}
	}
	failing := false
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := l.sync(sctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			r.log.Warn(l.failing, "err", err)
		case err == nil && failing:
			failing = false
			r.log.Info(l.healed)
		}
		if !sleepCtx(ctx, l.interval) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
