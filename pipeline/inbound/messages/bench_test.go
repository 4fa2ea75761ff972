package messages

import (
	"testing"

	"gantry/pipeline/chat"
)

// BenchmarkStream measures the translation of one streamed answer of 200
// text chunks into Messages API events, the work the gateway adds per
// chunk on /v1/messages.
func BenchmarkStream(b *testing.B) {
	word := " word"
	chunk := chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &word}}}}
	b.ReportAllocs()
	for b.Loop() {
		st := NewStream("c1", "m")
		n := 0
		for range 200 {
			for _, e := range st.Chunk(&chunk) {
				n += len(e.Bytes())
			}
		}
		for _, e := range st.Finish("stop", chat.Usage{PromptTokens: 10, CompletionTokens: 200}) {
			n += len(e.Bytes())
		}
	}
}

// BenchmarkDecode measures decoding a request with a system prompt, a
// tool and a few turns.
func BenchmarkDecode(b *testing.B) {
	body := []byte(`{"model":"m","max_tokens":300,"system":"Answer briefly.","tools":[{"name":"track_order","input_schema":{"type":"object","properties":{"id":{"type":"string"}}}}],
		"messages":[{"role":"user","content":"Where is A-1001?"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"track_order","input":{"id":"A-1001"}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"shipped"}]}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
