// Package jaegertest runs a real Jaeger (v2 all-in-one, in-memory storage)
// for integration tests and reads traces back through its query API. The
// binary is GANTRY_JAEGER, which .ci/run builds from the tools module.
package jaegertest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"gantry/internal/proctest"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

//go:embed jaeger.yaml
var config string

// Jaeger is a running Jaeger's addresses on loopback.
type Jaeger struct {
	OTLPHTTP, OTLPGRPC string // host:port of the OTLP receivers
	Query              string // base URL of the query API
}

// Start runs Jaeger until the test ends and waits until it answers queries.
func Start(t *testing.T) Jaeger {
	t.Helper()
	bin := os.Getenv("GANTRY_JAEGER")
	if bin == "" {
		t.Fatal("GANTRY_JAEGER is not set: build Jaeger with `go build -C tools -o bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger` and set GANTRY_JAEGER=$PWD/bin/jaeger (.ci/run does both)")
	}
	j := Jaeger{OTLPHTTP: proctest.FreeAddr(t), OTLPGRPC: proctest.FreeAddr(t)}
	query, queryGRPC := proctest.FreeAddr(t), proctest.FreeAddr(t)
	j.Query = "http://" + query
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	body := strings.NewReplacer("@QUERY@", query, "@QUERY_GRPC@", queryGRPC, "@OTLP_HTTP@", j.OTLPHTTP, "@OTLP_GRPC@", j.OTLPGRPC).Replace(config)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, "jaeger", bin, "--config", "file:"+cfg)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(j.Query + "/api/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger not ready after 60s (last error %v)", err)
		}
		select {
		case <-p.Exited:
			t.Fatalf("jaeger exited before it was ready:\n%s", p.Output())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Span is a span as Jaeger's query API returns it.
type Span struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

// Attrs are the span's tags as text.
func (s *Span) Attrs() map[string]string {
	m := map[string]string{}
	for _, kv := range s.Tags {
		m[kv.Key] = fmt.Sprint(kv.Value)
	}
	return m
}

// Parent is the id of the span this one is a child of, or "".
func (s *Span) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Spans polls the query API until trace id holds at least want spans
// (export is batched) and returns them; it fails the test after 30 s.
func (j Jaeger) Spans(t *testing.T, id string, want int) []*Span {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		resp, err := http.Get(j.Query + "/api/traces/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Data []struct {
				Spans []*Span `json:"spans"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK && len(r.Data) == 1 {
			if got = len(r.Data[0].Spans); got >= want {
				return r.Data[0].Spans
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("Jaeger holds %d spans of trace %s after 30s, want %d", got, id, want)
	return nil
}
