package console

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"gantry/pipeline/trace"
)

// FuzzReadEvents reads an agent's live feed from arbitrary bytes, as a
// console does over a network it does not control. It must never panic,
// never report more events than the stream has blank lines, and read back
// exactly the events a well-formed stream of the fuzzer's lines carries,
// keepalive comments between them and summaries decoded as the fleet does.
func FuzzReadEvents(f *testing.F) {
	sum, _ := json.Marshal(trace.Summary{ID: "req-1", TraceID: "0af7651916cd43dd8448eb211c80319c", Status: "ok", HTTPStatus: 200})
	f.Add([]byte(": feed\n\ndata: " + string(sum) + "\n\n: keepalive\n\n"))
	f.Add([]byte("data: a\ndata: b\n\nevent: x\nid: 1\ndata:c\n\n"))
	f.Add([]byte("data: " + strings.Repeat("x", 70000) + "\n\n"))
	f.Add([]byte("data: torn"))
	f.Add([]byte("\r\n\r\ndata: crlf\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		readEvents(bytes.NewReader(data), func(b []byte) error {
			n++
			var s trace.Summary
			_ = json.Unmarshal(b, &s) // what the fleet does with each event
			return nil
		})
		if blanks := bytes.Count(data, []byte("\n")); n > blanks {
			t.Fatalf("%d events from a stream of %d lines", n, blanks)
		}
		// The fuzzer's lines, as the agent writes events.
		var want []string
		var stream bytes.Buffer
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSuffix(line, "\r")
			if strings.ContainsRune(line, '\r') || len(line) > 1<<20 {
				continue
			}
			want = append(want, line)
			stream.WriteString("data: " + line + "\n\n: keepalive\n")
		}
		var got []string
		if err := readEvents(&stream, func(b []byte) error { got = append(got, string(b)); return nil }); err != nil {
			t.Fatalf("a well-formed stream: %v", err)
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
			t.Fatalf("read %q, want %q", got, want)
		}
	})
}
