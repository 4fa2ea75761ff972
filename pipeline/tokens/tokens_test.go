package tokens

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"gantry/pipeline/chat"
)

func TestCount(t *testing.T) {
	tests := []struct {
		name   string
		legacy bool
		text   string
		want   int
	}{
		{"empty", false, "", 0},
		{"two words", false, "hello world", 2},
		// The example from OpenAI's tiktoken README.
		{"readme example cl100k", true, "tiktoken is great!", 6},
		{"readme example o200k", false, "tiktoken is great!", 6},
		{"digits split in threes", false, "1234567", 3},
		{"invalid utf-8 still counts", false, "a\xffb", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := count(encoder(tt.legacy), tt.text)
			if got != tt.want {
				t.Fatalf("count(%q): got %d, want %d", tt.text, got, tt.want)
			}
		})
	}
}

func TestCountModel(t *testing.T) {
	tests := []struct {
		model  string
		legacy bool
	}{
		{"gpt-4o-mini", false},
		{"gpt-4.1", false},
		{"gpt-4-turbo", true},
		{"gpt-3.5-turbo-0125", true},
		{"openai/gpt-4", true},
		{"ft:gpt-4-0613:acme", true},
		{"claude-sonnet-4", false},
		{"llama3", false},
	}
	for _, tt := range tests {
		if got := Legacy(tt.model); got != tt.legacy {
			t.Fatalf("Legacy(%q): got %v, want %v", tt.model, got, tt.legacy)
		}
	}
	text := "tiktoken is great!"
	if got, want := CountModel("gpt-4", text), 6; got != want {
		t.Fatalf("CountModel(gpt-4): got %d, want %d", got, want)
	}
	if got, want := CountModel("gpt-4o", text), 6; got != want {
		t.Fatalf("CountModel(gpt-4o): got %d, want %d", got, want)
	}
}

