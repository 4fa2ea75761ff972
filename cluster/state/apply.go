package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gantry/cluster/command"
	"gantry/config"
)

// handler applies one command type. Version is the newest payload version
// the handler understands; apply decodes the payload and changes the
// transaction, or returns an error wrapping one of the package's sentinels.
type handler struct {
	version int
	apply   func(tx *txn) error
}

// handlers is the table of command types this agent understands, one entry
// per type, so adding a command is adding a row rather than growing a switch.
var handlers = map[command.Type]handler{
	command.PutProvider:    {1, putProvider},
	command.DeleteProvider: {1, deleteProvider},
	command.PutModel:       {1, putModel},
	command.DeleteModel:    {1, deleteModel},
	command.PutRoute:       {1, putRoute},
	command.DeleteRoute:    {1, deleteRoute},
	command.PutFeature:     {1, putFeature},
	command.DeleteFeature:  {1, deleteFeature},
	command.CreateRelease:  {1, createRelease},
	command.MoveLabel:      {4, moveLabel},
	command.PutKey:         {1, putKey},
	command.RevokeKey:      {1, revokeKey},
	command.PutToken:       {1, putToken},
	command.RevokeToken:    {1, revokeToken},
	command.PutObject:      {1, putObject},
	command.DeleteObject:   {1, deleteObject},
	command.ApplyConfig:    {3, applyConfig},
	command.PutMember:      {1, putMember},
	command.DeleteMember:   {1, deleteMember},
	command.GrantSpend:     {1, grantSpend},
	command.CommitSpend:    {2, commitSpend},
	command.CommitStats:    {1, commitStats},

	// Document manifests of collections; see documents.go.
	command.PutDocuments:    {1, putDocuments},
	command.DeleteDocuments: {1, deleteDocuments},
	command.PutDataset:      {1, putDataset},
	command.DeleteDataset:   {1, deleteDataset},
	command.RecordRun:       {1, recordRun},
	command.RecordVerdict:   {1, recordVerdict},
	command.CanaryBegin:     {1, canaryBegin},
	command.CanaryDecide:    {1, canaryDecide},
	command.PruneKeys:       {1, pruneKeys},
}

// Known reports whether this agent can apply commands of type t at version v.
func Known(t command.Type, v int) bool {
	h, ok := handlers[t]
	return ok && v <= h.version
}

// txn is one command being applied: the envelope, the next state being
// built, and what the command records.
type txn struct {
	env   command.Envelope
	index uint64
	next  *State
	// configChanged asks for config.Validate on the result; onlyKey, when
	// set, says the one change was to that key, which is all there is to
	// check.
	configChanged bool
	onlyKey       string
	result        Result
	audit         []AuditRecord
}

// record adds an audit record for the change of target from before to after.
func (tx *txn) record(target string, before, after any, reason string) {
	tx.audit = append(tx.audit, AuditRecord{
		Index:     tx.index,
		Time:      tx.env.Time,
		Actor:     tx.env.Actor,
		RequestID: tx.env.RequestID,
		Command:   tx.env.Type,
		Target:    target,
		Before:    summarize(before),
		After:     summarize(after),
		Diff:      fieldDiff(before, after),
		Reason:    truncate(reason, maxSummary),
	})
}

