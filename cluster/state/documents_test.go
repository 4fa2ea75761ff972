package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gantry/cluster/command"
	"gantry/config"
)

// withCollections is seeded plus a collection whose documents the cluster
// keeps (help) and one served by an external store (ext).
func withCollections(t *testing.T) *State {
	t.Helper()
	s := seeded(t)
	cfg := s.Config
	cfg.Collections = []config.Collection{{Name: "help"}, {Name: "kb"}, {Name: "ext", URL: "http://127.0.0.1:9/search"}}
	s, _ = mustApply(t, s, 2, mk(t, command.ApplyConfig, command.Config{Config: cfg}, "collections"))
	return s
}

func sum(body string) string {
	h := sha256.Sum256([]byte(body))
	return "sha256:" + hex.EncodeToString(h[:])
}

func ref(id, body string) command.DocumentRef {
	return command.DocumentRef{ID: id, Hash: sum(body), Size: int64(len(body))}
}

func putDocs(collection string, refs ...command.DocumentRef) command.Documents {
	return command.Documents{Collection: collection, Origin: "n1", Documents: refs}
}

func TestDocumentManifest(t *testing.T) {
	type step struct {
		name    string
		typ     command.Type
		payload any
		wantErr error
		check   func(t *testing.T, s *State)
	}
	wantDocs := func(collection string, n int, bytes int64) func(*testing.T, *State) {
		return func(t *testing.T, s *State) {
			t.Helper()
			m := s.Manifest(collection)
			if len(m.Documents) != n || m.Bytes != bytes {
				t.Fatalf("%s holds %d documents of %d bytes, want %d of %d", collection, len(m.Documents), m.Bytes, n, bytes)
			}
		}
	}
	steps := []step{
		{name: "unknown collection", typ: command.PutDocuments, payload: putDocs("nope", ref("a", "alpha")), wantErr: ErrNotFound},
		{name: "external collection", typ: command.PutDocuments, payload: putDocs("ext", ref("a", "alpha")), wantErr: ErrInvalid},
		{name: "no documents", typ: command.PutDocuments, payload: putDocs("help"), wantErr: ErrInvalid},
		{name: "bad hash", typ: command.PutDocuments, payload: putDocs("help", command.DocumentRef{ID: "a", Hash: "sha256:XYZ", Size: 5}), wantErr: ErrInvalid},
		{name: "uppercase hash", typ: command.PutDocuments, payload: putDocs("help", command.DocumentRef{ID: "a", Hash: strings.ToUpper(sum("a")), Size: 5}), wantErr: ErrInvalid},
		{name: "bad id", typ: command.PutDocuments, payload: putDocs("help", ref("../etc/passwd", "alpha")), wantErr: ErrInvalid},
		{name: "empty body", typ: command.PutDocuments, payload: putDocs("help", command.DocumentRef{ID: "a", Hash: sum(""), Size: 0}), wantErr: ErrInvalid},
		{name: "body over the limit", typ: command.PutDocuments, payload: putDocs("help", command.DocumentRef{ID: "a", Hash: sum("a"), Size: MaxDocumentBytes + 1}), wantErr: ErrInvalid},
		{name: "one id twice", typ: command.PutDocuments, payload: putDocs("help", ref("a", "alpha"), ref("a", "beta")), wantErr: ErrInvalid},
		{name: "an id shaped like a key", typ: command.PutDocuments, payload: putDocs("help", ref("sk-proj-abcdefghijklmnopqrstuvwx", "alpha")), wantErr: ErrInvalid},
		{name: "origin too long", typ: command.PutDocuments, payload: command.Documents{Collection: "help", Origin: strings.Repeat("n", 65), Documents: []command.DocumentRef{ref("a", "alpha")}}, wantErr: ErrInvalid},
		{name: "put two", typ: command.PutDocuments, payload: putDocs("help", ref("a", "alpha"), ref("guides/b", "bravo!")),
			check: func(t *testing.T, s *State) {
				wantDocs("help", 2, 11)(t, s)
				m := s.Manifest("help")
				if got := m.Documents["guides/b"]; got.Hash != sum("bravo!") || got.Size != 6 || got.Origin != "n1" {
					t.Fatalf("guides/b = %+v", got)
				}
				if m.Index != s.Index {
					t.Fatalf("manifest index %d, want the command's %d", m.Index, s.Index)
				}
				a := s.Audit()
				if last := a[len(a)-1]; last.Target != "collection/help" || last.After != "documents=2 bytes=11" || !strings.Contains(last.Reason, "a, guides/b") {
					t.Fatalf("audit %+v", last)
				}
			}},
		{name: "the same bodies again change nothing", typ: command.PutDocuments, payload: putDocs("help", ref("a", "alpha")),
			check: func(t *testing.T, s *State) {
				if m := s.Manifest("help"); m.Index == s.Index {
					t.Fatalf("manifest index moved to %d for an unchanged document", m.Index)
				}
			}},
		{name: "replace one", typ: command.PutDocuments, payload: putDocs("help", ref("a", "alpha, longer")), check: wantDocs("help", 2, 19)},
		{name: "another collection", typ: command.PutDocuments, payload: putDocs("kb", ref("a", "alpha")), check: wantDocs("kb", 1, 5)},
		{name: "delete unknown refuses the whole command", typ: command.DeleteDocuments, payload: command.DocumentIDs{Collection: "help", IDs: []string{"a", "zzz"}}, wantErr: ErrNotFound},
		{name: "delete in unknown collection", typ: command.DeleteDocuments, payload: command.DocumentIDs{Collection: "nope", IDs: []string{"a"}}, wantErr: ErrNotFound},
		{name: "delete nothing", typ: command.DeleteDocuments, payload: command.DocumentIDs{Collection: "help"}, wantErr: ErrInvalid},
		{name: "delete one, named twice", typ: command.DeleteDocuments, payload: command.DocumentIDs{Collection: "help", IDs: []string{"a", "a"}}, check: wantDocs("help", 1, 6)},
		{name: "delete the last", typ: command.DeleteDocuments, payload: command.DocumentIDs{Collection: "help", IDs: []string{"guides/b"}},
			check: func(t *testing.T, s *State) {
				if m, ok := s.Documents["help"]; !ok || len(m.Documents) != 0 || m.Index != s.Index {
					t.Fatalf("emptied manifest %+v (kept %v); want it kept, empty, at the command's index %d", m, ok, s.Index)
				}
				wantDocs("kb", 1, 5)(t, s)
			}},
	}
	s := withCollections(t)
	for i, st := range steps {
		index := uint64(100 + i)
		next, _, err := s.Apply(index, mk(t, st.typ, st.payload, fmt.Sprintf("req-%d", i)))
		if st.wantErr != nil {
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
			}
			if next != s {
				t.Fatalf("%s: a refused command changed the state", st.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		s = next
		if st.check != nil {
			st.check(t, s)
		}
	}
}

func TestDocumentBounds(t *testing.T) {
	s := withCollections(t)
	refs := make([]command.DocumentRef, MaxDocuments)
	for i := range refs {
		refs[i] = command.DocumentRef{ID: fmt.Sprintf("d%05d", i), Hash: sum(fmt.Sprint(i)), Size: 100}
	}
	s, _ = mustApply(t, s, 10, mk(t, command.PutDocuments, putDocs("help", refs...), "full"))
	_, _, err := s.Apply(11, mk(t, command.PutDocuments, putDocs("help", ref("one-more", "x")), "over"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "10000") {
		t.Fatalf("document %d of a collection: %v, want refused naming the limit", MaxDocuments+1, err)
	}
	// Replacing a document of a full collection is fine.
	s, _ = mustApply(t, s, 12, mk(t, command.PutDocuments, putDocs("help", ref("d00000", "new body")), "replace"))

	// Total bytes over all collections.
	big := make([]command.DocumentRef, 0, 300)
	var total int64 = s.DocumentsBytes()
	for i := 0; total+MaxDocumentBytes <= MaxDocumentsBytes; i++ {
		big = append(big, command.DocumentRef{ID: fmt.Sprintf("big-%d", i), Hash: sum(fmt.Sprint("big", i)), Size: MaxDocumentBytes})
		total += MaxDocumentBytes
	}
	s, _ = mustApply(t, s, 13, mk(t, command.PutDocuments, putDocs("kb", big...), "big"))
	room := MaxDocumentsBytes - s.DocumentsBytes()
	_, _, err = s.Apply(14, mk(t, command.PutDocuments, putDocs("kb", command.DocumentRef{ID: "last", Hash: sum("last"), Size: room + 1}), "too-big"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "bytes of documents") {
		t.Fatalf("a document past the total: %v, want refused", err)
	}
	s, _ = mustApply(t, s, 15, mk(t, command.PutDocuments, putDocs("kb", command.DocumentRef{ID: "last", Hash: sum("last"), Size: room}), "fits"))
	if got := s.DocumentsBytes(); got != MaxDocumentsBytes {
		t.Fatalf("total %d, want exactly the limit %d", got, MaxDocumentsBytes)
	}
}

func TestManifestGoesWithItsCollection(t *testing.T) {
	s := withCollections(t)
	s, _ = mustApply(t, s, 10, mk(t, command.PutDocuments, putDocs("help", ref("a", "alpha")), "help"))
	s, _ = mustApply(t, s, 11, mk(t, command.PutDocuments, putDocs("kb", ref("a", "alpha")), "kb"))

	cfg := s.Config
	cfg.Collections = []config.Collection{{Name: "help", URL: "http://127.0.0.1:9/search"}, {Name: "ext", URL: "http://127.0.0.1:9/search"}}
	s, _ = mustApply(t, s, 12, mk(t, command.ApplyConfig, command.Config{Config: cfg, Prune: true}, "drop"))
	if len(s.Documents) != 0 {
		t.Fatalf("manifests %v survive a configuration without their collections (help external now, kb gone)", s.Documents)
	}
	// Unrelated commands leave manifests alone.
	s, _ = mustApply(t, s, 13, mk(t, command.ApplyConfig, command.Config{Config: withCollections(t).Config}, "back"))
	s, _ = mustApply(t, s, 14, mk(t, command.PutDocuments, putDocs("kb", ref("a", "alpha")), "kb2"))
	s, _ = mustApply(t, s, 15, mk(t, command.PutKey, command.Key{Key: config.Key{Name: "k", Hash: hashOf("k")}}, "key"))
	if m := s.Manifest("kb"); len(m.Documents) != 1 || m.Index != 14 {
		t.Fatalf("kb manifest %+v after a key change, want its one document at index 14", m)
	}
}

func TestManifestSnapshot(t *testing.T) {
	s := withCollections(t)
	encode := func(s *State) []byte {
		t.Helper()
		var buf bytes.Buffer
		if err := s.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	if b := encode(s); !bytes.HasPrefix(b, []byte(`{"format":1,`)) {
		t.Fatalf("a state without documents encodes as %.20s, want format 1 for agents that predate them", b)
	}
	s, _ = mustApply(t, s, 10, mk(t, command.PutDocuments, putDocs("help", ref("a", "alpha"), ref("b", "bravo")), "docs"))
	b := encode(s)
	if !bytes.HasPrefix(b, []byte(`{"format":2,`)) {
		t.Fatalf("a state with documents encodes as %.20s, want format 2", b)
	}
	got, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != s.Hash() || len(got.Manifest("help").Documents) != 2 {
		t.Fatalf("restored manifest %+v, hash equal %v", got.Manifest("help"), got.Hash() == s.Hash())
	}

	var w map[string]any
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	for name, corrupt := range map[string]func(m map[string]any){
		"sizes do not add up": func(m map[string]any) { m["bytes"] = 1 },
		"bad hash": func(m map[string]any) {
			m["documents"].(map[string]any)["a"].(map[string]any)["hash"] = "md5:x"
		},
		"bad id": func(m map[string]any) {
			docs := m["documents"].(map[string]any)
			docs["../a"] = docs["a"]
			delete(docs, "a")
		},
	} {
		var c map[string]any
		json.Unmarshal(b, &c)
		corrupt(c["documents"].(map[string]any)["help"].(map[string]any))
		raw, _ := json.Marshal(c)
		if _, err := Decode(bytes.NewReader(raw)); err == nil {
			t.Fatalf("%s: a corrupt manifest was restored", name)
		}
	}
}

// FuzzDocumentCommands applies arbitrary payloads as document commands. The
// state machine must refuse bad ones with ErrInvalid or ErrNotFound and
// leave the state as it was; whatever it accepts keeps the bounds and
// survives a snapshot.
func FuzzDocumentCommands(f *testing.F) {
	seed := func(v any) []byte {
		b, _ := json.Marshal(v)
		return b
	}
	f.Add(seed(putDocs("help", ref("a", "alpha"), ref("b/c", "bravo"))), false)
	f.Add(seed(putDocs("help", command.DocumentRef{ID: "a", Hash: sum("a"), Size: MaxDocumentBytes + 1})), false)
	f.Add(seed(command.DocumentIDs{Collection: "help", IDs: []string{"a"}}), true)
	f.Add([]byte(`{"collection":"help","documents":[{"id":"a","hash":null,"size":-1}]}`), false)
	f.Add([]byte(`{"collection":"help","documents":{}}`), false)
	f.Add([]byte(`{"collection":"help","ids":["a","a","b"]}`), true)
	f.Add([]byte(`[]`), true)
	f.Fuzz(func(t *testing.T, payload []byte, del bool) {
		s := withCollections(t)
		s, _ = mustApply(t, s, 10, mk(t, command.PutDocuments, putDocs("help", ref("a", "alpha"), ref("b", "bravo")), "base"))
		typ := command.PutDocuments
		if del {
			typ = command.DeleteDocuments
		}
		env := command.Envelope{Type: typ, Version: 1, RequestID: "fuzz", Actor: "user:fuzz", Time: t0, Payload: payload}
		next, _, err := s.Apply(11, env)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotFound) {
				t.Fatalf("error %v wraps neither ErrInvalid nor ErrNotFound", err)
			}
			if next != s {
				t.Fatal("a refused command changed the state")
			}
			return
		}
		if err := checkManifests(next.Documents); err != nil {
			t.Fatalf("accepted a command that breaks the bounds: %v", err)
		}
		var buf bytes.Buffer
		if err := next.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := Decode(&buf)
		if err != nil {
			t.Fatalf("the accepted state does not restore: %v", err)
		}
		if back.Hash() != next.Hash() {
			t.Fatal("the restored state differs")
		}
	})
}
