package api

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gantry/config"
)

// The admin API's write side and cluster status:
//
//	GET    /admin/v1/status                        Status
//	DELETE /admin/v1/members/{id}                  -> Removed
//	POST   /admin/v1/features/{name}/releases      config.Release -> Release
//	GET    /admin/v1/keys                          KeyList
//	POST   /admin/v1/keys                          KeyCreate -> KeySecret
//	POST   /admin/v1/keys/{name}/rotate            -> KeySecret
//	POST   /admin/v1/keys/{name}/revoke            -> Key
//	GET    /admin/v1/tokens                        TokenList
//	POST   /admin/v1/tokens                        TokenCreate -> TokenSecret
//	POST   /admin/v1/tokens/{name}/revoke          -> Token
//	GET    /admin/v1/config                        config.Config as JSON (?format=yaml for YAML)
//	PUT    /admin/v1/config                        YAML or JSON config.Config -> ConfigResult (?dry_run=1&prune=1&force=REASON)
//
// Reads take ?consistent=1 to see every write acknowledged before them.
// Writes answer 503 (CodeUnavailable) while the cluster has no leader.

// More paths of the admin API.
const (
	PathStatus = Prefix + "/status"
	PathKeys   = Prefix + "/keys"
	PathTokens = Prefix + "/tokens"
	PathConfig = Prefix + "/config"
)

// MemberPath is the path of one member, for removing it.
func MemberPath(id string) string { return PathMembers + "/" + url.PathEscape(id) }

// KeyPath is the path of one virtual key's action: rotate or revoke.
func KeyPath(name, action string) string {
	return PathKeys + "/" + url.PathEscape(name) + "/" + action
}

// TokenPath is the path of one admin token's action: revoke.
func TokenPath(name, action string) string {
	return PathTokens + "/" + url.PathEscape(name) + "/" + action
}

// Status is one agent's own view of the cluster: its raft position and the
// hash of the state it applied, which equal on every agent that applied the
// same commands.
type Status struct {
	ID          string `json:"id"`
	RaftAddr    string `json:"raft_addr"`
	HTTPAddr    string `json:"http_addr,omitempty"`
	Role        string `json:"role"`
	Leader      string `json:"leader,omitempty"`
	Term        uint64 `json:"term"`
	LastIndex   uint64 `json:"last_index"`
	CommitIndex uint64 `json:"commit_index"`
	// SnapshotIndex is the index of the agent's latest Raft snapshot.
	SnapshotIndex uint64 `json:"snapshot_index"`
	StateIndex    uint64 `json:"state_index"`
	StateHash     string `json:"state_hash"`
	// StateSections hashes each part of the state (config, spend, stats,
	// audit, …): where two agents' StateHash differ, these say where.
	StateSections map[string]string `json:"state_sections,omitempty"`
	// Build names the agent's binary; state hashes compare within one.
	Build        string    `json:"build,omitempty"`
	LastContact  time.Time `json:"last_contact,omitzero"`
	Halted       string    `json:"halted,omitempty"`
	ServingIndex uint64    `json:"serving_index"` // state index the gateway's configuration was compiled from
	// Unserved is why the gateway serves an older configuration than the
	// state holds, such as a provider's key variable unset on this agent.
	Unserved string `json:"unserved,omitempty"`
}

// Removed answers a member removal.
type Removed struct {
	ID string `json:"id"`
}

// KeyCreate asks for a new virtual key. The agent makes the secret.
type KeyCreate struct {
	Name         string            `json:"name"`
	Team         string            `json:"team,omitempty"`
	Features     []string          `json:"features,omitempty"`
	Models       []string          `json:"models,omitempty"`
	Expires      *config.Time      `json:"expires,omitempty"`
	RateLimit    *config.RateLimit `json:"rate_limit,omitempty"`
	MaxBudgetUSD float64           `json:"max_budget_usd,omitempty"`
}

// Key is a virtual key as the admin API lists it: never its secret, and of
// its hash only a prefix to tell rotations apart.
type Key struct {
	Name         string            `json:"name"`
	Team         string            `json:"team,omitempty"`
	Features     []string          `json:"features,omitempty"`
	Models       []string          `json:"models,omitempty"`
	Expires      *config.Time      `json:"expires,omitempty"`
	Revoked      bool              `json:"revoked,omitempty"`
	RateLimit    *config.RateLimit `json:"rate_limit,omitempty"`
	MaxBudgetUSD float64           `json:"max_budget_usd,omitempty"`
	HashPrefix   string            `json:"hash_prefix"`
}

// KeyList is the list of virtual keys.
type KeyList struct {
	Keys []Key `json:"keys"`
}

// KeySecret answers a key creation or rotation: the secret is shown this
// once and never stored.
type KeySecret struct {
	Key    Key    `json:"key"`
	Secret string `json:"secret"`
	Index  uint64 `json:"index"`
}

// TokenCreate asks for a new admin token with a role.
type TokenCreate struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// Token is an admin token as the admin API lists it.
type Token struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Revoked bool   `json:"revoked,omitempty"`
}

// TokenList is the list of admin tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// TokenSecret answers a token creation; the secret is shown this once.
type TokenSecret struct {
	Token  Token  `json:"token"`
	Secret string `json:"secret"`
	Index  uint64 `json:"index"`
}

// ConfigChange is what applying a file does to one object, field by field,
// e.g. {Kind: "routes", Name: "cheap", Op: "change", Fields: [{Path:
// "retry.attempts", Old: "2", New: "3"}]}; Op is one of config.Op*.
type ConfigChange = config.Change

// ConfigResult answers PUT /admin/v1/config: what the configuration changes
// and, unless it was a dry run, the log index that applied it.
type ConfigResult struct {
	DryRun bool   `json:"dry_run,omitempty"`
	Index  uint64 `json:"index,omitempty"`
	// BaseIndex is the index of the configuration the changes are
	// relative to; send ConfigETag(BaseIndex) as If-Match to apply them
	// only if it is still current.
	BaseIndex uint64         `json:"base_index"`
	Changes   []ConfigChange `json:"changes"`
}

// Writes sent with ?wait=all answer once every healthy member's gateway
// serves the change, or after a bounded wait, and say which members do in
// HeaderServedBy (ids, comma-separated) and which do not, with why, in
// HeaderNotServed.
const (
	HeaderServedBy  = "X-Gantry-Served-By"
	HeaderNotServed = "X-Gantry-Not-Served"
)

// ConfigETag is the entity tag of the configuration applied at index: GET
// /admin/v1/config returns it as ETag, PUT honours it in If-Match and
// answers 412 when the configuration has changed since.
func ConfigETag(index uint64) string { return `"` + strconv.FormatUint(index, 10) + `"` }

// ParseConfigETag reads an If-Match value made by ConfigETag.
func ParseConfigETag(v string) (uint64, error) {
	u, err := strconv.Unquote(strings.TrimPrefix(v, "W/"))
	if err != nil || strings.HasPrefix(v, "W/") {
		return 0, fmt.Errorf("If-Match: want the quoted ETag of GET %s, got %s", PathConfig, v)
	}
	n, err := strconv.ParseUint(u, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("If-Match: want the quoted ETag of GET %s, got %s", PathConfig, v)
	}
	return n, nil
}
