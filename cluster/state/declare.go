package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"gantry/config"
)

// Who owns what. A configuration file declares objects (providers, models,
// routes, features and their releases, keys, collections, teams, budgets,
// limits); operators change some of them at run time (labels move,
// releases are created, keys rotated or revoked). Declared remembers, for
// each object a file declared, a digest of the declaration as last
// applied, so applying a file again can tell an object the file changed
// from one only an operator did:
//
//   - an object new to the state is added as the file has it, labels
//     included (labels come from a file only when a feature is created);
//   - an object whose declaration is the one last applied is left alone,
//     with whatever operators did to it;
//   - an object whose declaration changed takes the file's version,
//     keeping what is runtime state: a feature keeps its labels and the
//     releases operators created, and a release version may not change;
//   - an object the file does not declare is left alone, unless an earlier
//     file declared it and the apply prunes;
//   - a key rotated or revoked through the API is the API's from then on
//     (it leaves Declared), and a file that still lists it leaves it be.
//
// The declaration of a feature leaves out its labels, so a file never
// moves a label after the feature exists.

// declKind is one kind of declared object, named in Declared as kind/name.
type declKind struct {
	name string
	// apply declares the file's objects of this kind onto next.
	apply func(d *declaration) error
}

var declKinds = []declKind{
	{"providers", func(d *declaration) error {
		return declareList(d, "providers", &d.next.Providers, d.file.Providers, func(p config.Provider) string { return p.Name }, same, replace)
	}},
	{"models", func(d *declaration) error {
		return declareList(d, "models", &d.next.Models, d.file.Models, func(m config.Model) string { return m.Name }, same, replace)
	}},
	{"routes", func(d *declaration) error {
		return declareList(d, "routes", &d.next.Routes, d.file.Routes, routeName, same, replace)
	}},
	{"collections", func(d *declaration) error {
		return declareList(d, "collections", &d.next.Collections, d.file.Collections, func(c config.Collection) string { return c.Name }, same, replace)
	}},
	{"teams", func(d *declaration) error {
		return declareList(d, "teams", &d.next.Teams, d.file.Teams, func(t config.Team) string { return t.Name }, same, replace)
	}},
	{"budgets", func(d *declaration) error {
		return declareList(d, "budgets", &d.next.Budgets, d.file.Budgets, func(b config.Budget) string { return b.Name }, same, replace)
	}},
	{"keys", func(d *declaration) error {
		return declareList(d, "keys", &d.next.Keys, d.file.Keys, func(k config.Key) string { return k.Name }, same, mergeKey)
	}},
	{"features", func(d *declaration) error {
		return declareList(d, "features", &d.next.Features, d.file.Features, featureName, featureDeclaration, d.mergeFeature)
	}},
}

// declaration is one file being declared onto the state.
type declaration struct {
	tx      *txn
	records int // audit records written; past maxDeclRecords, only counted
	file    config.Config
	next    *config.Config
	prev    map[string]string // Declared before
	now     map[string]string // Declared after
	prune   bool
	legacy  bool // the state predates Declared: everything in it counts as declared
}

// maxDeclRecords bounds the audit records of one apply, one per changed
// object, so a large file does not push every other change out of the
// bounded audit log; the rest are counted in one more.
const maxDeclRecords = 50

func (d *declaration) record(key string, before, after any, reason string) {
	d.records++
	if d.records <= maxDeclRecords {
		d.tx.record(key, before, after, reason)
	}
}

// declareConfig applies a configuration file as a declaration (see above).
// force, when set, is the reason an apply may remove every provider,
// feature or key; it goes to the audit log.
func declareConfig(tx *txn, file config.Config, prune bool, force string) error {
	if file.DeclaresNothing() {
		return fmt.Errorf("%w: the configuration declares nothing (no providers, models, routes, features, keys, collections, teams, budgets or limits); refusing to apply it", ErrInvalid)
	}
	next := tx.next.Config // a copy: lists are replaced, never written into
	d := &declaration{tx: tx, file: file, next: &next, prev: tx.next.Declared, now: maps.Clone(tx.next.Declared), prune: prune}
	if d.prev == nil {
		d.legacy, d.now = true, map[string]string{}
	}
	for _, k := range declKinds {
		if err := k.apply(d); err != nil {
			return err
		}
	}
	d.declareLimits()
	before := tx.next.Config
	for _, kind := range []struct {
		name string
		had  int
		has  int
	}{{"provider", len(before.Providers), len(next.Providers)}, {"feature", len(before.Features), len(next.Features)}, {"key", len(before.Keys), len(next.Keys)}} {
		if kind.had > 0 && kind.has == 0 && force == "" {
			return fmt.Errorf("%w: this apply would remove every %s; if that is meant, force it with a reason", ErrInvalid, kind.name)
		}
	}
	if n := d.records - maxDeclRecords; n > 0 {
		tx.record("config", configSummary(before), configSummary(next), fmt.Sprintf("and %d more objects changed", n))
	}
	if force != "" {
		tx.record("config", configSummary(before), configSummary(next), "forced: "+force)
	}
	// A feature a file creates gets its labels from the file, once.
	for _, f := range next.Features {
		if _, ok := tx.next.Feature(f.Name); ok {
			continue
		}
		tx.addLabelChange(f.Name, LabelChange{Action: config.MoveApply, Label: config.LabelProduction, To: f.Labels.Production})
		if f.Labels.Canary != 0 {
			tx.addLabelChange(f.Name, LabelChange{Action: config.MoveApply, Label: config.LabelCanary, To: f.Labels.Canary, Weight: f.Labels.CanaryWeight})
		}
	}
	tx.dropHistory(next.Features)
	tx.next.Config = next
	tx.next.Declared = d.now
	return nil
}

