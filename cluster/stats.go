package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/cluster/stats"
)

// SyncStats commits a's counts as one batch, if it holds any. The agent
// calls it from a loop it owns, every few seconds; it never runs on the
// request path. A batch whose outcome is unknown stays in a and is sent
// again with the same sequence next time. A batch the cluster refuses as
// invalid is dropped, so one bad batch cannot stop every later one; the
// error says so.
func (n *Node) SyncStats(ctx context.Context, a *stats.Accumulator) error {
	b, at, ok := a.NextBatch(time.Now().UTC())
	if !ok {
		return nil
	}
	e, err := command.New(command.CommitStats, command.Stats{Batch: b})
	if err != nil {
		return err
	}
	e.RequestID = StatsRequestID(b.Agent, b.Seq)
	e.Actor = "node:" + n.opts.NodeID
	// The batch's minute buckets follow the time it was cut, which a
	// resend keeps.
	e.Time = at
	// Counters are advisory: an agent that predates them skips the command
	// rather than stopping its state machine.
	e.Skippable = true
	if _, err := n.Apply(ctx, e); err != nil {
		if errors.Is(err, state.ErrInvalid) {
			a.Acked(b.Seq)
			return fmt.Errorf("stats batch %d refused and dropped: %w", b.Seq, err)
		}
		return fmt.Errorf("commit stats batch %d: %w", b.Seq, err)
	}
	a.Acked(b.Seq)
	return nil
}

// StatsRequestID names agent's stats batch seq, so a resent batch carries
// the request id of its first attempt.
func StatsRequestID(agent string, seq uint64) string {
	id := fmt.Sprintf("stats:%s:%d", agent, seq)
	if len(id) > command.MaxRequestIDLen {
		sum := sha256.Sum256([]byte(id))
		id = "stats:" + hex.EncodeToString(sum[:])
	}
	return id
}
