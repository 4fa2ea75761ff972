package provider

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// readEvents drains a reader into "event|data" strings and the final error.
func readEvents(t *testing.T, input string, max int) ([]string, error) {
	t.Helper()
	r := newSSEReader(strings.NewReader(input), max)
	var got []string
	for range 1000 {
		ev, err := r.Next()
		if err != nil {
			return got, err
		}
		got = append(got, ev.Event+"|"+string(ev.Data))
	}
	t.Fatal("reader never ended")
	return nil, nil
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string
		err   error
	}{
		{"one event", "data: hello\n\n", []string{"|hello"}, io.EOF},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"|a", "|b"}, io.EOF},
		{"named event", "event: message_start\ndata: {}\n\n", []string{"message_start|{}"}, io.EOF},
		{"multi-line data", "data: a\ndata: b\n\n", []string{"|a\nb"}, io.EOF},
		{"empty first data line", "data:\ndata: b\n\n", []string{"|\nb"}, io.EOF},
		{"no space after colon", "data:x\n\n", []string{"|x"}, io.EOF},
		{"comments and ids skipped", ": keep-alive\nid: 7\nretry: 10\ndata: x\n\n", []string{"|x"}, io.EOF},
		{"blank lines between events", "\n\n\ndata: x\n\n\n\n", []string{"|x"}, io.EOF},
		{"last event without blank line", "data: a\n\ndata: [DONE]\n", []string{"|a", "|[DONE]"}, io.EOF},
		{"cut mid-line", "data: a\n\ndata: {\"cho", []string{"|a"}, io.ErrUnexpectedEOF},
		{"empty input", "", nil, io.EOF},
		{"too large", "data: " + strings.Repeat("x", 100) + "\n\n", nil, errEventTooLarge},
		{"too large across lines", strings.Repeat("data: 0123456789\n", 10) + "\n", nil, errEventTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readEvents(t, tt.input, 64)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error: got %v, want %v", err, tt.err)
			}
			if strings.Join(got, ";") != strings.Join(tt.want, ";") {
				t.Fatalf("events: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSSEReaderLongLineWithinLimit(t *testing.T) {
	// Lines longer than the internal buffer are joined, not cut.
	long := strings.Repeat("y", 40<<10)
	got, err := readEvents(t, "data: "+long+"\n\n", MaxEventBytes)
	if err != io.EOF {
		t.Fatalf("error: got %v, want EOF", err)
	}
	if len(got) != 1 || got[0] != "|"+long {
		t.Fatalf("got %d events, first of %d bytes; want one of %d", len(got), len(got[0]), len(long)+1)
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("data: hello\n\n"))
	f.Add([]byte("event: x\r\ndata: a\r\ndata: b\r\n\r\n: c\n"))
	f.Add([]byte("data: {\"a\":1}\n\ndata: [DONE]"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 256
		r := newSSEReader(bytes.NewReader(in), max)
		for i := 0; ; i++ {
			if i > len(in)+1 {
				t.Fatalf("more events than input bytes")
			}
			ev, err := r.Next()
			if err != nil {
				return
			}
			if len(ev.Data) > max {
				t.Fatalf("event data of %d bytes passed the %d-byte limit", len(ev.Data), max)
			}
		}
	})
}

func BenchmarkSSEReader(b *testing.B) {
	var in bytes.Buffer
	for range 1000 {
		in.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}]}` + "\n\n")
	}
	data := in.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := newSSEReader(bytes.NewReader(data), MaxEventBytes)
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}
