package agent

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/provider/fake"
)

// TestStreamFlushesEachChunk proves the gateway passes a chunk on as soon as
// the upstream sends it: the upstream holds back its second chunk until the
// client has read the first through the gateway.
func TestStreamFlushesEachChunk(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := func(text string) {
			fmt.Fprintf(w, "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", text)
			w.(http.Flusher).Flush()
		}
		chunk("first")
		select {
		case <-release:
		case <-time.After(10 * time.Second):
			return // the client never saw the first chunk: end without [DONE]
		}
		chunk("second")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	a := startAgent(t, routeConfig(up.URL+"/v1", up.URL+"/v1", policy()))
	resp := a.post("/v1/chat/completions", helloStream)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var seen []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended after %q: %v", seen, err)
		}
		if strings.Contains(line, `"first"`) {
			close(release) // only now may the upstream go on
		}
		if strings.HasPrefix(line, "data: ") {
			seen = append(seen, strings.TrimSpace(line))
		}
		if strings.Contains(line, "[DONE]") {
			break
		}
	}
	if len(seen) != 3 || !strings.Contains(seen[1], `"second"`) {
		t.Fatalf("events %q, want first, second, [DONE]", seen)
	}
}

// BenchmarkStreamTTFT measures time to first token through the gateway and
// directly against the same upstream; the reported ttft-µs metric of each
// (median over b.N streams) and their difference is the gateway's addition.
func BenchmarkStreamTTFT(b *testing.B) {
	up, _ := fake.NewServer(fake.Options{Chunks: 8, Default: fake.Fault{ChunkDelay: time.Millisecond}})
	defer up.Close()
	a := startAgentB(b, routeConfig(up.URL+"/v1", up.URL+"/v1", config.Route{}))
	for _, target := range []struct{ name, url string }{
		{"direct", up.URL + "/v1/chat/completions"},
		{"gateway", a.srv.URL + "/v1/chat/completions"},
	} {
		b.Run(target.name, func(b *testing.B) {
			ttfts := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				req, _ := http.NewRequest("POST", target.url, strings.NewReader(helloStream))
				req.Header.Set("Authorization", "Bearer "+devKey)
				start := time.Now()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				br := bufio.NewReader(resp.Body)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						b.Fatal(err)
					}
					if strings.Contains(line, `"content":"`) && !strings.Contains(line, `"content":""`) {
						ttfts = append(ttfts, time.Since(start))
						break
					}
				}
				for {
					if _, err := br.ReadString('\n'); err != nil {
						break
					}
				}
				resp.Body.Close()
			}
			sort.Slice(ttfts, func(i, j int) bool { return ttfts[i] < ttfts[j] })
			b.ReportMetric(float64(ttfts[len(ttfts)/2].Microseconds()), "ttft-µs")
			b.ReportMetric(float64(ttfts[len(ttfts)*99/100].Microseconds()), "ttft-p99-µs")
		})
	}
}
