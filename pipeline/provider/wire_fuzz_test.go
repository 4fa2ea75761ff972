package provider

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"gantry/pipeline/provider/fake"
)

// FuzzFrameReader feeds arbitrary bytes to the event-stream framing: it
// must end with an error or io.EOF, never panic or buffer past its bound.
func FuzzFrameReader(f *testing.F) {
	whole := fake.EventStream(bedrockTextStream()...)
	f.Add(whole)
	f.Add(whole[:len(whole)/2])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 16, 0, 0, 0, 255, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newFrameReader(bytes.NewReader(data))
		dec := &bedrockDecoder{tools: map[int]int{}}
		for range 1000 {
			ev, err := r.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errEventTooLarge) {
					var pe *Error
					if !errors.As(err, &pe) {
						t.Fatalf("unclassified error %T: %v", err, err)
					}
				}
				return
			}
			if len(ev.Data) > MaxEventBytes {
				t.Fatalf("event of %d bytes passed the bound", len(ev.Data))
			}
			dec.decode(ev)
		}
	})
}

// FuzzGeminiResponse decodes arbitrary answers and stream events.
func FuzzGeminiResponse(f *testing.F) {
	f.Add([]byte(`{"candidates":[{"content":{"parts":[{"text":"hi"},{"functionCall":{"name":"f","args":{"a":1}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1}}`))
	f.Add([]byte(`{"promptFeedback":{"blockReason":"SAFETY"}}`))
	f.Add([]byte(`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := decodeGeminiResponse(data, "m", time.Unix(0, 0))
		if err == nil && len(resp.Choices) != 1 {
			t.Fatalf("an answer with %d choices", len(resp.Choices))
		}
		d := &geminiDecoder{}
		d.decode(sseEvent{Data: data})
		d.decode(sseEvent{Data: data})
	})
}

// FuzzBedrockResponse decodes arbitrary Converse answers.
func FuzzBedrockResponse(f *testing.F) {
	f.Add([]byte(`{"output":{"message":{"content":[{"text":"hi"},{"toolUse":{"toolUseId":"t","name":"f","input":{}}}]}},"stopReason":"tool_use","usage":{"inputTokens":1}}`))
	f.Add([]byte(`{"output":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := decodeBedrockResponse(data, "m", time.Unix(0, 0))
		if err == nil && len(resp.Choices) != 1 {
			t.Fatalf("an answer with %d choices", len(resp.Choices))
		}
	})
}
