package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/api"
	"gantry/cluster"
	"gantry/cluster/state"
	"gantry/pipeline/retrieval"
	"gantry/pipeline/retrieval/blobs"
)

// docTimings pace the document side; tests shorten them.
type docTimings struct {
	// retry is the first pause after a pass left something missing; it
	// doubles up to a minute while the pass keeps failing.
	retry time.Duration
	// gcEvery is how often bodies no manifest names are collected, and
	// gcGrace how long such a body is kept after it was last stored: an
	// upload stores its bodies before the manifest change that names them
	// commits, and a change whose outcome was unknown may commit late.
	gcEvery, gcGrace time.Duration
	// fetchTimeout bounds fetching one body from one agent.
	fetchTimeout time.Duration
}

func (t docTimings) withDefaults() docTimings {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.retry, 2*time.Second)
	def(&t.gcEvery, 5*time.Minute)
	def(&t.gcGrace, 10*time.Minute)
	def(&t.fetchTimeout, 30*time.Second)
	return t
}

// fetchWorkers is how many bodies an agent fetches at once.
const fetchWorkers = 4

// docSide is the agent's part in the cluster's collections. Uploads store
// raw bodies in its blob store; the other agents fetch them from it over
// the cluster API; and a loop of the cluster side brings every index of
// every collection (its own chunking rules and each set a release pins) to
// the collection's replicated manifest, fetching the bodies it lacks.
// Retrieval never waits for the loop: it answers from the indexes as they
// are, and the status says how far behind they are.
type docSide struct {
	log    *slog.Logger
	node   string
	blobs  *blobs.Store
	store  *retrieval.Store
	timing docTimings

	mu sync.Mutex
	// status is each hosted collection as of the last pass.
	status map[string]api.Collection
	// caughtUp is the state index at which each collection was last
	// caught up; pass is the state index of the last pass. advanced is
	// closed and replaced after every pass.
	caughtUp map[string]uint64
	pass     uint64
	advanced chan struct{}

	// kick asks the loop for a whole pass: bodies were stored that an
	// incomplete pass may have lacked.
	kick chan struct{}

	// Only the loop touches these.
	lastKey  string
	complete bool
	lastGC   time.Time

	behind, missing, manifestIndex, appliedIndex *prometheus.GaugeVec
	fetches                                      *prometheus.CounterVec
}

func newDocSide(log *slog.Logger, node, dataDir string, store *retrieval.Store, t docTimings, reg prometheus.Registerer) (*docSide, error) {
	bs, err := blobs.Open(filepath.Join(dataDir, "documents"), state.MaxDocumentBytes)
	if err != nil {
		return nil, err
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "gantry", Name: name, Help: help}, []string{"collection"})
	}
	d := &docSide{log: log, node: node, blobs: bs, store: store, timing: t.withDefaults(),
		status: map[string]api.Collection{}, caughtUp: map[string]uint64{}, advanced: make(chan struct{}), kick: make(chan struct{}, 1),
		behind: gauge("collection_behind",
			"1 while this agent's indexes of the collection do not reflect its replicated manifest; retrieval answers from them as they are."),
		missing: gauge("collection_documents_missing",
			"Document bodies of the collection's manifest this agent lacks and could not fetch from another agent yet."),
		manifestIndex: gauge("collection_manifest_index",
			"Log index of the last change of the collection's replicated manifest."),
		appliedIndex: gauge("collection_applied_index",
			"The manifest index every index of the collection on this agent reflects; equal to gantry_collection_manifest_index when caught up."),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gantry", Name: "document_fetches_total",
			Help: "Document bodies asked of other agents, by result: ok, not_found, mismatch (bytes that did not hash to what was asked) or error."}, []string{"result"}),
	}
	reg.MustRegister(d.behind, d.missing, d.manifestIndex, d.appliedIndex, d.fetches)
	return d, nil
}

