package agent

import (
	"context"
	"time"

	"gantry/cluster/command"
)

// A revoked key stays in the state for revokedKeyRetention, so an audit or
// an operator can still see it, then the leader prunes it: the key leaves
// every agent's state and only its hash remains, as a tombstone that keeps
// the secret from being accepted again.
const (
	revokedKeyRetention = 7 * 24 * time.Hour
	pruneKeysInterval   = time.Hour
)

// pruneRevokedKeys proposes the prune every pruneKeysInterval while this
// agent leads, until ctx ends.
func (r *replica) pruneRevokedKeys(ctx context.Context) {
	r.whileLeading(ctx, pruneKeysInterval, func(now time.Time) {
		if r.hasRevokedKeys() {
			r.proposePrune(ctx, now)
		}
	})
}

func (r *replica) hasRevokedKeys() bool {
	for _, k := range r.State().Config.Keys {
		if k.Revoked {
			return true
		}
	}
	return false
}

func (r *replica) proposePrune(ctx context.Context, now time.Time) {
	env, err := command.New(command.PruneKeys, command.Prune{RevokedBefore: now.Add(-revokedKeyRetention)})
	if err != nil {
		r.log.Error("cannot build the prune of revoked keys", "err", err)
		return
	}
	env.Actor = "key-retention (node:" + r.nodeID + ")"
	env.Skippable = true // an agent that predates it only keeps revoked keys
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if _, err := r.Apply(ctx, env); err != nil {
		r.log.Warn("could not prune revoked keys; the leader tries again in an hour", "err", err)
	}
}
