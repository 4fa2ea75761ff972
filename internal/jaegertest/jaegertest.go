// Package jaegertest runs a real Jaeger (v2 all-in-one, in-memory storage)
// for integration tests and reads traces back through its query API. The
// binary is GANTRY_JAEGER, which .ci/run builds from the tools module.
package jaegertest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"gantry/internal/freeport"
	"net/http"
	"os"
	"os/exec"
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
	j := Jaeger{OTLPHTTP: freeAddr(t), OTLPGRPC: freeAddr(t)}
	query, queryGRPC := freeAddr(t), freeAddr(t)
	j.Query = "http://" + query
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	body := strings.NewReplacer("@QUERY@", query, "@QUERY_GRPC@", queryGRPC, "@OTLP_HTTP@", j.OTLPHTTP, "@OTLP_GRPC@", j.OTLPGRPC).Replace(config)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "--config", "file:"+cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start jaeger: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			s := out.String()
			if len(s) > 4000 {
				s = "…" + s[len(s)-4000:]
			}
			t.Logf("jaeger output:\n%s", s)
		}
	})
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
		case <-done:
			t.Fatalf("jaeger exited before it was ready:\n%s", out.String())
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

func freeAddr(t *testing.T) string {
	t.Helper()
	addrs, err := freeport.Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	return addrs[0]
}