// Store keeps uploaded bodies; see admin.Documents.
func (d *docSide) Store(bodies [][]byte) ([]string, error) {
	hashes, err := d.blobs.PutAll(bodies)
	select {
	case d.kick <- struct{}{}:
	default:
	}
	return hashes, err
}

// WaitIndexed returns once every index of the collection reflects the
// replicated state at index; see admin.Documents.
func (d *docSide) WaitIndexed(ctx context.Context, collection string, index uint64) error {
	for {
		d.mu.Lock()
		done := d.caughtUp[collection] >= index
		_, hosted := d.status[collection]
		gone := d.pass >= index && !hosted
		ch := d.advanced
		d.mu.Unlock()
		switch {
		case done:
			return nil
		case gone:
			return fmt.Errorf("collection %s is no longer in the configuration", collection)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Status reports every hosted collection as of the last pass.
func (d *docSide) Status() []api.Collection {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]api.Collection, 0, len(d.status))
	for _, c := range d.status {
		out = append(out, c)
	}
	return out
}

// served is what the cluster API serves to the other agents.
func (d *docSide) served() cluster.Blobs { return servedBlobs{d.blobs} }

type servedBlobs struct{ *blobs.Store }

func (s servedBlobs) Get(hash string) ([]byte, error) {
	b, err := s.Store.Get(hash)
	if err != nil && (errors.Is(err, blobs.ErrNotFound) || errors.Is(err, blobs.ErrCorrupt) || !blobs.ValidHash(hash)) {
		return nil, fmt.Errorf("%w: %w", cluster.ErrBlobNotFound, err)
	}
	return b, err
}

// load reads a body for an index's Sync. A body that is missing or damaged
// is not a refused document: it is fetched again.
func (d *docSide) load(id, hash string) (retrieval.Document, error) {
	b, err := d.blobs.Get(hash)
	if err != nil {
		return retrieval.Document{}, err
	}
	return retrieval.DecodeBody(id, b)
}

// syncDocuments runs a pass whenever the replicated state changes in a way
// that matters to collections, again after a pause (doubling up to a
// minute) while a pass leaves something missing, and every gcEvery to
// collect unused bodies, until ctx ends. Other state changes, such as
// spend batches twice a second, only confirm a complete pass.
func (r *replica) syncDocuments(ctx context.Context) {
	d := r.docs
	ch := r.Subscribe(ctx)
	gc := time.NewTicker(d.timing.gcEvery)
	defer gc.Stop()
	wait := d.timing.retry
	var retry *time.Timer
	retryDue := false
	for {
		st := r.State()
		key := syncKey(st)
		switch {
		case key == d.lastKey && (d.complete || !retryDue):
			// Nothing new for collections; one left behind waits for
			// its retry.
			d.confirm(st)
		default:
			retryDue = false
			if retry != nil {
				retry.Stop()
				retry = nil
			}
			if d.sync(ctx, r.Node, st, key) {
				wait = d.timing.retry
			} else {
				retry = time.NewTimer(wait)
				wait = min(2*wait, time.Minute)
			}
		}
		d.collect(st)
		var retryC <-chan time.Time
		if retry != nil {
			retryC = retry.C
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-retryC:
			retry, retryDue = nil, true
		case <-d.kick:
			retryDue = !d.complete
		case <-gc.C:
		}
	}
}

// syncKey changes whenever a pass could have something to do: the
// configuration (collections, releases and their chunking rules) or a
// manifest changed.
func syncKey(st *state.State) string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(st.ConfigIndex, 10))
	for _, name := range slices.Sorted(maps.Keys(st.Documents)) {
		fmt.Fprintf(&b, " %s=%d", name, st.Documents[name].Index)
	}
	return b.String()
}

// confirm records that the last pass holds for st too, since nothing that
// matters to collections changed: those caught up then are caught up with
// st.
func (d *docSide) confirm(st *state.State) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, c := range d.status {
		if c.CaughtUp {
			d.caughtUp[name] = st.Index
		}
	}
	d.pass = st.Index
	close(d.advanced)
	d.advanced = make(chan struct{})
}

