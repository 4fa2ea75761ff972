package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"gantry/cluster/command"
	"gantry/cluster/state"
)

// appliedFile records how far this node's state machine had applied. Raft
// learns which of its log entries are committed only from a leader, so a
// node restarted without one has applied no more than its last snapshot;
// with the marker it can still tell what it served before it stopped
// (every entry it applied was committed), and an agent that must serve
// without a leader serves that rather than an older state.
const appliedFile = "applied"

// markEvery is how often the marker is brought up to date. A crash loses
// at most this much of it; a clean Close writes it last.
const markEvery = 200 * time.Millisecond

// markerLoop keeps the applied marker current until ctx ends; Close
// writes it a last time once raft has stopped applying.
func (n *Node) markerLoop(ctx context.Context) {
	t := time.NewTicker(markEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.mark()
		}
	}
}

// mark writes the applied index to the marker when it moved.
func (n *Node) mark() {
	n.markMu.Lock()
	defer n.markMu.Unlock()
	i := n.State().Index
	if i == n.marked {
		return
	}
	if err := writeMarker(filepath.Join(n.opts.DataDir, "raft", appliedFile), i); err != nil {
		n.log.Warn("cannot record the applied index", "err", err)
		return
	}
	n.marked = i
}

func writeMarker(path string, index uint64) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(index, 10)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readMarker(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	i, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("applied marker %s: %w", path, err)
	}
	return i, nil
}

// Recovered is the state this node had applied before it last stopped:
// its snapshot and its own log entries up to the applied marker, replayed
// when the node opened. Its index is 0 for a new node. It is what an agent
// may serve when no leader confirms anything newer.
func (n *Node) Recovered() *state.State { return n.recovered }

// recoverState replays the log entries after base up to upTo onto base, as
// the state machine applies them; it stops early at an entry this version
// cannot apply. It never touches the state machine itself.
func recoverState(base *state.State, logs raft.LogStore, upTo uint64) (*state.State, error) {
	s := base
	last, err := logs.LastIndex()
	if err != nil {
		return s, err
	}
	upTo = min(upTo, last)
	var l raft.Log
	for i := base.Index + 1; i <= upTo; i++ {
		if err := logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue // compacted below a snapshot newer than base
			}
			return s, fmt.Errorf("read log entry %d: %w", i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		env, err := command.Decode(l.Data)
		if err != nil {
			if errors.Is(err, command.ErrFormat) {
				return s, nil // the state machine would halt here too
			}
			continue
		}
		next, _, err := s.Apply(l.Index, env)
		if errors.Is(err, state.ErrUnknownCommand) {
			return s, nil
		}
		s = next
	}
	return s, nil
}
