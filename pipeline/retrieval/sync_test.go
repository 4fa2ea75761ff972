package retrieval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"gantry/config"
	"gantry/pipeline/retrieval/blobs"
)

// bodies is an in-memory blob store for Sync: the manifest (id -> hash) of
// docs and a loader over their encoded bodies.
type bodies map[string][]byte

func manifestOf(t *testing.T, docs []Document) (map[string]string, bodies) {
	t.Helper()
	want, bs := map[string]string{}, bodies{}
	for _, d := range docs {
		b, err := EncodeBody(d)
		if err != nil {
			t.Fatal(err)
		}
		h := blobs.Sum(b)
		want[d.ID], bs[h] = h, b
	}
	return want, bs
}

var errMissing = errors.New("no such body here")

func (bs bodies) load(id, hash string) (Document, error) {
	b, ok := bs[hash]
	if !ok {
		return Document{}, errMissing
	}
	return DecodeBody(id, b)
}

func sameResults(t *testing.T, what string, a, b []Result) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d results against %d", what, len(a), len(b))
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Score != b[i].Score || a[i].Index != b[i].Index {
			t.Fatalf("%s: result %d is %s %v %s against %s %v %s", what, i, a[i].ID, a[i].Score, a[i].Index, b[i].ID, b[i].Score, b[i].Index)
		}
	}
}

