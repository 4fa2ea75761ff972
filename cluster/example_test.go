package cluster_test

import (
	"context"
	"log"
	"net/http"
	"sync/atomic"

	"gantry/cluster"
	"gantry/cluster/command"
	"gantry/config"
)

// An agent opens its node, mounts the cluster API on its admin server, and
// swaps its data-plane configuration whenever the state changes.
func Example() {
	ctx := context.Background()
	node, err := cluster.Open(ctx, cluster.Options{
		NodeID:   "agent-1",
		RaftAddr: "127.0.0.1:7401",
		DataDir:  "/var/lib/gantry",
		HTTPAddr: "http://127.0.0.1:7400",
		Secret:   "cluster secret from the environment",
		Voters:   3,
		Join:     []string{"10.0.0.2:7400", "10.0.0.3:7400"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	admin := http.NewServeMux()
	admin.Handle(cluster.PathPrefix, node.Handler())

	var live atomic.Pointer[config.Config]
	go func() {
		for range node.Subscribe(ctx) {
			s := node.State()
			live.Store(&s.Config)
		}
	}()

	e, _ := command.New(command.MoveLabel, command.Label{Feature: "support-answer", Action: config.MovePromote, Version: 3, Reason: "canary healthy"})
	e.Actor = "token:alice"
	res, err := node.Apply(ctx, e)
	if err != nil {
		// cluster.HTTPStatus(err) is the admin API's status: 400 invalid,
		// 404 not found, 409 conflict, 503 no leader.
		log.Print(err)
		return
	}
	log.Printf("promoted at index %d", res.Index)
}
