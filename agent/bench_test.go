package agent

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"gantry/config"
	"gantry/pipeline/provider/fake"
)

// BenchmarkGatewayCall is one non-streaming call through the whole agent
// over loopback HTTP (auth, policy, routing, provider, trace, metrics)
// against a zero-latency upstream; BenchmarkDirectCall is the same request
// sent to the upstream directly. Their difference is the gateway's cost.
func BenchmarkGatewayCall(b *testing.B) {
	up, _ := fake.NewServer(fake.Options{Chunks: 8})
	defer up.Close()
	a := startAgentB(b, routeConfig(up.URL+"/v1", up.URL+"/v1", config.Route{}))
	benchPost(b, a.srv.URL+"/v1/chat/completions")
}

func BenchmarkDirectCall(b *testing.B) {
	up, _ := fake.NewServer(fake.Options{Chunks: 8})
	defer up.Close()
	benchPost(b, up.URL+"/v1/chat/completions")
}

const benchBody = `{"model":"r","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the load generator, please."}],"max_tokens":16}`

func benchPost(b *testing.B, url string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, strings.NewReader(benchBody))
			req.Header.Set("Authorization", "Bearer "+devKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}
