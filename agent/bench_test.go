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

// BenchmarkStreamChat and BenchmarkStreamMessages stream the same answer
// of 200 chunks through the agent, on chat completions and on Anthropic's
// Messages API; their difference is what the Messages translation costs a
// stream. BenchmarkStreamResponses is the Responses API's.
func BenchmarkStreamChat(b *testing.B) {
	benchStream(b, "/v1/chat/completions", `{"model":"r","stream":true,"max_tokens":400,"messages":[{"role":"user","content":"Tell me a story."}]}`)
}

func BenchmarkStreamMessages(b *testing.B) {
	benchStream(b, "/v1/messages", `{"model":"r","stream":true,"max_tokens":400,"messages":[{"role":"user","content":"Tell me a story."}]}`)
}

func BenchmarkStreamResponses(b *testing.B) {
	benchStream(b, "/v1/responses", `{"model":"r","stream":true,"max_output_tokens":400,"input":"Tell me a story."}`)
}

func benchStream(b *testing.B, path, body string) {
	up, _ := fake.NewServer(fake.Options{Content: strings.Repeat("word ", 200), Chunks: 200})
	defer up.Close()
	a := startAgentB(b, routeConfig(up.URL+"/v1", up.URL+"/v1", config.Route{}))
	url := a.srv.URL + path
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+devKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || n < 200*20 {
				b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
			}
		}
	})
}

// BenchmarkEmbeddings is an embeddings call of 8 texts through the agent
// on the simulator, answered by the simulator (Miss) or from the
// embeddings cache (Hit).
func BenchmarkEmbeddings(b *testing.B) {
	texts := `["Where is my order?","It has not shipped.","Reset the thermostat.","Cancel my plan.","Refund please.","Change my address.","Talk to a person.","Track parcel A-1001."]`
	for _, tc := range []struct {
		name string
		hdr  string
	}{{"Miss", "bypass"}, {"Hit", ""}} {
		b.Run(tc.name, func(b *testing.B) {
			a := startAgentB(b, quietConfig())
			url := a.srv.URL + "/v1/embeddings"
			body := `{"model":"sim-embed","dimensions":1536,"input":` + texts + `}`
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", url, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+devKey)
					req.Header.Set("X-Gantry-Cache", tc.hdr)
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
		})
	}
}