// sync runs one pass over st, whose syncKey is key, and reports whether
// every collection is caught up.
func (d *docSide) sync(ctx context.Context, node *cluster.Node, st *state.State, key string) bool {
	status := map[string]api.Collection{}
	complete := true
	for _, col := range st.Config.Collections {
		if col.URL != "" {
			continue
		}
		c := d.syncCollection(ctx, node, st, col.Name)
		if ctx.Err() != nil {
			return false
		}
		status[col.Name] = c
		complete = complete && c.CaughtUp
	}
	d.mu.Lock()
	was := d.status
	d.status = status
	for name, c := range status {
		if c.CaughtUp {
			d.caughtUp[name] = st.Index
		}
	}
	for name := range d.caughtUp {
		if _, ok := status[name]; !ok {
			delete(d.caughtUp, name)
		}
	}
	d.pass = st.Index
	close(d.advanced)
	d.advanced = make(chan struct{})
	d.mu.Unlock()
	d.report(was, status)
	d.lastKey, d.complete = key, complete
	return complete
}

// syncCollection fetches the bodies of a collection's manifest this agent
// lacks and brings each of the collection's indexes to the manifest.
func (d *docSide) syncCollection(ctx context.Context, node *cluster.Node, st *state.State, name string) api.Collection {
	m := st.Manifest(name)
	c := api.Collection{Name: name, Documents: len(m.Documents), Bytes: m.Bytes, ManifestIndex: m.Index, Indexes: []api.CollectionIndex{}}
	missing, fetchErr := d.fetchMissing(ctx, node, st, m)
	c.Missing = missing
	if fetchErr != nil {
		c.Error = fetchErr.Error()
	}
	want := make(map[string]string, len(m.Documents))
	for id, e := range m.Documents {
		want[id] = e.Hash
	}
	caught := missing == 0
	for _, rules := range retrieval.RuleSets(&st.Config, name) {
		ix, err := d.store.Index(ctx, name, rules)
		if err == nil {
			_, err = ix.Sync(ctx, m.Index, want, d.load)
		}
		if err != nil {
			caught = false
			c.Error = fmt.Sprintf("index %s/%s: %v", name, rules.Hash(), err)
			if ix == nil {
				continue
			}
		}
		is := ix.State()
		c.Indexes = append(c.Indexes, api.CollectionIndex{RulesHash: rules.Hash(), Version: is.Version, Applied: is.Applied, Chunks: is.Chunks, Refused: is.Refused})
		if is.Applied < m.Index {
			caught = false
		}
	}
	c.CaughtUp = caught
	return c
}

