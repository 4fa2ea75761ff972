package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"gantry/cluster/command"
	"gantry/cluster/state"
)

// addMember adds an agent to the raft configuration: as a voter while there
// are fewer than Voters, otherwise as a non-voter. An agent already present
// with the same id and address is left as it is, so joining twice is a no-op.
func (n *Node) addMember(ctx context.Context, m state.Member) error {
	if m.ID == "" || m.RaftAddr == "" {
		return fmt.Errorf("%w: join needs an id and a raft address", state.ErrInvalid)
	}
	// Joins are decided one at a time, or two agents joining at once would
	// both count the same voters and both become voters.
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	voters, present := 0, false
	for _, s := range f.Configuration().Servers {
		switch {
		case string(s.ID) == m.ID && string(s.Address) == m.RaftAddr:
			present = true
		case string(s.ID) == m.ID || string(s.Address) == m.RaftAddr:
			// The agent came back with a new address, or another agent
			// took this address: the old entry is stale.
			if err := n.raft.RemoveServer(s.ID, 0, 0).Error(); err != nil {
				return fmt.Errorf("remove stale member %s: %w", s.ID, leaderErr(err))
			}
			continue
		}
		if s.Suffrage == raft.Voter && string(s.ID) != m.ID {
			voters++
		}
	}
	if !present {
		var f raft.IndexFuture
		if voters < n.opts.Voters {
			f = n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, 0)
		} else {
			f = n.raft.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, 0)
		}
		if err := f.Error(); err != nil {
			return fmt.Errorf("add member %s: %w", m.ID, leaderErr(err))
		}
		n.log.Info("cluster member added", "member", m.ID, "raft_addr", m.RaftAddr, "voter", voters < n.opts.Voters)
	}
	if cur, ok := n.State().Member(m.ID); ok && cur == m {
		return nil
	}
	env, err := command.New(command.PutMember, command.Member(m))
	if err != nil {
		return err
	}
	env.Actor = "node:" + n.opts.NodeID
	if _, err := n.Apply(ctx, env); err != nil {
		return fmt.Errorf("record member %s: %w", m.ID, err)
	}
	return nil
}

// promote makes non-voters voters while there are fewer voters than wanted,
// for example after a dead voter was removed.
func (n *Node) promote() {
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	var voters int
	var waiting []raft.Server
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		} else {
			waiting = append(waiting, s)
		}
	}
	slices.SortFunc(waiting, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
	for _, s := range waiting {
		if voters >= n.opts.Voters {
			return
		}
		if err := n.raft.AddVoter(s.ID, s.Address, 0, 0).Error(); err != nil {
			n.log.Warn("promote non-voter", "member", s.ID, "error", err)
			return
		}
		n.log.Info("cluster non-voter promoted", "member", s.ID)
		voters++
	}
}

// RemoveMember removes an agent from the cluster, typically a dead one. It
// works on any agent; a follower forwards to the leader. The leader cannot
// remove itself; it must Leave.
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.opts.ApplyTimeout)
		defer cancel()
	}
	for wait := 20 * time.Millisecond; ; wait = min(wait*2, 500*time.Millisecond) {
		var err error
		if n.IsLeader() {
			err = n.removeLocal(ctx, id)
		} else {
			err = n.forward(ctx, pathRemove, removeRequest{ID: id}, nil)
		}
		if err == nil || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove member %s: %w: %w", id, ctx.Err(), err)
		case <-n.ctx.Done():
			return ErrClosed
		case <-time.After(wait):
		}
	}
}

func (n *Node) removeLocal(ctx context.Context, id string) error {
	if id == n.opts.NodeID {
		return fmt.Errorf("%w: the leader cannot remove itself; it leaves after handing over leadership", state.ErrConflict)
	}
	if !n.inConfiguration(id) {
		if _, ok := n.State().Member(id); !ok {
			return fmt.Errorf("member %w: %q", state.ErrNotFound, id)
		}
	} else {
		n.memberMu.Lock()
		err := n.raft.RemoveServer(raft.ServerID(id), 0, 0).Error()
		n.memberMu.Unlock()
		if err != nil {
			return fmt.Errorf("remove member %s: %w", id, leaderErr(err))
		}
	}
	n.log.Info("cluster member removed", "member", id)
	if _, ok := n.State().Member(id); !ok {
		return nil
	}
	env, err := command.New(command.DeleteMember, command.Name{Name: id})
	if err != nil {
		return err
	}
	env.Actor = "node:" + n.opts.NodeID
	if _, err := n.Apply(ctx, env); err != nil && !errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("drop member %s from the directory: %w", id, err)
	}
	return nil
}

