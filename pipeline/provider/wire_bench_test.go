package provider

import (
	"bytes"
	"io"
	"testing"

	"gantry/pipeline/provider/fake"
)

// BenchmarkBedrockStream decodes a ConverseStream answer of 200 text
// deltas: event-stream framing, CRC checks and translation to chunks.
func BenchmarkBedrockStream(b *testing.B) {
	frames := []fake.Frame{{Event: "messageStart", Payload: `{"role":"assistant"}`}}
	for range 200 {
		frames = append(frames, fake.Frame{Event: "contentBlockDelta", Payload: `{"contentBlockIndex":0,"delta":{"text":" word"}}`})
	}
	frames = append(frames, fake.Frame{Event: "messageStop", Payload: `{"stopReason":"end_turn"}`},
		fake.Frame{Event: "metadata", Payload: `{"usage":{"inputTokens":10,"outputTokens":200}}`})
	body := fake.EventStream(frames...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := startEvents(b.Context(), io.NopCloser(bytes.NewReader(body)), newFrameReader(bytes.NewReader(body)), &bedrockDecoder{tools: map[int]int{}})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := s.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

// BenchmarkGeminiStream decodes a streamGenerateContent answer of 200
// events.
func BenchmarkGeminiStream(b *testing.B) {
	var body bytes.Buffer
	for range 200 {
		body.WriteString(`data: {"candidates": [{"content": {"parts": [{"text": " word"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 12,"candidatesTokenCount": 2},"modelVersion": "gemini-2.5-flash","responseId": "r1"}` + "\n\n")
	}
	body.WriteString(`data: {"candidates": [{"content": {"parts": [{"text": "."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 12,"candidatesTokenCount": 201}}` + "\n\n")
	data := body.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := startStream(b.Context(), io.NopCloser(bytes.NewReader(data)), &geminiDecoder{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := s.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}
