package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"gantry/cluster/command"
	"gantry/cluster/state"
)

// ErrHalted is returned for every command after this agent met a command it
// does not understand: applying later commands on top of a state that missed
// one would make this replica silently diverge.
var ErrHalted = errors.New("state machine halted")

// fsmResponse is what fsm.Apply hands back through raft's ApplyFuture.
type fsmResponse struct {
	result state.Result
	err    error
}

// fsm adapts state.State to raft.FSM. Raft calls Apply, Snapshot and Restore
// from one goroutine; readers load the current state through an atomic
// pointer and never block it.
type fsm struct {
	state  atomic.Pointer[state.State]
	halted atomic.Pointer[error]
	log    *slog.Logger

	mu   sync.Mutex
	subs map[chan uint64]struct{}
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(log *slog.Logger) *fsm {
	f := &fsm{log: log, subs: map[chan uint64]struct{}{}}
	f.state.Store(state.New())
	return f
}

func (f *fsm) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	if p := f.halted.Load(); p != nil {
		return fsmResponse{err: fmt.Errorf("%w: %w", ErrHalted, *p)}
	}
	env, err := command.Decode(l.Data)
	if err != nil {
		if errors.Is(err, command.ErrFormat) {
			f.halt(l.Index, err)
			return fsmResponse{err: fmt.Errorf("%w: %w", state.ErrUnknownCommand, err)}
		}
		return fsmResponse{err: fmt.Errorf("%w: %w", state.ErrInvalid, err)}
	}
	cur := f.state.Load()
	next, res, err := cur.Apply(l.Index, env)
	if errors.Is(err, state.ErrUnknownCommand) {
		f.halt(l.Index, err)
	}
	if next != cur {
		f.state.Store(next)
		f.notify(next.Index)
	}
	return fsmResponse{result: res, err: err}
}

func (f *fsm) halt(index uint64, err error) {
	f.log.Error("cluster state machine halted: this agent is older than the command it was sent; upgrade it",
		"index", index, "error", err)
	f.halted.Store(&err)
}

// Snapshot captures the current immutable state; Persist encodes it while
// Apply goes on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{s: f.state.Load()}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := state.Decode(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.state.Store(s)
	f.halted.Store(nil)
	f.notify(s.Index)
	return nil
}

type fsmSnapshot struct{ s *state.State }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.s.Encode(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return nil
}

func (s *fsmSnapshot) Release() {}

// notify hands the newest applied index to every subscriber without
// blocking: a slow subscriber sees only the latest index.
func (f *fsm) notify(index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- index:
		default:
			select {
			case <-ch:
			default:
			}
			select {
			case ch <- index:
			default:
			}
		}
	}
}

func (f *fsm) subscribe() chan uint64 {
	ch := make(chan uint64, 1)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch
}

func (f *fsm) unsubscribe(ch chan uint64) {
	f.mu.Lock()
	if _, ok := f.subs[ch]; ok {
		delete(f.subs, ch)
		close(ch)
	}
	f.mu.Unlock()
}