func (tx *txn) decode(v any) error {
	if err := tx.env.DecodePayload(v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Apply applies the command at log index index and returns the new state and
// the result. On error the returned state is s itself, unchanged. A request
// id applied before returns the first result with Duplicate set and s.
func (s *State) Apply(index uint64, env command.Envelope) (next *State, res Result, err error) {
	if err := env.Check(); err != nil {
		return s, Result{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if prev, ok := s.requests.get(env.RequestID); ok {
		prev.Duplicate = true
		return s, prev, nil
	}
	h, ok := handlers[env.Type]
	if !ok || env.Version > h.version {
		if env.Skippable {
			return s, Result{Skipped: true}, nil
		}
		return s, Result{}, fmt.Errorf("%w: %s version %d", ErrUnknownCommand, env.Type, env.Version)
	}
	tx := &txn{env: env, index: index, next: s.clone()}
	defer func() {
		// A handler bug must not take the agent down with it; the
		// command is rejected the same way on every replica.
		if p := recover(); p != nil {
			next, res, err = s, Result{}, fmt.Errorf("%w: %s: internal error: %v", ErrInvalid, env.Type, p)
		}
	}()
	if err := h.apply(tx); err != nil {
		return s, Result{}, fmt.Errorf("%s: %w", env.Type, err)
	}
	if tx.configChanged {
		validate := tx.next.Config.Validate
		if tx.onlyKey != "" {
			validate = func() error { return tx.next.Config.ValidateKey(tx.onlyKey) }
		}
		if err := validate(); err != nil {
			return s, Result{}, fmt.Errorf("%s: %w: %w", env.Type, ErrInvalid, err)
		}
		if err := checkBounds(&tx.next.Config); err != nil {
			return s, Result{}, fmt.Errorf("%s: %w", env.Type, err)
		}
		if err := tx.checkTombstones(); err != nil {
			return s, Result{}, fmt.Errorf("%s: %w", env.Type, err)
		}
		budgets := tx.next.Config.Budgets
		tx.next.Spend = tx.next.Spend.Prune(func(name string) bool {
			return slices.ContainsFunc(budgets, func(b config.Budget) bool { return b.Name == name })
		})
		tx.next.Stats = tx.next.Stats.Prune(tx.next.hasRelease)
		tx.next.Documents = pruneDocuments(tx.next.Documents, &tx.next.Config)
		tx.next.Eval = tx.next.Eval.prune(&tx.next.Config)
	}
	n := tx.next
	n.Index = index
	if tx.configChanged {
		n.ConfigIndex = index
	}
	tx.result.Index = index
	for i := range tx.audit {
		n.AuditSeq++
		tx.audit[i].Seq = n.AuditSeq
	}
	n.audit = n.audit.add(tx.audit...)
	n.requests = n.requests.add(env.RequestID, tx.result)
	return n, tx.result, nil
}

// clone is a shallow copy: slices and maps are shared until a handler
// replaces them, which it always does with a fresh copy.
func (s *State) clone() *State {
	c := *s
	c.hash = &hashCache{}
	return &c
}

func checkBounds(cfg *config.Config) error {
	total := 0
	for _, f := range cfg.Features {
		if len(f.Releases) > MaxReleasesPerFeature {
			return fmt.Errorf("%w: feature %s has %d releases, more than the limit of %d", ErrInvalid, f.Name, len(f.Releases), MaxReleasesPerFeature)
		}
		total += len(f.Releases)
	}
	if total > MaxReleases {
		return fmt.Errorf("%w: %d releases, more than the limit of %d", ErrInvalid, total, MaxReleases)
	}
	return nil
}

// summarize describes an object for the audit log in bounded space: its name
// when it has one and a short digest of its content, so two records show
// whether something changed without copying it.
func summarize(v any) string {
	if v == nil {
		return ""
	}
	switch x := v.(type) {
	case string:
		return truncate(x, maxSummary)
	case fmt.Stringer:
		return truncate(x.String(), maxSummary)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "unencodable"
	}
	sum := sha256.Sum256(b)
	digest := "sha256:" + hex.EncodeToString(sum[:6])
	var named struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(b, &named) == nil && named.Name != "" {
		return truncate(named.Name, maxSummary-len(digest)-1) + " " + digest
	}
	return digest
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// named copy-on-write helpers over the configuration's lists.

func put[T any](list []T, name func(T) string, v T) (out []T, before *T) {
	out = slices.Clone(list)
	for i := range out {
		if name(out[i]) == name(v) {
			b := out[i]
			out[i] = v
			return out, &b
		}
	}
	return append(out, v), nil
}

func remove[T any](list []T, name func(T) string, n string) (out []T, before *T, err error) {
	i := slices.IndexFunc(list, func(x T) bool { return name(x) == n })
	if i < 0 {
		return list, nil, fmt.Errorf("%w: %q", ErrNotFound, n)
	}
	b := list[i]
	out = slices.Concat(list[:i:i], list[i+1:])
	return out, &b, nil
}

func anyOf[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func providerName(p config.Provider) string { return p.Name }
func modelName(m config.Model) string       { return m.Name }
func routeName(r config.Route) string       { return r.Name }
func featureName(f config.Feature) string   { return f.Name }
func keyName(k config.Key) string           { return k.Name }
func tokenName(t command.Token) string      { return t.Name }
func memberID(m Member) string              { return m.ID }

func putProvider(tx *txn) error {
	var p command.Provider
	if err := tx.decode(&p); err != nil {
		return err
	}
	if err := checkProvider(p.Provider); err != nil {
		return err
	}
	if err := checkNoSecrets(p.Provider); err != nil {
		return err
	}
	var before *config.Provider
	tx.next.Config.Providers, before = put(tx.next.Config.Providers, providerName, p.Provider)
	tx.configChanged = true
	tx.record("provider/"+p.Provider.Name, anyOf(before), p.Provider, "")
	return nil
}

func deleteProvider(tx *txn) error {
	return deleteNamed(tx, "provider", &tx.next.Config.Providers, providerName)
}

func putModel(tx *txn) error {
	var p command.Model
	if err := tx.decode(&p); err != nil {
		return err
	}
	if err := checkNoSecrets(p.Model); err != nil {
		return err
	}
	var before *config.Model
	tx.next.Config.Models, before = put(tx.next.Config.Models, modelName, p.Model)
	tx.configChanged = true
	tx.record("model/"+p.Model.Name, anyOf(before), p.Model, "")
	return nil
}

func deleteModel(tx *txn) error {
	return deleteNamed(tx, "model", &tx.next.Config.Models, modelName)
}

func putRoute(tx *txn) error {
	var p command.Route
	if err := tx.decode(&p); err != nil {
		return err
	}
	if err := checkNoSecrets(p.Route); err != nil {
		return err
	}
	var before *config.Route
	tx.next.Config.Routes, before = put(tx.next.Config.Routes, routeName, p.Route)
	tx.configChanged = true
	tx.record("route/"+p.Route.Name, anyOf(before), p.Route, "")
	return nil
}

func deleteRoute(tx *txn) error {
	return deleteNamed(tx, "route", &tx.next.Config.Routes, routeName)
}

func deleteNamed[T any](tx *txn, kind string, list *[]T, name func(T) string) error {
	var p command.Name
	if err := tx.decode(&p); err != nil {
		return err
	}
	out, before, err := remove(*list, name, p.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	*list = out
	tx.configChanged = true
	tx.record(kind+"/"+p.Name, *before, nil, "")
	return nil
}

func putFeature(tx *txn) error {
	var p command.Feature
	if err := tx.decode(&p); err != nil {
		return err
	}
	f := p.Feature
	if err := checkNoSecrets(f); err != nil {
		return err
	}
	cur, exists := tx.next.Feature(f.Name)
	if exists {
		if len(f.Releases) > 0 || f.Labels != (config.Labels{}) {
			return fmt.Errorf("%w: feature %s exists; releases change only through %s and labels through %s", ErrConflict, f.Name, command.CreateRelease, command.MoveLabel)
		}
		next := cur
		next.Description = f.Description
		next.MaxTokens = f.MaxTokens
		next.Eval, next.Canary = f.Eval, f.Canary
		tx.next.Config.Features, _ = put(tx.next.Config.Features, featureName, next)
		tx.record("feature/"+f.Name, featureSummary(cur), featureSummary(next), "")
	} else {
		tx.next.Config.Features, _ = put(tx.next.Config.Features, featureName, f)
		tx.addLabelChange(f.Name, LabelChange{Action: config.MoveCreate, Label: config.LabelProduction, To: f.Labels.Production})
		if f.Labels.Canary != 0 {
			tx.addLabelChange(f.Name, LabelChange{Action: config.MoveCreate, Label: config.LabelCanary, To: f.Labels.Canary, Weight: f.Labels.CanaryWeight})
		}
		tx.record("feature/"+f.Name, nil, featureSummary(f), "")
	}
	tx.configChanged = true
	return nil
}

func deleteFeature(tx *txn) error {
	var p command.Name
	if err := tx.decode(&p); err != nil {
		return err
	}
	out, before, err := remove(tx.next.Config.Features, featureName, p.Name)
	if err != nil {
		return fmt.Errorf("feature: %w", err)
	}
	tx.next.Config.Features = out
	if _, ok := tx.next.LabelHistory[p.Name]; ok {
		h := maps.Clone(tx.next.LabelHistory)
		delete(h, p.Name)
		tx.next.LabelHistory = h
	}
	tx.configChanged = true
	tx.record("feature/"+p.Name, featureSummary(*before), nil, "")
	return nil
}

func featureSummary(f config.Feature) string {
	return fmt.Sprintf("%s releases=%d %s", f.Name, len(f.Releases), labelSummary(f.Labels))
}

func labelSummary(l config.Labels) string {
	if l.Canary == 0 {
		return fmt.Sprintf("production=v%d", l.Production)
	}
	return fmt.Sprintf("production=v%d canary=v%d@%d%%", l.Production, l.Canary, l.CanaryWeight)
}

func createRelease(tx *txn) error {
	var p command.Release
	if err := tx.decode(&p); err != nil {
		return err
	}
	if err := checkNoSecrets(p.Release); err != nil {
		return err
	}
	f, ok := tx.next.Feature(p.Feature)
	if !ok {
		return fmt.Errorf("feature: %w: %q", ErrNotFound, p.Feature)
	}
	next := 1
	for _, r := range f.Releases {
		next = max(next, r.Version+1)
	}
	if p.Release.Version != 0 && p.Release.Version != next {
		return fmt.Errorf("%w: %s: release v%d requested, the next version is v%d; releases are immutable", ErrConflict, p.Feature, p.Release.Version, next)
	}
	r := p.Release
	r.Version = next
	// Hash encodes Schema and tool parameters; an unencodable value is a
	// bad payload, not a reason to stop.
	if _, err := json.Marshal(r); err != nil {
		return fmt.Errorf("%w: release does not encode: %w", ErrInvalid, err)
	}
	f.Releases = append(f.Releases[:len(f.Releases):len(f.Releases)], r)
	tx.next.Config.Features, _ = put(tx.next.Config.Features, featureName, f)
	tx.configChanged = true
	tx.result.Version = r.Version
	tx.result.Hash = r.Hash()
	tx.record("release/"+config.ReleaseID(p.Feature, r.Version), nil, tx.result.Hash, "")
	return nil
}

// dropHistory drops the label history of features not in features: a
// configuration that no longer has a feature takes its history with it.
func (tx *txn) dropHistory(features []config.Feature) {
	var gone []string
	for name := range tx.next.LabelHistory {
		if !slices.ContainsFunc(features, func(f config.Feature) bool { return f.Name == name }) {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		h := maps.Clone(tx.next.LabelHistory)
		for _, name := range gone {
			delete(h, name)
		}
		tx.next.LabelHistory = h
	}
}

func (tx *txn) addLabelChange(feature string, c LabelChange) {
	c.Index = tx.index
	c.Time = tx.env.Time
	c.Actor = tx.env.Actor
	h := maps.Clone(tx.next.LabelHistory)
	if h == nil {
		h = map[string][]LabelChange{}
	}
	list := h[feature]
	if len(list) >= MaxLabelHistory {
		list = list[len(list)-MaxLabelHistory+1:]
	}
	h[feature] = append(list[:len(list):len(list)], c)
	tx.next.LabelHistory = h
}

func moveLabel(tx *txn) error {
	var p command.Label
	if err := tx.decode(&p); err != nil {
		return err
	}
	if len(p.Reason) > command.MaxReasonLen {
		return fmt.Errorf("%w: reason longer than %d bytes", ErrInvalid, command.MaxReasonLen)
	}
	f, ok := tx.next.Feature(p.Feature)
	if !ok {
		return fmt.Errorf("feature: %w: %q", ErrNotFound, p.Feature)
	}
	if p.Action == config.MovePromote {
		if err := tx.checkGate(p, f); err != nil {
			return err
		}
	}
	plan := config.PlanMove
	if tx.env.Version < 3 {
		plan = legacyPlanMove // a log written before moves meant what they mean now
	}
	step, err := plan(f, tx.next.LabelHistory[p.Feature], config.LabelMove{Action: p.Action, Version: p.Version, Weight: p.Weight, From: p.From})
	switch {
	case errors.Is(err, config.ErrMoveInvalid):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case errors.Is(err, config.ErrMoveConflict):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, config.ErrMoveNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case err != nil:
		return err
	}
	before := f.Labels
	f.Labels = step.Next
	tx.next.Config.Features, _ = put(tx.next.Config.Features, featureName, f)
	tx.addLabelChange(p.Feature, LabelChange{Action: p.Action, Label: step.Label, From: step.From, To: step.To, Weight: step.Weight, Reason: p.Reason})
	tx.configChanged = true
	tx.record("labels/"+p.Feature, labelSummary(before), labelSummary(f.Labels), p.Reason)
	return nil
}

func putKey(tx *txn) error {
	var p command.Key
	if err := tx.decode(&p); err != nil {
		return err
	}
	if config.WellFormedKey(p.Key.Hash) || config.WellFormedKey(p.Key.Name) {
		return fmt.Errorf("%w: key %s carries a virtual key; only its hash is stored", ErrInvalid, p.Key.Name)
	}
	if err := checkNoSecrets(p.Key); err != nil {
		return err
	}
	var before *config.Key
	tx.next.Config.Keys, before = put(tx.next.Config.Keys, keyName, p.Key)
	tx.configChanged, tx.onlyKey = true, p.Key.Name
	tx.record("key/"+p.Key.Name, anyOf(before), p.Key, "")
	tx.released("keys/" + p.Key.Name)
	return nil
}

func revokeKey(tx *txn) error {
	var p command.Name
	if err := tx.decode(&p); err != nil {
		return err
	}
	i := slices.IndexFunc(tx.next.Config.Keys, func(k config.Key) bool { return k.Name == p.Name })
	if i < 0 {
		return fmt.Errorf("key: %w: %q", ErrNotFound, p.Name)
	}
	keys := slices.Clone(tx.next.Config.Keys)
	before := keys[i]
	keys[i].Revoked = true
	tx.next.Config.Keys = keys
	if _, ok := tx.next.KeyRevoked[p.Name]; !ok || !before.Revoked {
		m := maps.Clone(tx.next.KeyRevoked)
		if m == nil {
			m = map[string]time.Time{}
		}
		m[p.Name] = tx.env.Time
		tx.next.KeyRevoked = m
	}
	tx.configChanged, tx.onlyKey = true, p.Name
	tx.record("key/"+p.Name, before, keys[i], "")
	tx.released("keys/" + p.Name)
	return nil
}

// pruneKeys removes the keys revoked at or before the cutoff and keeps
// their hashes as tombstones. A revoked key with no recorded revocation
// time (revoked before times were kept) starts its retention now.
func pruneKeys(tx *txn) error {
	var p command.Prune
	if err := tx.decode(&p); err != nil {
		return err
	}
	revoked := maps.Clone(tx.next.KeyRevoked)
	if revoked == nil {
		revoked = map[string]time.Time{}
	}
	tombs := maps.Clone(tx.next.KeyTombstones)
	if tombs == nil {
		tombs = map[string]time.Time{}
	}
	live := map[string]bool{}
	var kept []config.Key
	for _, k := range tx.next.Config.Keys {
		at, ok := revoked[k.Name]
		switch {
		case !k.Revoked:
		case !ok:
			revoked[k.Name] = tx.env.Time
		case !at.After(p.RevokedBefore):
			tombs[k.Hash] = tx.env.Time
			delete(revoked, k.Name)
			tx.record("key/"+k.Name, k, nil, "revoked "+at.UTC().Format(time.RFC3339)+"; pruned, its hash kept so it cannot come back")
			continue
		}
		live[k.Name] = true
		kept = append(kept, k)
	}
	for name := range revoked {
		if !live[name] {
			delete(revoked, name) // the key left the configuration otherwise
		}
	}
	dropOldestTombstones(tombs)
	if len(kept) != len(tx.next.Config.Keys) {
		tx.next.Config.Keys = kept
		tx.configChanged = true
	}
	tx.next.KeyRevoked, tx.next.KeyTombstones = revoked, tombs
	if len(revoked) == 0 {
		tx.next.KeyRevoked = nil
	}
	if len(tombs) == 0 {
		tx.next.KeyTombstones = nil
	}
	return nil
}

// dropOldestTombstones keeps the newest MaxKeyTombstones, oldest dropped
// first and ties by hash, so every replica drops the same ones.
func dropOldestTombstones(tombs map[string]time.Time) {
	over := len(tombs) - MaxKeyTombstones
	if over <= 0 {
		return
	}
	hashes := slices.Collect(maps.Keys(tombs))
	slices.SortFunc(hashes, func(a, b string) int {
		if c := tombs[a].Compare(tombs[b]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, h := range hashes[:over] {
		delete(tombs, h)
	}
}

// checkTombstones keeps pruned keys out. A file that still declares one
// applies without it (the key stays revoked, as it was); a key written on
// its own with a pruned secret is refused.
func (tx *txn) checkTombstones() error {
	if len(tx.next.KeyTombstones) == 0 {
		return nil
	}
	keys := tx.next.Config.Keys
	for i := 0; i < len(keys); i++ {
		k := keys[i]
		if tx.onlyKey != "" && k.Name != tx.onlyKey {
			continue
		}
		at, ok := tx.next.KeyTombstones[k.Hash]
		if !ok {
			continue
		}
		if tx.env.Type != command.ApplyConfig {
			return fmt.Errorf("%w: key %s: its secret was revoked and pruned on %s, and a revoked key cannot come back; make a new key", ErrInvalid, k.Name, at.UTC().Format(time.DateOnly))
		}
		keys = slices.Delete(slices.Clone(keys), i, i+1)
		i--
	}
	tx.next.Config.Keys = keys
	return nil
}

func putToken(tx *txn) error {
	var p command.TokenPayload
	if err := tx.decode(&p); err != nil {
		return err
	}
	t := p.Token
	switch {
	case !validName(t.Name):
		return fmt.Errorf("%w: token name %q: want 1..%d letters, digits and . _ : -", ErrInvalid, t.Name, config.MaxNameLen)
	case !validHash(t.Hash):
		return fmt.Errorf("%w: token %s: want sha256: and 64 hex digits (the hash of the token, never the token)", ErrInvalid, t.Name)
	case !t.Role.Valid():
		return fmt.Errorf("%w: token %s: unknown role %q (want %s, %s or %s)", ErrInvalid, t.Name, t.Role, config.RoleViewer, config.RoleOperator, config.RoleAdmin)
	}
	for _, o := range tx.next.Tokens {
		if o.Hash == t.Hash && o.Name != t.Name {
			return fmt.Errorf("%w: token %s has the hash of token %s", ErrConflict, t.Name, o.Name)
		}
	}
	var before *command.Token
	tx.next.Tokens, before = put(tx.next.Tokens, tokenName, t)
	if len(tx.next.Tokens) > MaxTokens {
		return fmt.Errorf("%w: more than %d admin tokens", ErrInvalid, MaxTokens)
	}
	tx.record("token/"+t.Name, tokenSummary(before), tokenSummary(&t), "")
	return nil
}

// tokenSummary leaves the hash out of the audit log.
func tokenSummary(t *command.Token) any {
	if t == nil {
		return nil
	}
	s := fmt.Sprintf("%s role=%s", t.Name, t.Role)
	if t.Revoked {
		s += " revoked"
	}
	return s
}

func revokeToken(tx *txn) error {
	var p command.Name
	if err := tx.decode(&p); err != nil {
		return err
	}
	i := slices.IndexFunc(tx.next.Tokens, func(t command.Token) bool { return t.Name == p.Name })
	if i < 0 {
		return fmt.Errorf("token: %w: %q", ErrNotFound, p.Name)
	}
	tokens := slices.Clone(tx.next.Tokens)
	before := tokens[i]
	tokens[i].Revoked = true
	tx.next.Tokens = tokens
	tx.record("token/"+p.Name, tokenSummary(&before), tokenSummary(&tokens[i]), "")
	return nil
}

func applyConfig(tx *txn) error {
	var p command.Config
	if err := tx.decode(&p); err != nil {
		return err
	}
	if p.IfIndex != nil && *p.IfIndex != tx.next.ConfigIndex {
		return fmt.Errorf("%w: the configuration changed at index %d since it was read at index %d; read it again", ErrStale, tx.next.ConfigIndex, *p.IfIndex)
	}
	for _, pr := range p.Config.Providers {
		if err := checkProvider(pr); err != nil {
			return err
		}
	}
	if err := checkNoSecrets(p.Config); err != nil {
		return err
	}
	if len(p.Force) > command.MaxReasonLen {
		return fmt.Errorf("%w: force reason longer than %d bytes", ErrInvalid, command.MaxReasonLen)
	}
	if tx.env.Version >= 3 {
		return declareConfig(tx, p.Config, p.Prune, p.Force)
	}
	old := tx.next.Config
	cfg := p.Config
	for _, f := range cfg.Features {
		of, ok := tx.next.Feature(f.Name)
		if !ok {
			tx.addLabelChange(f.Name, LabelChange{Action: config.MoveApply, Label: config.LabelProduction, To: f.Labels.Production})
			continue
		}
		for _, r := range f.Releases {
			if or, ok := of.Release(r.Version); ok && or.Hash() != r.Hash() {
				return fmt.Errorf("%w: release %s differs from the one already applied; releases are immutable, add a new version", ErrConflict, config.ReleaseID(f.Name, r.Version))
			}
		}
		if of.Labels.Production != f.Labels.Production {
			tx.addLabelChange(f.Name, LabelChange{Action: config.MoveApply, Label: config.LabelProduction, From: of.Labels.Production, To: f.Labels.Production})
		}
		if of.Labels.Canary != f.Labels.Canary || of.Labels.CanaryWeight != f.Labels.CanaryWeight {
			tx.addLabelChange(f.Name, LabelChange{Action: config.MoveApply, Label: config.LabelCanary, From: of.Labels.Canary, To: f.Labels.Canary, Weight: f.Labels.CanaryWeight})
		}
	}
	tx.dropHistory(cfg.Features)
	tx.next.Config = cfg
	tx.configChanged = true
	tx.record("config", configSummary(old), configSummary(cfg), "")
	return nil
}

func configSummary(c config.Config) string {
	releases := 0
	for _, f := range c.Features {
		releases += len(f.Releases)
	}
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return fmt.Sprintf("providers=%d models=%d routes=%d features=%d releases=%d keys=%d sha256:%s",
		len(c.Providers), len(c.Models), len(c.Routes), len(c.Features), releases, len(c.Keys), hex.EncodeToString(sum[:6]))
}

func putMember(tx *txn) error {
	var p command.Member
	if err := tx.decode(&p); err != nil {
		return err
	}
	m := Member(p)
	if err := checkMember(m); err != nil {
		return err
	}
	var before *Member
	tx.next.Members, before = put(tx.next.Members, memberID, m)
	if len(tx.next.Members) > MaxMembers {
		return fmt.Errorf("%w: more than %d members", ErrInvalid, MaxMembers)
	}
	if before != nil && *before == m {
		// Agents re-announce themselves; an unchanged entry is not news.
		return nil
	}
	tx.record("member/"+m.ID, anyOf(before), m, "")
	return nil
}

func deleteMember(tx *txn) error {
	var p command.Name
	if err := tx.decode(&p); err != nil {
		return err
	}
	out, before, err := remove(tx.next.Members, memberID, p.Name)
	if err != nil {
		return fmt.Errorf("member: %w", err)
	}
	tx.next.Members = out
	tx.record("member/"+p.Name, *before, nil, "")
	return nil
}

func grantSpend(tx *txn) error {
	var p command.Grant
	if err := tx.decode(&p); err != nil {
		return err
	}
	b, ok := tx.next.Budget(p.Budget)
	if !ok {
		return fmt.Errorf("budget: %w: %q", ErrNotFound, p.Budget)
	}
	ledger, granted, err := tx.next.Spend.Grant(b, p.Agent, p.Amount, tx.env.Time)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	tx.next.Spend = ledger
	tx.result.Amount = granted
	return nil
}

// commitSpend records a batch. Spend is not audited: it has its own ledger,
// and batches from every agent would push configuration changes out of the
// audit log within minutes.
func commitSpend(tx *txn) error {
	var p command.Spend
	if err := tx.decode(&p); err != nil {
		return err
	}
	ledger, dup, err := tx.next.Spend.Commit(p.Batch.Agent, p.Batch.Seq, p.Batch.Items, tx.next.Budget, tx.env.Time)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if p.Batch.Final && !dup {
		ledger = ledger.ReturnGrants(p.Batch.Agent)
	}
	tx.next.Spend = ledger
	return nil
}
