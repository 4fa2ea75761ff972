// Package state is Gantry's replicated state and the deterministic state
// machine that changes it. A State is immutable: applying a command returns a
// new State that shares every part the command did not touch, so readers hold
// a consistent view for as long as they like, a snapshot is a pointer copy,
// and the data plane swaps configurations atomically.
//
// Apply never reads a clock, a random source or the environment, never
// panics on bad input, and returns the same result on every replica for the
// same state and command.
package state

import (
	"errors"
	"sync"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/spend"
	"gantry/cluster/stats"
	"gantry/config"
)

// Bounds on the parts of the state that are not part of config.Config.
const (
	// MaxAudit is how many audit records are kept; older ones are dropped.
	MaxAudit = 1000
	// MaxLabelHistory is how many label moves are kept per feature.
	MaxLabelHistory = 100
	// MaxRequests is how many recent request ids are remembered for
	// idempotence. A retry older than this many commands is applied again.
	MaxRequests = 4096
	// MaxTokens bounds admin tokens.
	MaxTokens = 1000
	// MaxMembers bounds the member directory.
	MaxMembers = 64
	// MaxReleasesPerFeature bounds one feature's history.
	MaxReleasesPerFeature = 10000
	// MaxReleases bounds releases across all features.
	MaxReleases = 100000
	// MaxKeyTombstones bounds the hashes of pruned keys kept; past it the
	// oldest go, and a secret pruned that long ago is refused only by its
	// key being gone.
	MaxKeyTombstones = 100000
	// maxSummary bounds the before and after summaries of an audit record.
	maxSummary = 256
)

// Errors callers branch on. Every error Apply returns wraps one of them.
var (
	// ErrInvalid: the command or the configuration it would produce is
	// invalid. Nothing changed.
	ErrInvalid = errors.New("invalid command")
	// ErrNotFound: the command names an object that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the command contradicts the state, such as changing an
	// immutable release.
	ErrConflict = errors.New("conflict")
	// ErrStale: the command was conditional on a state that has changed
	// since (If-Match on the configuration). Read again and retry.
	ErrStale = errors.New("stale")
	// ErrUnknownCommand: the command type or version is newer than this
	// agent and not skippable. The agent must be upgraded; its state
	// machine refuses further commands rather than diverge.
	ErrUnknownCommand = errors.New("unknown command")
)

// State is everything the cluster replicates. Treat it as read-only: it is
// shared between goroutines and with older and newer states.
type State struct {
	// Index is the log index of the last command that changed the state.
	Index  uint64        `json:"index"`
	Config config.Config `json:"config"`
	// ConfigIndex is the log index of the last command that changed
	// Config; a write can be made conditional on it (If-Match).
	ConfigIndex uint64 `json:"config_index"`
	// Declared holds, for each object a configuration file declared (as
	// kind/name), a digest of its declaration as last applied; nil in a
	// state that predates it. See declare.go.
	Declared map[string]string `json:"declared,omitempty"`
	// LabelHistory holds, per feature, the newest label moves, oldest first.
	LabelHistory map[string][]LabelChange `json:"label_history,omitempty"`
	Tokens       []command.Token          `json:"tokens,omitempty"`
	Members      []Member                 `json:"members,omitempty"`
	// Spend is the cluster-wide budget ledger.
	Spend spend.Ledger `json:"spend"`
	// Stats are the cluster-wide traffic counters of each release.
	Stats stats.Table `json:"stats,omitzero"`
	// Documents holds the manifest of each collection with documents.
	Documents map[string]Manifest `json:"documents,omitempty"`
	// Eval holds datasets, run records, verdicts and canary analyses.
	Eval Eval `json:"eval,omitzero"`
	// KeyRevoked is when each revoked key was revoked (by the command's
	// time); PruneKeys removes the keys revoked before its cutoff.
	KeyRevoked map[string]time.Time `json:"key_revoked,omitempty"`
	// KeyTombstones holds the hashes of pruned keys and when they went, so
	// a revoked key's secret is never accepted again.
	KeyTombstones map[string]time.Time `json:"key_tombstones,omitempty"`
	// AuditSeq numbers the audit records; Audit returns the newest.
	AuditSeq uint64 `json:"audit_seq"`

	audit    auditLog
	requests requests
	// hash caches Hash and SectionHashes; a State never changes, so
	// neither do they.
	hash *hashCache
}

type hashCache struct {
	once  sync.Once
	sum   string
	parts map[string]string
}

// New returns an empty state.
func New() *State { return &State{requests: newRequests(), hash: &hashCache{}} }

// LabelChange is one move of a feature's label.
type LabelChange = config.LabelChange

// Member is where an agent of the cluster can be reached. Raft's own
// configuration says who votes; this directory adds the admin URL that
// followers forward writes to.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// AuditRecord is one accepted change.
type AuditRecord struct {
	Seq       uint64       `json:"seq"`
	Index     uint64       `json:"index"`
	Time      time.Time    `json:"time"`
	Actor     string       `json:"actor"`
	RequestID string       `json:"request_id"`
	Command   command.Type `json:"command"`
	Target    string       `json:"target"`
	Before    string       `json:"before,omitempty"`
	After     string       `json:"after,omitempty"`
	// Diff lists the fields an object's change set; empty for changes
	// whose summary says it all (labels, tokens, a whole configuration).
	Diff   []AuditChange `json:"diff,omitempty"`
	Reason string        `json:"reason,omitempty"`
}

// Result is what applying a command produced.
type Result struct {
	Index uint64 `json:"index"`
	// Version and Hash name the release a CreateRelease made.
	Version int    `json:"version,omitempty"`
	Hash    string `json:"hash,omitempty"`
	// Duplicate is set when the request id had been applied before and
	// this is the first application's result.
	Duplicate bool `json:"duplicate,omitempty"`
	// Skipped is set when an unknown skippable command was ignored.
	Skipped bool `json:"skipped,omitempty"`
	// Amount is what a GrantSpend granted.
	Amount float64 `json:"amount,omitempty"`
	// Unchanged is set when the command found nothing to change: a
	// dataset pushed with its latest content, a canary already analysed.
	Unchanged bool `json:"unchanged,omitempty"`
	// Verdict is what a RecordVerdict judged; Outcome what a CanaryDecide
	// decided (continue, regression or pass).
	Verdict string `json:"verdict,omitempty"`
	Outcome string `json:"outcome,omitempty"`
}

// Budget returns the named budget of the configuration.
func (s *State) Budget(name string) (config.Budget, bool) {
	for _, b := range s.Config.Budgets {
		if b.Name == name {
			return b, true
		}
	}
	return config.Budget{}, false
}

// Feature returns the named feature.
func (s *State) Feature(name string) (config.Feature, bool) {
	for _, f := range s.Config.Features {
		if f.Name == name {
			return f, true
		}
	}
	return config.Feature{}, false
}

// Token returns the admin token with the given hash, revoked or not.
func (s *State) Token(hash string) (command.Token, bool) {
	for _, t := range s.Tokens {
		if t.Hash == hash {
			return t, true
		}
	}
	return command.Token{}, false
}

// Member returns the directory entry of the agent with the given id.
func (s *State) Member(id string) (Member, bool) {
	for _, m := range s.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// Applied reports whether a request id is among the recent ones, with its
// result.
func (s *State) Applied(requestID string) (Result, bool) {
	return s.requests.get(requestID)
}