// digest is a short hash of a declaration.
func digest(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

func same[T any](v T) any { return v }

func replace[T any](_ T, file T) (T, error) { return file, nil }

// declareList declares file's objects of one kind onto *list, which it
// replaces with a new slice only when something changed.
func declareList[T any](d *declaration, kind string, list *[]T, file []T, name func(T) string, decl func(T) any, merge func(cur, file T) (T, error)) error {
	out := *list
	changed := false
	edit := func() {
		if !changed {
			out, changed = slices.Clone(out), true
		}
	}
	inFile := map[string]bool{}
	for _, o := range file {
		n := name(o)
		key := kind + "/" + n
		inFile[n] = true
		h := digest(decl(o))
		i := slices.IndexFunc(out, func(x T) bool { return name(x) == n })
		prev, declared := d.prev[key]
		switch {
		case i < 0:
			edit()
			out = append(out, o)
			d.record(key, nil, o, "")
		case declared && prev == h:
			// The file did not change it; what operators did stays.
		case !declared && !d.legacy:
			// The API's since it was rotated or revoked, or made there.
			continue
		default:
			m, err := merge(out[i], o)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			if digest(m) != digest(out[i]) {
				edit()
				d.record(key, out[i], m, "")
				out[i] = m
			}
		}
		d.now[key] = h
	}
	prefix := kind + "/"
	var unlisted []string
	if d.legacy {
		for _, o := range out {
			if !inFile[name(o)] {
				unlisted = append(unlisted, name(o))
			}
		}
	} else {
		for key := range d.prev {
			if n, ok := strings.CutPrefix(key, prefix); ok && !inFile[n] {
				unlisted = append(unlisted, n)
			}
		}
		slices.Sort(unlisted)
	}
	for _, n := range unlisted {
		key := prefix + n
		if !d.prune {
			d.now[key] = d.prev[key] // still the file's to remove with prune
			continue
		}
		delete(d.now, key)
		i := slices.IndexFunc(out, func(x T) bool { return name(x) == n })
		if i < 0 {
			continue
		}
		edit()
		d.record(key, out[i], nil, "pruned")
		out = slices.Delete(out, i, i+1)
	}
	if changed {
		*list = out
		d.tx.configChanged = true
	}
	return nil
}

// featureDeclaration is what a file declares of a feature: all of it but
// its labels.
func featureDeclaration(f config.Feature) any {
	f.Labels = config.Labels{}
	return f
}

// mergeFeature takes the file's feature over cur, keeping cur's labels and
// the releases the file does not list. A release the file lists must be
// the same as cur's of that version: releases are immutable.
func (d *declaration) mergeFeature(cur, file config.Feature) (config.Feature, error) {
	out := file
	out.Labels = cur.Labels
	out.Releases = slices.Clone(cur.Releases)
	for _, r := range file.Releases {
		if or, ok := cur.Release(r.Version); ok {
			if or.Hash() != r.Hash() {
				return cur, fmt.Errorf("%w: release %s differs from the one already applied; releases are immutable, add a new version", ErrConflict, config.ReleaseID(file.Name, r.Version))
			}
			continue
		}
		out.Releases = append(out.Releases, r)
	}
	slices.SortFunc(out.Releases, func(a, b config.Release) int { return a.Version - b.Version })
	return out, nil
}

// mergeKey takes the file's key over cur; a key revoked stays revoked.
func mergeKey(cur, file config.Key) (config.Key, error) {
	file.Revoked = file.Revoked || cur.Revoked
	return file, nil
}

// declareLimits declares the file's limits when it sets any.
func (d *declaration) declareLimits() {
	if reflect.ValueOf(d.file.Limits).IsZero() {
		if p, ok := d.prev["limits"]; ok {
			d.now["limits"] = p
		}
		return
	}
	h := digest(d.file.Limits)
	if p, ok := d.prev["limits"]; !ok || p != h || d.legacy {
		if digest(d.next.Limits) != h {
			d.record("limits", d.next.Limits, d.file.Limits, "")
			d.next.Limits = d.file.Limits
			d.tx.configChanged = true
		}
	}
	d.now["limits"] = h
}

// released gives an object to the API: a runtime change to a key the file
// declared makes it the API's, so the file no longer changes it.
func (tx *txn) released(key string) {
	if _, ok := tx.next.Declared[key]; !ok {
		return
	}
	m := maps.Clone(tx.next.Declared)
	delete(m, key)
	tx.next.Declared = m
}
