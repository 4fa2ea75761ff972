package cluster

import (
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestReplicationIsNotPipelined: every transport an agent opens sends one
// AppendEntries at a time to a follower. Raft's pipelined replication can
// block for good when a follower answers with a newer term: that follower
// gets no more entries and the node can no longer shut down.
func TestReplicationIsNotPipelined(t *testing.T) {
	plain, err := openTransport("127.0.0.1:0", nil, nil, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	n := startNode(t, "n0", func(o *Options) { o.Bootstrap = true; o.Voters = 1 })
	for name, tr := range map[string]*raft.NetworkTransport{"plain TCP": plain, "the node's": n.trans} {
		p, err := tr.AppendEntriesPipeline("peer", "127.0.0.1:1")
		if p != nil {
			p.Close()
		}
		if !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
			t.Errorf("%s transport: AppendEntriesPipeline answered %v, want pipelining refused", name, err)
		}
	}
}