// Leave takes this agent out of the cluster: a leader first hands leadership
// to another voter, then the agent asks the leader to remove it. Close the
// node afterwards. A single-agent cluster has no one to leave to and returns
// nil.
func (n *Node) Leave(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.opts.ApplyTimeout)
		defer cancel()
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	if len(f.Configuration().Servers) <= 1 {
		return nil
	}
	if err := n.HandOver(ctx); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	if err := n.RemoveMember(ctx, n.opts.NodeID); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	n.log.Info("cluster left")
	return nil
}

// HandOver passes leadership to another voter when this node leads a
// cluster of several, and waits until one leads, so a stopping leader does
// not make the others wait out an election timeout before they accept
// writes. It does nothing on a follower or a lone node.
func (n *Node) HandOver(ctx context.Context) error {
	if !n.IsLeader() || n.Servers() <= 1 {
		return nil
	}
	if err := n.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("hand over leadership: %w", err)
	}
	for n.IsLeader() || n.Leader() == "" || n.Leader() == n.opts.NodeID {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for a new leader: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Join asks the agents at addrs (host:port or URLs of their admin servers),
// in turn, to add this node, until one succeeds or ctx ends. Any member
// forwards the request to the leader. Joining a cluster this node already
// belongs to is a no-op.
func (n *Node) Join(ctx context.Context, addrs []string) error {
	me := n.self()
	var last error
	for {
		for _, a := range addrs {
			base := n.baseURL(a)
			if base == n.opts.HTTPAddr {
				continue
			}
			err := n.call(ctx, "POST", base, pathJoin, me, nil)
			if err == nil {
				n.log.Info("cluster joined", "via", base)
				return nil
			}
			last = err
			if errors.Is(err, ErrForbidden) || certRefused(err) {
				return fmt.Errorf("join via %s: %w", base, err)
			}
		}
		if last == nil {
			return errors.New("join: no address other than this agent's own")
		}
		n.log.Debug("cluster join will be retried", "error", last)
		select {
		case <-ctx.Done():
			return fmt.Errorf("join: %w: %w", ctx.Err(), last)
		case <-n.ctx.Done():
			return ErrClosed
		case <-time.After(n.opts.JoinInterval):
		}
	}
}

func (n *Node) joinLoop(ctx context.Context, addrs []string) {
	if err := n.Join(ctx, addrs); err != nil && !errors.Is(err, ErrClosed) && ctx.Err() == nil {
		n.log.Error("cluster join failed", "error", err)
	}
}

// expectLoop forms a new cluster once BootstrapExpect agents have announced
// themselves to each other. Every one of them bootstraps with the same
// server set, which raft allows; the first election then picks a leader.
func (n *Node) expectLoop(ctx context.Context) {
	me := n.self()
	n.mu.Lock()
	n.announced[me.ID] = me
	n.mu.Unlock()
	t := time.NewTicker(n.opts.JoinInterval)
	defer t.Stop()
	for {
		if n.Leader() != "" {
			return
		}
		var wg sync.WaitGroup
		for _, a := range n.opts.Join {
			base := n.baseURL(a)
			if base == n.opts.HTTPAddr {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, n.opts.JoinInterval)
				defer cancel()
				if err := n.call(cctx, "POST", base, pathNotify, me, nil); certRefused(err) {
					n.log.Warn("cluster announcement refused: the agent's certificate does not verify", "to", base, "error", err)
				} else if err != nil {
					n.log.Debug("cluster announcement failed", "to", base, "error", err)
				}
			}()
		}
		wg.Wait()
		n.mu.Lock()
		peers := make([]state.Member, 0, len(n.announced))
		for _, m := range n.announced {
			peers = append(peers, m)
		}
		n.mu.Unlock()
		if len(peers) >= n.opts.BootstrapExpect {
			slices.SortFunc(peers, func(a, b state.Member) int { return strings.Compare(a.ID, b.ID) })
			var cfg raft.Configuration
			for _, p := range peers {
				cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr), Suffrage: raft.Voter})
			}
			err := n.raft.BootstrapCluster(cfg).Error()
			switch {
			case err == nil:
				n.log.Info("cluster bootstrapped", "voters", len(peers))
				return
			case errors.Is(err, raft.ErrCantBootstrap):
				return
			default:
				n.log.Warn("cluster bootstrap failed", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// baseURL makes a join address a URL; a bare host:port takes the scheme
// of this agent's own admin server, since agents of one cluster share it.
func (n *Node) baseURL(addr string) string {
	addr = strings.TrimRight(addr, "/")
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return addr
	}
	if strings.HasPrefix(n.opts.HTTPAddr, "https://") {
		return "https://" + addr
	}
	return "http://" + addr
}

// Status is one agent's view of itself.
type Status struct {
	ID           string `json:"id"`
	RaftAddr     string `json:"raft_addr"`
	HTTPAddr     string `json:"http_addr,omitempty"`
	RaftState    string `json:"raft_state"`
	Leader       string `json:"leader,omitempty"`
	Term         uint64 `json:"term"`
	LastLogIndex uint64 `json:"last_log_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// SnapshotIndex is the log index of this node's latest snapshot,
	// taken or installed from the leader; 0 before the first.
	SnapshotIndex uint64 `json:"snapshot_index"`
	StateIndex    uint64 `json:"state_index"`
	StateHash     string `json:"state_hash"`
	// LastContact is when this agent last heard from the leader; zero on
	// the leader itself or before any contact.
	LastContact time.Time `json:"last_contact,omitzero"`
	Halted      string    `json:"halted,omitempty"`
	// Unserved is why this agent serves an older configuration than its
	// state holds; empty when it serves the state's.
	Unserved string `json:"unserved,omitempty"`
	// ServingIndex is the state index the agent's gateway serves.
	ServingIndex uint64 `json:"serving_index"`
	// Build names the binary; state hashes compare only between members
	// of one build, since another may encode the same state differently.
	Build string `json:"build,omitempty"`
	// StateSections hashes each part of the state (state.SectionHashes),
	// so replicas whose StateHash differs show where they differ.
	StateSections map[string]string `json:"state_sections,omitempty"`
}

// build names this binary by its module version and source revision.
var build = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	b := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			b += " " + s.Key + "=" + s.Value
		}
	}
	return b
})

// snapshotIndex reads the index of the latest snapshot from raft's stats,
// the only place the library reports it.
func (n *Node) snapshotIndex() uint64 {
	i, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	return i
}

// Status reports this node's raft position.
func (n *Node) Status() Status {
	s := n.State()
	st := Status{
		ID:            n.opts.NodeID,
		RaftAddr:      n.RaftAddr(),
		HTTPAddr:      n.opts.HTTPAddr,
		RaftState:     strings.ToLower(n.raft.State().String()),
		Leader:        n.Leader(),
		Term:          n.raft.CurrentTerm(),
		LastLogIndex:  n.raft.LastIndex(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.raft.AppliedIndex(),
		SnapshotIndex: n.snapshotIndex(),
		StateIndex:    s.Index,
		StateHash:     s.Hash(),
		StateSections: s.SectionHashes(),
		Build:         build(),
	}
	if !n.IsLeader() {
		st.LastContact = n.raft.LastContact()
	}
	if err := n.Halted(); err != nil {
		st.Halted = err.Error()
	}
	if n.opts.Unserved != nil {
		st.Unserved = n.opts.Unserved()
	}
	if n.opts.Serving != nil {
		st.ServingIndex = n.opts.Serving()
	}
	return st
}

// Member is one agent as the console and the CLI list it.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
	// Status is the member's own report; nil when it could not be reached.
	Status *Status `json:"status,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Members lists the raft configuration with each member's admin address and
// its own status, asked for over the cluster API with a short timeout.
func (n *Node) Members(ctx context.Context) ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	leader := n.Leader()
	st := n.State()
	servers := f.Configuration().Servers
	out := make([]Member, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		m := Member{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter, Leader: string(s.ID) == leader}
		if d, ok := st.Member(m.ID); ok {
			m.HTTPAddr = d.HTTPAddr
		}
		out[i] = m
		switch {
		case m.ID == n.opts.NodeID:
			own := n.Status()
			out[i].Status = &own
		case m.HTTPAddr == "":
			out[i].Error = "no admin address announced"
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				var rs Status
				if err := n.call(cctx, "GET", out[i].HTTPAddr, pathStatus, nil, &rs); err != nil {
					out[i].Error = err.Error()
					return
				}
				out[i].Status = &rs
			}()
		}
	}
	wg.Wait()
	return out, nil
}