// Two agents end up with the same documents by different roads: one takes
// the whole collection at once, the other took it piece by piece over
// weeks, with replacements and deletions on the way, and bleve laid out
// its segments differently. Both must answer every question with the same
// chunks, scores and index version.
func TestSameDocumentsScoreAlikeWhateverTheHistory(t *testing.T) {
	ctx := context.Background()
	docs := corpus(t)
	rules := config.Chunking{SizeTokens: 96, Overlap: 8, Markdown: true}
	fresh := buildIndex(t, openStore(t, t.TempDir()), rules, docs)

	ix, err := openStore(t, t.TempDir()).Index(ctx, "help", rules)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(docs) - 1; i >= 0; i-- {
		d := docs[i]
		if i%3 == 0 {
			// An earlier draft, replaced later.
			draft := d
			draft.Text = "# Draft\n\n" + strings.Repeat("placeholder words about thermostats and accounts. ", 30)
			if err := ix.Add(ctx, draft); err != nil {
				t.Fatal(err)
			}
		}
		if err := ix.Add(ctx, d, Document{ID: fmt.Sprintf("scratch-%d", i), Text: scratch(i)}); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			if err := ix.Compact(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range docs {
		if err := ix.Delete(ctx, fmt.Sprintf("scratch-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if fresh.Version() != ix.Version() {
		t.Fatalf("versions %s and %s for the same documents", fresh.Version(), ix.Version())
	}
	for _, q := range questions(t) {
		a, err := fresh.Retrieve(ctx, Query{Text: q.text, TopK: 5})
		if err != nil {
			t.Fatal(err)
		}
		b, err := ix.Retrieve(ctx, Query{Text: q.text, TopK: 5, Filters: nil})
		if err != nil {
			t.Fatal(err)
		}
		sameResults(t, q.text, a, b)
		a, _ = fresh.Retrieve(ctx, Query{Text: q.text, TopK: 3, Filters: map[string]string{"category": "account"}})
		b, _ = ix.Retrieve(ctx, Query{Text: q.text, TopK: 3, Filters: map[string]string{"category": "account"}})
		sameResults(t, q.text+" (filtered)", a, b)
	}
}

// scratch is a note with words no other document has, which bleve's own
// statistics would go on counting after the note is deleted.
func scratch(i int) string {
	var b strings.Builder
	b.WriteString("temporary note on passwords, refunds and batteries")
	for j := range 40 {
		fmt.Fprintf(&b, " scratchword%dx%d", i, j)
	}
	return b.String()
}

// Chunks that tie at the cut are kept by id, whatever order they were
// written in.
func TestTieAtTheCutIsOrderedByID(t *testing.T) {
	ctx := context.Background()
	var docs []Document
	for _, id := range []string{"m", "c", "x", "a", "q"} {
		docs = append(docs, Document{ID: id, Text: "The boiler pressure gauge should read between one and two bar."})
	}
	docs = append(docs, Document{ID: "other", Text: "Bleed the radiators when the boiler pressure is high."})
	reversed := slices.Clone(docs)
	slices.Reverse(reversed)
	for _, order := range [][]Document{docs, reversed} {
		ix, err := openStore(t, t.TempDir()).Index(ctx, "help", config.Chunking{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range order {
			if err := ix.Add(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		res, err := ix.Retrieve(ctx, Query{Text: "boiler pressure gauge bar", TopK: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 || res[0].ID != "a#0" || res[1].ID != "c#0" || res[0].Score != res[1].Score {
			t.Fatalf("top 2 of five tied chunks: %v, want a#0 and c#0", res)
		}
	}
}

func TestSync(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := openStore(t, dir)
	rules := config.Chunking{SizeTokens: 128, Markdown: true}
	ix, err := store.Index(ctx, "help", rules)
	if err != nil {
		t.Fatal(err)
	}
	docs := corpus(t)
	want, bs := manifestOf(t, docs)

	// One body is not here yet: the rest is served, the manifest is not
	// applied.
	lacking := docs[3]
	held := bs[want[lacking.ID]]
	delete(bs, want[lacking.ID])
	res, err := ix.Sync(ctx, 7, want, bs.load)
	if err != nil {
		t.Fatal(err)
	}
	if res.Indexed != len(docs)-1 || res.Missing != 1 || ix.State().Applied != 0 {
		t.Fatalf("sync without one body: %+v, applied %d; want all but one indexed and nothing applied", res, ix.State().Applied)
	}
	bs[want[lacking.ID]] = held
	if res, err = ix.Sync(ctx, 7, want, bs.load); err != nil || res.Indexed != 1 || res.Missing != 0 {
		t.Fatalf("second sync: %+v %v; want the one late body indexed", res, err)
	}
	if st := ix.State(); st.Applied != 7 || st.Documents != len(docs) {
		t.Fatalf("state %+v, want manifest 7 applied with %d documents", st, len(docs))
	}
	fresh := buildIndex(t, openStore(t, t.TempDir()), rules, docs)
	if ix.Version() != fresh.Version() {
		t.Fatalf("synced version %s, built version %s", ix.Version(), fresh.Version())
	}

	// Nothing changed: nothing is written.
	before := ix.Version()
	if res, err := ix.Sync(ctx, 7, want, func(id, hash string) (Document, error) {
		t.Fatalf("loaded %s for an unchanged manifest", id)
		return Document{}, nil
	}); err != nil || res != (SyncResult{}) {
		t.Fatalf("unchanged sync: %+v %v", res, err)
	}

	// A replaced body, a removed document and one these rules refuse.
	changed := docs[0]
	changed.Text = "# Moved\n\nThe thermostat manual moved to the printed booklet."
	b, err := EncodeBody(changed)
	if err != nil {
		t.Fatal(err)
	}
	want[changed.ID], bs[blobs.Sum(b)] = blobs.Sum(b), b
	delete(want, docs[1].ID)
	tooMany := strings.Repeat("word word word word word word word word\n", 1<<14) // at 4 tokens a chunk, more chunks than a document may have
	ixTiny, err := store.Index(ctx, "help", config.Chunking{SizeTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	bad := Document{ID: "huge", Text: tooMany}
	if b, err = EncodeBody(bad); err != nil {
		t.Fatal(err)
	}
	want[bad.ID], bs[blobs.Sum(b)] = blobs.Sum(b), b
	if res, err = ix.Sync(ctx, 9, want, bs.load); err != nil || res.Indexed != 2 || res.Removed != 1 || res.Refused != 0 {
		t.Fatalf("sync of changes: %+v %v", res, err)
	}
	if ix.Version() == before {
		t.Fatal("version unchanged after the content changed")
	}
	got, _ := ix.Retrieve(ctx, Query{Text: "printed booklet manual", TopK: 1})
	if len(got) != 1 || got[0].Document != changed.ID {
		t.Fatalf("replaced document not served: %v", got)
	}
	if res, err = ixTiny.Sync(ctx, 9, want, bs.load); err != nil || res.Refused != 1 || ixTiny.State().Applied != 9 || ixTiny.State().Refused != 1 {
		t.Fatalf("rules that cannot cut one document: %+v %v state %+v; want it refused and the manifest applied", res, err, ixTiny.State())
	}
	if res, err = ixTiny.Sync(ctx, 9, want, bs.load); err != nil || res != (SyncResult{}) {
		t.Fatalf("a refused document is tried again with the same body: %+v %v", res, err)
	}

	// Reopened, the index knows what it holds and what it applied.
	state := ix.State()
	store.Close()
	ix, err = openStore(t, dir).Index(ctx, "help", rules)
	if err != nil {
		t.Fatal(err)
	}
	if ix.State() != state {
		t.Fatalf("reopened state %+v, want %+v", ix.State(), state)
	}
}

func TestIndexWithoutDocumentRecordIsRebuilt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := openStore(t, dir)
	ix := buildIndex(t, store, config.Chunking{}, corpus(t)[:3])
	// An index written before documents were kept has chunks and no record.
	if err := ix.idx.DeleteInternal([]byte(docsKey)); err != nil {
		t.Fatal(err)
	}
	store.Close()
	ix, err := openStore(t, dir).Index(ctx, "help", config.Chunking{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := ix.Count(); n != 0 || ix.State().Documents != 0 {
		t.Fatalf("old index kept %d chunks; want it emptied to be rebuilt from the cluster's documents", n)
	}
}

// FuzzDecodeBody reads arbitrary bytes as a body fetched from another
// agent: it is a document that passes Check, or a clear error, and a body
// that decodes encodes to one that decodes to the same document.
func FuzzDecodeBody(f *testing.F) {
	for _, d := range []Document{
		{ID: "a", Text: "plain"},
		{ID: "a", Title: "T", Format: FormatMarkdown, Text: "# H\n\n<b>&</b>", Metadata: map[string]string{"lang": "en"}},
	} {
		b, _ := EncodeBody(d)
		f.Add(b)
	}
	f.Add([]byte(`{"text":"a"} {"text":"b"}`))
	f.Add([]byte(`{"text":"a","id":"x"}`))
	f.Add([]byte(`{"text":"\u0000"}`))
	f.Add([]byte(`{"text":"x","metadata":{"../k":"v"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeBody("doc", b)
		if err != nil {
			if !errors.Is(err, ErrDocument) {
				t.Fatalf("error %v does not wrap ErrDocument", err)
			}
			return
		}
		if err := d.Check(); err != nil {
			t.Fatalf("decoded a document that fails Check: %v", err)
		}
		enc, err := EncodeBody(d)
		if err != nil {
			t.Fatalf("a decoded document does not encode: %v", err)
		}
		again, err := DecodeBody("doc", enc)
		if err != nil || again.Text != d.Text || again.Title != d.Title || again.Format != d.Format || len(again.Metadata) != len(d.Metadata) {
			t.Fatalf("round trip changed the document: %+v -> %+v (%v)", d, again, err)
		}
	})
}