// fetchMissing fetches the bodies of m this agent lacks, asking the agent
// that took each upload first and then the others. It returns how many
// are still missing and the last error met.
func (d *docSide) fetchMissing(ctx context.Context, node *cluster.Node, st *state.State, m state.Manifest) (int, error) {
	type job struct {
		hash   string
		size   int64
		origin string
	}
	seen := map[string]bool{}
	var jobs []job
	for _, e := range m.Documents {
		if seen[e.Hash] || d.blobs.Has(e.Hash) {
			continue
		}
		seen[e.Hash] = true
		jobs = append(jobs, job{e.Hash, e.Size, e.Origin})
	}
	if len(jobs) == 0 {
		return 0, nil
	}
	var peers []string
	for _, mem := range st.Members {
		if mem.ID != d.node && mem.HTTPAddr != "" {
			peers = append(peers, mem.ID)
		}
	}
	sort.Strings(peers)
	var (
		mu      sync.Mutex
		missing int
		lastErr error
		wg      sync.WaitGroup
	)
	work := make(chan job)
	for range min(fetchWorkers, len(jobs)) {
		wg.Go(func() {
			for j := range work {
				if err := d.fetch(ctx, node, j.hash, j.size, order(peers, j.origin)); err != nil {
					mu.Lock()
					missing++
					lastErr = err
					mu.Unlock()
				}
			}
		})
	}
	for _, j := range jobs {
		select {
		case work <- j:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		return len(jobs), ctx.Err()
	}
	return missing, lastErr
}

// order puts the origin first among the peers, if it is one of them.
func order(peers []string, origin string) []string {
	i := slices.Index(peers, origin)
	if i <= 0 {
		return peers
	}
	out := make([]string, 0, len(peers))
	out = append(out, origin)
	out = append(out, peers[:i]...)
	return append(out, peers[i+1:]...)
}

// fetch gets one body from the first peer that has it and stores it.
func (d *docSide) fetch(ctx context.Context, node *cluster.Node, hash string, size int64, peers []string) error {
	if len(peers) == 0 {
		return fmt.Errorf("body %s: no other agent to fetch it from", hash)
	}
	var errs []error
	for _, p := range peers {
		fctx, cancel := context.WithTimeout(ctx, d.timing.fetchTimeout)
		b, err := node.FetchBlob(fctx, p, hash, size)
		cancel()
		switch {
		case err == nil:
			d.fetches.WithLabelValues("ok").Inc()
			if _, err := d.blobs.Put(b); err != nil {
				return fmt.Errorf("body %s: %w", hash, err)
			}
			return nil
		case errors.Is(err, cluster.ErrBlobNotFound):
			d.fetches.WithLabelValues("not_found").Inc()
		case errors.Is(err, cluster.ErrBlobMismatch):
			d.fetches.WithLabelValues("mismatch").Inc()
			d.log.Warn("an agent answered a document body with other bytes; they were dropped", "from", p, "hash", hash, "err", err)
		default:
			d.fetches.WithLabelValues("error").Inc()
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("body %s: not fetched from any of %d agents: %w", hash, len(peers), errors.Join(errs...))
}

// report updates the metrics and logs collections that fell behind or
// caught up again.
func (d *docSide) report(was, now map[string]api.Collection) {
	for name := range was {
		if _, ok := now[name]; !ok {
			for _, g := range []*prometheus.GaugeVec{d.behind, d.missing, d.manifestIndex, d.appliedIndex} {
				g.DeleteLabelValues(name)
			}
		}
	}
	for name, c := range now {
		applied := c.ManifestIndex
		for _, ix := range c.Indexes {
			applied = min(applied, ix.Applied)
		}
		behind := 0.0
		if !c.CaughtUp {
			behind = 1
		}
		d.behind.WithLabelValues(name).Set(behind)
		d.missing.WithLabelValues(name).Set(float64(c.Missing))
		d.manifestIndex.WithLabelValues(name).Set(float64(c.ManifestIndex))
		d.appliedIndex.WithLabelValues(name).Set(float64(applied))
		before, known := was[name]
		switch {
		case !c.CaughtUp && (!known || before.CaughtUp || before.Error != c.Error):
			d.log.Warn("collection not caught up; retrieval answers from the indexes as they are", "collection", name,
				"manifest_index", c.ManifestIndex, "missing", c.Missing, "err", c.Error)
		case c.CaughtUp && known && !before.CaughtUp:
			d.log.Info("collection caught up", "collection", name, "manifest_index", c.ManifestIndex)
		}
	}
}

// collect removes bodies no manifest names, at most every gcEvery.
func (d *docSide) collect(st *state.State) {
	if time.Since(d.lastGC) < d.timing.gcEvery {
		return
	}
	d.lastGC = time.Now()
	named := map[string]bool{}
	for _, m := range st.Documents {
		for _, e := range m.Documents {
			named[e.Hash] = true
		}
	}
	n, size, err := d.blobs.Collect(func(h string) bool { return named[h] }, time.Now().Add(-d.timing.gcGrace))
	if err != nil {
		d.log.Warn("collecting unused document bodies", "err", err)
	}
	if n > 0 {
		d.log.Info("removed document bodies no collection names", "bodies", n, "bytes", size)
	}
}