func TestCountMessages(t *testing.T) {
	args := `{"city":"Paris"}`
	tests := []struct {
		name string
		msgs []chat.Message
		want int
	}{
		{"none", nil, 0},
		{"one user message", []chat.Message{{Role: "user", Content: chat.Text("hello world")}},
			priming + perMessage + Count("user") + 2},
		{"named", []chat.Message{{Role: "user", Name: "ana", Content: chat.Text("hi")}},
			priming + perMessage + Count("user") + Count("hi") + perName + Count("ana")},
		{"tool call and result", []chat.Message{
			{Role: "assistant", ToolCalls: []chat.ToolCall{{ID: "call_1", Type: "function", Function: chat.FunctionCall{Name: "weather", Arguments: args}}}},
			{Role: "tool", ToolCallID: "call_1", Content: chat.Text("sunny")},
		}, priming + 2*perMessage + Count("assistant") + Count("weather") + Count(args) +
			Count("tool") + Count("call_1") + Count("sunny")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CountMessages(tt.msgs); got != tt.want {
				t.Fatalf("CountMessages: got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCountMessagesTextParts(t *testing.T) {
	var m chat.Message
	body := `{"role":"user","content":[{"type":"text","text":"hello"},{"type":"text","text":"world"}]}`
	if err := m.Content.UnmarshalJSON([]byte(body[strings.Index(body, "[") : len(body)-1])); err != nil {
		t.Fatalf("decode parts: %v", err)
	}
	m.Role = "user"
	want := priming + perMessage + Count("user") + Count("hello\nworld")
	if got := CountMessages([]chat.Message{m}); got != want {
		t.Fatalf("CountMessages with parts: got %d, want %d", got, want)
	}
}

func TestCountMessagesImage(t *testing.T) {
	var c chat.Content
	if err := c.UnmarshalJSON([]byte(`[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]`)); err != nil {
		t.Fatalf("decode parts: %v", err)
	}
	want := priming + perMessage + Count("user") + Count("what is this") + perImage
	if got := CountMessages([]chat.Message{{Role: "user", Content: c}}); got != want {
		t.Fatalf("CountMessages with an image: got %d, want %d", got, want)
	}
}

func TestCountTools(t *testing.T) {
	tools := []chat.Tool{{Type: "function", Function: chat.Function{
		Name: "weather", Description: "Current weather",
		Parameters: []byte(`{ "type": "object",
			"properties": { "city": { "type": "string", "description": "a city name" } } }`),
	}}}
	want := perMessage + Count("weather") + Count("Current weather") +
		Count(`{"type":"object","properties":{"city":{"type":"string","description":"a city name"}}}`)
	if got := CountTools(tools); got != want {
		t.Fatalf("CountTools: got %d, want %d", got, want)
	}
}

func TestCacheAgreesWithTokenizer(t *testing.T) {
	long := strings.Repeat("Gantry keeps counts of long texts. ", 20)
	for _, legacy := range []bool{false, true} {
		c := encoder(legacy)
		want := encode(c, long)
		for i := range 3 {
			if got := count(c, long); got != want {
				t.Fatalf("legacy=%v, count %d: got %d, want %d", legacy, i, got, want)
			}
		}
	}
	// A text the two encodings count differently must not share an entry.
	ru := strings.Repeat("Заказ отправлен вчера и прибудет в течение трёх дней. ", 8)
	wantOld, wantNew := encode(encoder(true), ru), encode(encoder(false), ru)
	if wantOld == wantNew {
		t.Fatalf("test text counts %d in both encodings; pick another", wantOld)
	}
	if a, b := CountModel("gpt-4", ru), CountModel("gpt-4o", ru); a != wantOld || b != wantNew {
		t.Fatalf("cached counts: got %d and %d, want %d and %d", a, b, wantOld, wantNew)
	}
}

func TestCacheBounded(t *testing.T) {
	c := &countCache{cur: map[uint64]int32{}}
	for i := range 3 * cacheGen {
		c.put(uint64(i), i)
	}
	if n := len(c.cur) + len(c.prev); n > 2*cacheGen {
		t.Fatalf("cache holds %d entries, more than %d", n, 2*cacheGen)
	}
	// An entry found in the old generation moves to the new one.
	old := uint64(3*cacheGen - cacheGen - 1)
	if _, ok := c.get(old); !ok {
		t.Fatalf("entry %d of the previous generation is gone", old)
	}
	if _, ok := c.cur[old]; !ok {
		t.Fatalf("entry %d was not kept on use", old)
	}
}

func TestConcurrentCount(t *testing.T) {
	// Distinct texts, so the goroutines share the piece cache but not the
	// text cache.
	texts := make([]string, 8)
	want := make([]int, len(texts))
	for i := range texts {
		texts[i] = strings.Repeat(fmt.Sprintf("The quick brown fox %d jumps over the lazy dog. ", i), 20)
		want[i] = libraryCount(encoder(false), texts[i])
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(texts))
	for i := range texts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				if got := fastCount(texts[i]); got != want[i] {
					errs <- fmt.Sprintf("text %d: got %d, want %d", i, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("concurrent count: %s", e)
	}
}

// prompt4K is a 4 KB prompt of ordinary prose and a little JSON.
func prompt4K() string {
	var b strings.Builder
	para := "Gantry routes every model call through a pipeline that checks policy, renders the prompt, " +
		"picks a provider and records a trace with cost. Operators watch budgets and roll back releases. " +
		`{"feature":"support-answer","release":2,"tokens":[12,345,6789]}` + "\n"
	for b.Len() < 4096 {
		b.WriteString(para)
	}
	return b.String()[:4096]
}

// BenchmarkCount4K measures the tokenizer on a fresh 4 KB prompt.
func BenchmarkCount4K(b *testing.B) {
	text := prompt4K()
	Count(text) // build the encoder outside the timed loop
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		encode(encoder(false), text)
	}
}

// BenchmarkCount4KLibrary measures the tokenizer library's own split on
// the same prompt, for comparison.
func BenchmarkCount4KLibrary(b *testing.B) {
	text := prompt4K()
	Count(text)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		libraryCount(encoder(false), text)
	}
}

// BenchmarkCount4KRepeated measures a 4 KB text counted again, as a
// release's system instructions are on every call.
func BenchmarkCount4KRepeated(b *testing.B) {
	text := prompt4K()
	Count(text)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		Count(text)
	}
}

func BenchmarkCountMessages4K(b *testing.B) {
	text := prompt4K()
	msgs := []chat.Message{
		{Role: "system", Content: chat.Text(text[:1024])},
		{Role: "user", Content: chat.Text(text[1024:])},
	}
	CountMessages(msgs)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		CountMessages(msgs)
	}
}
