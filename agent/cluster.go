package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ClusterOptions wire an agent into a Raft cluster. Every agent runs a
// cluster node; one started without Join or BootstrapExpect forms a cluster
// of its own.
type ClusterOptions struct {
	// RaftAddr is where the Raft transport listens [127.0.0.1:7401; a dev
	// agent picks a free port].
	RaftAddr string
	// BootstrapExpect forms a new cluster once this many agents named in
	// Join have met; all of them vote.
	BootstrapExpect int
	// Join lists other agents' HTTP addresses (host:port) to join through.
	Join []string
	// Secret authenticates agents to each other; required with Join or
	// BootstrapExpect.
	Secret string
	// Voters is how many agents vote: 3 or 5 [3]. Further agents join as
	// non-voters and still replicate the state.
	Voters int
	// SnapshotThreshold is how many new log entries make the agent
	// snapshot its state and compact its log, keeping as many entries
	// behind the snapshot for followers that lag [8192].
	SnapshotThreshold uint64
	// SnapshotInterval is how often the threshold is checked [2m].
	SnapshotInterval time.Duration
	// CatchUpWait is how long a starting agent waits for a leader to
	// confirm the cluster's state before it serves the state it applied
	// before it stopped, marked stale [15s].
	CatchUpWait time.Duration
}

// DefaultRaftAddr is where an agent's Raft transport listens by default.
const DefaultRaftAddr = "127.0.0.1:7401"

// minSnapshotThreshold keeps snapshots from running after every few writes.
const minSnapshotThreshold = 32

func (c ClusterOptions) multi() bool { return len(c.Join) > 0 || c.BootstrapExpect > 1 }

// fromCluster reports whether the agent may start without a configuration
// file because a cluster's state will bring one.
func (c ClusterOptions) fromCluster(dataDir string) bool {
	if c.multi() {
		return true
	}
	_, err := os.Stat(filepath.Join(dataDir, "raft", "raft.db"))
	return err == nil
}

func (c ClusterOptions) check(dev bool) error {
	switch {
	case c.Voters != 0 && c.Voters != 3 && c.Voters != 5:
		return fmt.Errorf("--voters %d: want 3 or 5", c.Voters)
	case c.BootstrapExpect < 0 || c.BootstrapExpect > max(c.Voters, 3):
		return fmt.Errorf("--bootstrap-expect %d: want 1 up to the number of voters (%d)", c.BootstrapExpect, max(c.Voters, 3))
	case c.BootstrapExpect > 1 && len(c.Join) == 0:
		return errors.New("--bootstrap-expect needs --join with the other agents' addresses")
	case dev && c.multi():
		return errors.New("--dev is a single agent; drop --join and --bootstrap-expect, or drop --dev")
	case c.multi() && c.Secret == "":
		return errors.New("a cluster of several agents needs --cluster-secret (or GANTRY_CLUSTER_SECRET), the same on every agent")
	case c.SnapshotThreshold != 0 && c.SnapshotThreshold < minSnapshotThreshold:
		return fmt.Errorf("--raft-snapshot-threshold %d: want at least %d", c.SnapshotThreshold, minSnapshotThreshold)
	case c.SnapshotInterval < 0 || (c.SnapshotInterval != 0 && c.SnapshotInterval < time.Second):
		return fmt.Errorf("--raft-snapshot-interval %s: want at least 1s", c.SnapshotInterval)
	}
	return nil
}
