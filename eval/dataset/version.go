package dataset

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Bounds of what the cluster keeps of datasets.
const (
	// MaxVersions is how many versions of one dataset are kept; older
	// ones give way, and a comparison that names one must rerun.
	MaxVersions = 8
	// MaxDatasets bounds the datasets of a cluster.
	MaxDatasets = 64
)

// Version is one pushed content of a dataset.
type Version struct {
	Version int       `json:"version"`
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
	Dataset Dataset   `json:"dataset"`
}

// History is the kept versions of one dataset, oldest first. It is
// immutable: Push returns a new History.
type History []Version

// Latest is the newest version.
func (h History) Latest() (Version, bool) {
	if len(h) == 0 {
		return Version{}, false
	}
	return h[len(h)-1], true
}

// Get finds version v.
func (h History) Get(v int) (Version, bool) {
	i := slices.IndexFunc(h, func(x Version) bool { return x.Version == v })
	if i < 0 {
		return Version{}, false
	}
	return h[i], true
}

// Push records d at time now (the command's time, so every replica agrees).
// Content equal to the latest version's makes no new version: the latest
// is returned with changed false. Otherwise the new version numbers one
// past the latest, and versions past MaxVersions give way, oldest first.
func (h History) Push(d Dataset, now time.Time) (next History, v Version, changed bool, err error) {
	if err := d.Check(); err != nil {
		return h, Version{}, false, err
	}
	hash := d.Hash()
	latest, ok := h.Latest()
	if ok && latest.Dataset.Name != d.Name {
		return h, Version{}, false, fmt.Errorf("dataset %q pushed into the history of %q", d.Name, latest.Dataset.Name)
	}
	if ok && latest.Hash == hash {
		return h, latest, false, nil
	}
	v = Version{Version: latest.Version + 1, Hash: hash, Created: now.UTC(), Dataset: d}
	keep := h
	if len(keep) >= MaxVersions {
		keep = keep[len(keep)-MaxVersions+1:]
	}
	next = append(slices.Clone(keep), v)
	return next, v, true, nil
}

// Check validates a decoded history: versions ascending, within bounds,
// each dataset valid and hashing to its recorded hash.
func (h History) Check() error {
	if len(h) > MaxVersions {
		return fmt.Errorf("%d versions, more than %d", len(h), MaxVersions)
	}
	for i, v := range h {
		if v.Version < 1 || (i > 0 && v.Version <= h[i-1].Version) {
			return fmt.Errorf("version %d out of order", v.Version)
		}
		if i > 0 && v.Dataset.Name != h[0].Dataset.Name {
			return fmt.Errorf("version %d is of dataset %q, not %q", v.Version, v.Dataset.Name, h[0].Dataset.Name)
		}
		if err := v.Dataset.Check(); err != nil {
			return fmt.Errorf("version %d: %w", v.Version, err)
		}
		if got := v.Dataset.Hash(); got != v.Hash {
			return fmt.Errorf("version %d hashes to %s, recorded as %s", v.Version, got, v.Hash)
		}
	}
	return nil
}

// Catalog is every dataset of a cluster by name. It is immutable: Push
// returns a new Catalog sharing what did not change.
type Catalog map[string]History

// Push records d in its history; see History.Push. A new dataset beyond
// MaxDatasets is refused.
func (c Catalog) Push(d Dataset, now time.Time) (next Catalog, v Version, changed bool, err error) {
	h, known := c[d.Name]
	if !known && len(c) >= MaxDatasets {
		return c, Version{}, false, fmt.Errorf("%d datasets already, the limit", MaxDatasets)
	}
	nh, v, changed, err := h.Push(d, now)
	if err != nil || !changed {
		return c, v, changed, err
	}
	next = maps.Clone(c)
	if next == nil {
		next = Catalog{}
	}
	next[d.Name] = nh
	return next, v, true, nil
}

// Delete returns the catalog without the dataset name.
func (c Catalog) Delete(name string) Catalog {
	if _, ok := c[name]; !ok {
		return c
	}
	next := maps.Clone(c)
	delete(next, name)
	return next
}

// Check validates a decoded catalog.
func (c Catalog) Check() error {
	if len(c) > MaxDatasets {
		return fmt.Errorf("%d datasets, more than %d", len(c), MaxDatasets)
	}
	for name, h := range c {
		if len(h) == 0 {
			return fmt.Errorf("dataset %q has no versions", name)
		}
		if h[0].Dataset.Name != name {
			return fmt.Errorf("dataset %q holds versions of %q", name, h[0].Dataset.Name)
		}
		if err := h.Check(); err != nil {
			return fmt.Errorf("dataset %q: %w", name, err)
		}
	}
	return nil
}
