// Package command is the vocabulary of Gantry's replicated log: the envelope
// every entry travels in, the command types, and their payloads. It knows
// nothing of Raft; the state package applies commands and the cluster package
// carries them.
//
// Every log entry is one format byte followed by a JSON envelope. Command
// types are only ever added, never renumbered or reused, and a payload whose
// shape changes gets a new version number, so an older agent in a rolling
// upgrade can tell what it does not understand.
package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gantry/config"
)

// Format is the first byte of every encoded log entry. A new encoding gets a
// new byte; decoders reject bytes they do not know.
const Format byte = 1

// Bounds on one command, so no single log entry can grow without limit.
const (
	// MaxBytes bounds an encoded command; a whole declarative configuration
	// travels as one command, so it matches config.MaxFileBytes.
	MaxBytes        = config.MaxFileBytes
	MaxRequestIDLen = 128
	MaxActorLen     = 128
	MaxReasonLen    = 1024
)

// Type names a command. Types are strings so the log and the audit trail are
// readable; they are compared exactly.
type Type string

// Command types. New types are appended; none is ever renamed.
const (
	PutProvider    Type = "put_provider"
	DeleteProvider Type = "delete_provider"
	PutModel       Type = "put_model"
	DeleteModel    Type = "delete_model"
	PutRoute       Type = "put_route"
	DeleteRoute    Type = "delete_route"
	PutFeature     Type = "put_feature"
	DeleteFeature  Type = "delete_feature"
	CreateRelease  Type = "create_release"
	MoveLabel      Type = "move_label"
	PutKey         Type = "put_key"
	RevokeKey      Type = "revoke_key"
	PutToken       Type = "put_token"
	RevokeToken    Type = "revoke_token"
	PutObject      Type = "put_object"
	DeleteObject   Type = "delete_object"
	ApplyConfig    Type = "apply_config"
	PutMember      Type = "put_member"
	DeleteMember   Type = "delete_member"
	GrantSpend     Type = "grant_spend"
	CommitSpend    Type = "commit_spend"
	// CommitStats carries per-release traffic counters. Agents send it
	// skippable: an agent that predates it ignores it and only misses
	// counts, which are advisory, instead of stopping its state machine.
	CommitStats Type = "commit_stats"
	// PutDocuments and DeleteDocuments change a collection's replicated
	// manifest: which documents it holds and the hash of each body. The
	// bodies themselves never travel through the log.
	PutDocuments    Type = "put_documents"
	DeleteDocuments Type = "delete_documents"
	// Evaluation: datasets, run records, comparison verdicts and the
	// analysis of live canaries (payloads in eval.go).
	PutDataset    Type = "put_dataset"
	DeleteDataset Type = "delete_dataset"
	RecordRun     Type = "record_run"
	RecordVerdict Type = "record_verdict"
	CanaryBegin   Type = "canary_begin"
	CanaryDecide  Type = "canary_decide"
	// PruneKeys removes keys revoked before a cutoff and keeps their
	// hashes as tombstones. Agents send it skippable: one that predates it
	// only keeps the revoked keys.
	PruneKeys Type = "prune_keys"
)

// Envelope is one command as it is written to the log. Time is set once, by
// the agent that accepted the command, so every replica applies the same
// value and the state machine never reads a clock.
type Envelope struct {
	Type    Type `json:"type"`
	Version int  `json:"version"`
	// RequestID makes a command idempotent: applying a request id that is
	// already recorded changes nothing and returns the first result.
	RequestID string    `json:"request_id"`
	Actor     string    `json:"actor"`
	Time      time.Time `json:"time"`
	// Skippable lets an agent that does not know Type ignore the command
	// during a rolling upgrade; an unknown command that is not skippable
	// stops the agent's state machine.
	Skippable bool            `json:"skippable,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

// New builds an envelope for payload at version 1. The request id, actor and
// time are left for the caller or the node to fill in.
func New(t Type, payload any) (Envelope, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %s payload: %w", t, err)
	}
	v := 1
	if p, ok := payload.(versioned); ok {
		v = p.PayloadVersion()
	}
	return Envelope{Type: t, Version: v, Payload: b}, nil
}

// versioned is a payload whose version depends on what it carries: a field
// added later raises it only when set, so older agents refuse exactly the
// commands they would misapply.
type versioned interface{ PayloadVersion() int }

// Check reports problems with the envelope itself, not its payload.
func (e Envelope) Check() error {
	switch {
	case e.Type == "":
		return errors.New("command has no type")
	case e.Version <= 0:
		return fmt.Errorf("command %s: version %d, want 1 or more", e.Type, e.Version)
	case e.RequestID == "":
		return fmt.Errorf("command %s: no request id", e.Type)
	case len(e.RequestID) > MaxRequestIDLen:
		return fmt.Errorf("command %s: request id longer than %d bytes", e.Type, MaxRequestIDLen)
	case len(e.Actor) > MaxActorLen:
		return fmt.Errorf("command %s: actor longer than %d bytes", e.Type, MaxActorLen)
	case e.Time.IsZero():
		return fmt.Errorf("command %s: no time", e.Type)
	}
	return nil
}

// Encode writes the envelope as a log entry.
func Encode(e Envelope) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(Format)
	if err := json.NewEncoder(&buf).Encode(e); err != nil {
		return nil, fmt.Errorf("encode command %s: %w", e.Type, err)
	}
	if buf.Len() > MaxBytes {
		return nil, fmt.Errorf("command %s is %d bytes, more than the limit of %d", e.Type, buf.Len(), MaxBytes)
	}
	return buf.Bytes(), nil
}

// ErrFormat is returned for a log entry this version cannot read at all.
var ErrFormat = errors.New("unknown log entry format")

// Decode reads a log entry written by Encode.
func Decode(b []byte) (Envelope, error) {
	if len(b) == 0 {
		return Envelope{}, fmt.Errorf("%w: empty entry", ErrFormat)
	}
	if b[0] != Format {
		return Envelope{}, fmt.Errorf("%w: format byte %d", ErrFormat, b[0])
	}
	if len(b) > MaxBytes {
		return Envelope{}, fmt.Errorf("command is %d bytes, more than the limit of %d", len(b), MaxBytes)
	}
	var e Envelope
	if err := json.Unmarshal(b[1:], &e); err != nil {
		return Envelope{}, fmt.Errorf("decode command: %w", err)
	}
	return e, nil
}

// DecodePayload decodes the envelope's payload into v.
func (e Envelope) DecodePayload(v any) error {
	if len(e.Payload) == 0 {
		return fmt.Errorf("command %s: empty payload", e.Type)
	}
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("command %s: decode payload: %w", e.Type, err)
	}
	return nil
}
