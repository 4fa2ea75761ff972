package pipeline

import (
	"reflect"
	"testing"

	"gantry/pipeline/chat"
)

func TestEmbeddingsEntryRoundTrip(t *testing.T) {
	in := &chat.EmbeddingResponse{Object: chat.ObjectList, Model: "text-embedding-3-small",
		Usage: &chat.EmbeddingUsage{PromptTokens: 12, TotalTokens: 12},
		Data:  []chat.Embedding{{Index: 0, Vector: []float32{0.5, -1.25, 3e-8}}, {Index: 1, Vector: []float32{}}}}
	out, err := decodeEmbeddings(encodeEmbeddings(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
	b := encodeEmbeddings(in)
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(append([]byte{}, b...), 0), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if _, err := decodeEmbeddings(bad); err == nil {
			t.Fatalf("decoded a malformed entry %x", bad)
		}
	}
}

func FuzzDecodeEmbeddings(f *testing.F) {
	f.Add(encodeEmbeddings(&chat.EmbeddingResponse{Model: "m", Usage: &chat.EmbeddingUsage{PromptTokens: 3},
		Data: []chat.Embedding{{Index: 0, Vector: []float32{1, 2}}}}))
	f.Add([]byte{1, 'm', 0, 1, 0, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeEmbeddings(b)
		if err != nil {
			return
		}
		// What decodes survives a round trip unchanged, compared as bytes
		// so that NaN values compare too.
		canon := encodeEmbeddings(r)
		again, err := decodeEmbeddings(canon)
		if err != nil || string(encodeEmbeddings(again)) != string(canon) || again.Model != r.Model || len(again.Data) != len(r.Data) {
			t.Fatalf("%x decoded to %+v, which comes back as %+v, %v", b, r, again, err)
		}
	})
}
