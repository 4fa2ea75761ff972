package state

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/spend"
	"gantry/cluster/stats"
	"gantry/config"
)

// snapshotFormat is the version of the encoding below. A newer agent may read
// older formats; an older agent refuses newer ones rather than guess.
// Format 2 adds document manifests and is written only when the state has
// some, so an agent that predates them refuses exactly the snapshots it
// would misread.
const (
	snapshotFormat          = 1
	snapshotFormatDocuments = 2
)

// MaxSnapshotBytes bounds a snapshot an agent will read.
const MaxSnapshotBytes = 1 << 30

// wire is the encoded form of a State. encoding/json writes struct fields in
// declaration order and map keys sorted, so equal states encode to equal
// bytes, which is what Hash relies on.
type wire struct {
	Format       int                      `json:"format"`
	Index        uint64                   `json:"index"`
	Config       config.Config            `json:"config"`
	ConfigIndex  uint64                   `json:"config_index"`
	Declared     map[string]string        `json:"declared,omitempty"`
	LabelHistory map[string][]LabelChange `json:"label_history,omitempty"`
	Tokens       []command.Token          `json:"tokens,omitempty"`
	Members      []Member                 `json:"members,omitempty"`
	Spend        spend.Ledger             `json:"spend"`
	Stats        stats.Table              `json:"stats,omitzero"`
	Documents    map[string]Manifest      `json:"documents,omitempty"`
	Eval         Eval                     `json:"eval,omitzero"`
	// KeyRevoked and KeyTombstones are replicated like the rest: a
	// replica restored without them would prune keys at other times and
	// accept a pruned secret again.
	KeyRevoked    map[string]time.Time `json:"key_revoked,omitempty"`
	KeyTombstones map[string]time.Time `json:"key_tombstones,omitempty"`
	Audit         []AuditRecord        `json:"audit,omitempty"`
	AuditSeq      uint64               `json:"audit_seq"`
	Requests      []appliedRequest     `json:"requests,omitempty"`
	RequestSeq    uint64               `json:"request_seq"`
}

func (s *State) wire() wire {
	format := snapshotFormat
	if len(s.Documents) > 0 {
		format = snapshotFormatDocuments
	}
	return wire{
		Format:        format,
		Index:         s.Index,
		Config:        s.Config,
		ConfigIndex:   s.ConfigIndex,
		Declared:      s.Declared,
		LabelHistory:  s.LabelHistory,
		Tokens:        s.Tokens,
		Members:       s.Members,
		Spend:         s.Spend,
		Stats:         s.Stats,
		Documents:     s.Documents,
		Eval:          s.Eval,
		KeyRevoked:    s.KeyRevoked,
		KeyTombstones: s.KeyTombstones,
		Audit:         s.audit.records(),
		AuditSeq:      s.AuditSeq,
		Requests:      s.requests.list(),
		RequestSeq:    s.requests.next,
	}
}

// Encode writes the whole state, recent request ids included, to w.
func (s *State) Encode(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := json.NewEncoder(bw).Encode(s.wire()); err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// Decode reads a state written by Encode.
func Decode(r io.Reader) (*State, error) {
	lr := &io.LimitedReader{R: r, N: MaxSnapshotBytes + 1}
	dec := json.NewDecoder(bufio.NewReaderSize(lr, 64<<10))
	var w wire
	if err := dec.Decode(&w); err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("decode state: more than %d bytes", MaxSnapshotBytes)
		}
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if w.Format != snapshotFormat && w.Format != snapshotFormatDocuments {
		return nil, fmt.Errorf("decode state: format %d, this agent reads %d and %d", w.Format, snapshotFormat, snapshotFormatDocuments)
	}
	if err := w.check(); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if err := checkManifests(w.Documents); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if len(w.Documents) == 0 {
		w.Documents = nil
	}
	if err := w.Eval.check(); err != nil {
		return nil, fmt.Errorf("decode state: evaluation: %w", err)
	}
	return &State{
		Index:         w.Index,
		Config:        w.Config,
		ConfigIndex:   w.ConfigIndex,
		Declared:      w.Declared,
		LabelHistory:  w.LabelHistory,
		Tokens:        w.Tokens,
		Members:       w.Members,
		Spend:         w.Spend,
		Stats:         w.Stats,
		Documents:     w.Documents,
		Eval:          w.Eval,
		KeyRevoked:    w.KeyRevoked,
		KeyTombstones: w.KeyTombstones,
		audit:         auditFrom(w.Audit),
		AuditSeq:      w.AuditSeq,
		requests:      requestsFrom(w.Requests, w.RequestSeq),
		hash:          &hashCache{},
	}, nil
}

