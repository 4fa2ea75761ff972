package command

import (
	"encoding/json"
	"time"

	"gantry/cluster/spend"
	"gantry/cluster/stats"
	"gantry/config"
)

// Name identifies the object a delete or revoke command acts on.
type Name struct {
	Name string `json:"name"`
}

// Prune is the payload of PruneKeys: keys revoked at or before
// RevokedBefore go.
type Prune struct {
	RevokedBefore time.Time `json:"revoked_before"`
}

// Provider is the payload of PutProvider.
type Provider struct {
	Provider config.Provider `json:"provider"`
}

// Model is the payload of PutModel.
type Model struct {
	Model config.Model `json:"model"`
}

// Route is the payload of PutRoute.
type Route struct {
	Route config.Route `json:"route"`
}

// Feature is the payload of PutFeature. A new feature comes with its first
// releases and labels; for an existing feature only the description and the
// output cap change, because releases are immutable and labels move only
// through MoveLabel.
type Feature struct {
	Feature config.Feature `json:"feature"`
}

// Release is the payload of CreateRelease. Version 0 takes the next number;
// any other version must be exactly the next number.
type Release struct {
	Feature string         `json:"feature"`
	Release config.Release `json:"release"`
}

// Label is the payload of MoveLabel.
type Label struct {
	Feature string `json:"feature"`
	Action  string `json:"action"` // a config.Move* an operator asks for
	Version int    `json:"version"`
	Weight  int    `json:"weight,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// From, when set, is where the moved label must point when the
	// command applies (0: a canary label that points nowhere); otherwise
	// the move is refused as a conflict. Checked by the state machine, so
	// a move committed by someone else in between is always caught.
	// Payload version 2.
	From *int `json:"from,omitempty"`
	// Force promotes past the feature's evaluation gate; it needs a
	// Reason, which the audit log keeps with the verdict it overrode.
	// Payload version 4.
	Force bool `json:"force,omitempty"`
}

// PayloadVersion is 3: a move means what config.PlanMove says (rollback
// ends a live canary; abort exists), which an agent that knows only the
// moves of versions 1 and 2 would apply differently, so it must halt
// rather than diverge. A forced promotion is 4, since an agent that does
// not know the gate would not record what was overridden.
func (l Label) PayloadVersion() int {
	if l.Force {
		return 4
	}
	return 3
}

// Key is the payload of PutKey. Only the hash of the secret is carried.
type Key struct {
	Key config.Key `json:"key"`
}

// Token is an admin token of the console and the admin API. Only the hash of
// the secret is stored, in the same form as a virtual key's.
type Token struct {
	Name    string      `json:"name"`
	Hash    string      `json:"hash"`
	Role    config.Role `json:"role"`
	Revoked bool        `json:"revoked,omitempty"`
}

// TokenPayload is the payload of PutToken.
type TokenPayload struct {
	Token Token `json:"token"`
}

// Object is the payload of PutObject: one named object of a list of the
// configuration that has no dedicated command (budgets, policies and the
// like), named by the list's JSON field name.
type Object struct {
	Kind   string          `json:"kind"`
	Object json.RawMessage `json:"object"`
}

// ObjectName is the payload of DeleteObject.
type ObjectName struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Config is the payload of ApplyConfig: a configuration file declared onto
// the state in one step. Since payload version 3 it changes only what the
// file declares and leaves what operators did at run time (see
// cluster/state/declare.go); versions 1 and 2 replaced the whole
// configuration, and old logs replay that way.
type Config struct {
	Config config.Config `json:"config"`
	// IfIndex, when set, must be the state's ConfigIndex when the command
	// applies, so a configuration read, edited and written back never
	// undoes a change made in between (0: no configuration was ever
	// applied).
	IfIndex *uint64 `json:"if_index,omitempty"`
	// Prune removes the objects an earlier file declared and this one
	// does not.
	Prune bool `json:"prune,omitempty"`
	// Force, the reason why, lets an apply remove every provider, feature
	// or key; it goes to the audit log.
	Force string `json:"force,omitempty"`
}

// PayloadVersion is 3: an agent that knows only the replacing versions
// would apply the file differently, so it must halt rather than diverge.
func (c Config) PayloadVersion() int { return 3 }

// Member is the payload of PutMember: where an agent can be reached.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// Grant is the payload of GrantSpend: agent asks for Amount more of a
// budget; the result's Amount is what it got.
type Grant struct {
	Budget string  `json:"budget"`
	Agent  string  `json:"agent"`
	Amount float64 `json:"amount"`
}

// Spend is the payload of CommitSpend.
type Spend struct {
	Batch spend.Batch `json:"batch"`
}

// PayloadVersion is 2 for a final batch, whose returned grants an agent
// that knows only version 1 would keep.
func (s Spend) PayloadVersion() int {
	if s.Batch.Final {
		return 2
	}
	return 1
}

// Stats is the payload of CommitStats.
type Stats struct {
	Batch stats.Batch `json:"batch"`
}

// DocumentRef names one document body of a collection by its content: the
// SHA-256 of the stored body ("sha256:" and 64 hex digits) and its size in
// bytes. Agents fetch bodies they lack from each other by hash.
type DocumentRef struct {
	ID   string `json:"id"`
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

// Documents is the payload of PutDocuments: documents added to or replaced
// in a collection. Origin is the agent that took the upload and holds the
// bodies, which the others ask first.
type Documents struct {
	Collection string        `json:"collection"`
	Origin     string        `json:"origin,omitempty"`
	Documents  []DocumentRef `json:"documents"`
}

// DocumentIDs is the payload of DeleteDocuments.
type DocumentIDs struct {
	Collection string   `json:"collection"`
	IDs        []string `json:"ids"`
}