// Hash is the SHA-256 over the hashes of the state's parts (SectionHashes,
// each in full), in the order a snapshot writes them. Replicas that applied
// the same commands have equal hashes. It is computed once per state, with
// the parts' hashes, in one encoding.
func (s *State) Hash() string { return s.hashes().sum }

// SectionHashes hashes each part of the state's encoding on its own, by
// its name in a snapshot (config, spend, stats, audit, …), each as the
// first 12 hex digits of its SHA-256. Replicas whose Hash differs differ
// in the sections whose hashes differ, which says where to look.
func (s *State) SectionHashes() map[string]string { return s.hashes().parts }

func (s *State) hashes() *hashCache {
	c := s.hash
	if c == nil {
		c = &hashCache{}
	}
	c.once.Do(func() { c.sum, c.parts = s.computeHashes() })
	return c
}

func (s *State) computeHashes() (string, map[string]string) {
	w := reflect.ValueOf(s.wire())
	whole := sha256.New()
	parts := make(map[string]string, w.NumField())
	for i := range w.NumField() {
		name, _, _ := strings.Cut(w.Type().Field(i).Tag.Get("json"), ",")
		b, err := json.Marshal(w.Field(i).Interface())
		if err != nil {
			// A state holds only values decoded from JSON; they encode.
			return "unencodable: " + err.Error(), nil
		}
		sum := sha256.Sum256(b)
		parts[name] = hex.EncodeToString(sum[:6])
		whole.Write([]byte(name))
		whole.Write(sum[:])
	}
	return "sha256:" + hex.EncodeToString(whole.Sum(nil)), parts
}

// check holds a decoded state to the bounds that applying commands keeps
// and that the code reading a state relies on, so a snapshot that a
// faulty or hostile agent wrote cannot make its readers allocate without
// bound or compute with values no command could have made. The
// configuration itself is checked by those who compile it, which keep
// serving what they had when it does not compile.
func (w *wire) check() error {
	if len(w.Requests) > MaxRequests || len(w.Audit) > MaxAudit || len(w.Tokens) > MaxTokens || len(w.Members) > MaxMembers {
		return errors.New("a list is longer than its bound")
	}
	cfg := &w.Config
	for _, n := range []int{len(cfg.Providers), len(cfg.Models), len(cfg.Routes), len(cfg.Features), len(cfg.Keys), len(cfg.Teams), len(cfg.Budgets), len(cfg.Collections)} {
		if n > config.MaxItems {
			return fmt.Errorf("%w: a configuration list of %d entries, more than %d", ErrInvalid, n, config.MaxItems)
		}
	}
	if err := checkBounds(cfg); err != nil {
		return err
	}
	if len(w.KeyRevoked) > config.MaxItems || len(w.KeyTombstones) > MaxKeyTombstones {
		return fmt.Errorf("%w: %d revoked keys and %d tombstones", ErrInvalid, len(w.KeyRevoked), len(w.KeyTombstones))
	}
	if len(w.LabelHistory) > config.MaxItems {
		return fmt.Errorf("%w: label history of %d features", ErrInvalid, len(w.LabelHistory))
	}
	// One entry per declared object, and limits.
	if len(w.Declared) > len(declKinds)*config.MaxItems+1 {
		return fmt.Errorf("%w: %d declared objects", ErrInvalid, len(w.Declared))
	}
	for f, h := range w.LabelHistory {
		if len(h) > MaxLabelHistory {
			return fmt.Errorf("%w: feature %s has %d label moves, more than %d", ErrInvalid, f, len(h), MaxLabelHistory)
		}
	}
	for _, m := range w.Members {
		if err := checkMember(m); err != nil {
			return err
		}
	}
	if err := w.Spend.Check(); err != nil {
		return err
	}
	return w.Stats.Check()
}
