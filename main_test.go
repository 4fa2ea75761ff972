package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestMain lets the test binary act as the gantry binary: a test starts
// os.Args[0] with GANTRY_RUN_MAIN=1 and gets a real agent process.
func TestMain(m *testing.M) {
	if os.Getenv("GANTRY_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const e2eKey = "gk_e2e-test-key-0000001"

var gatewayLine = regexp.MustCompile(`gateway\s+http://(\S+)/v1`)

// startDevAgent runs `gantry agent --dev` as a process on a free port and
// returns its address once it has printed its banner.
func startDevAgent(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "agent", "--dev", "--http-addr", "127.0.0.1:0",
		"--dev-key", e2eKey, "--dev-admin-token", "gat_e2e", "--data-dir", t.TempDir(), "--log-level", "warn")
	cmd.Env = append(os.Environ(), "GANTRY_RUN_MAIN=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Errorf("agent exit: %v", err)
			} else if err != nil {
				t.Errorf("agent did not shut down cleanly on SIGTERM: %v", err)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("agent did not stop within 20s of SIGTERM")
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := gatewayLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("agent printed no gateway address within 30s")
		return ""
	}
}

func TestDevAgentServesOpenAISDK(t *testing.T) {
	addr := startDevAgent(t)
	client := openai.NewClient(option.WithBaseURL("http://"+addr+"/v1"), option.WithAPIKey(e2eKey), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The dev simulator injects rare faults; the route retries and falls back,
	// so a call fails only if the gateway does.
	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "default",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Where is my order?")},
	})
	if err != nil {
		t.Fatalf("non-streaming call: %v", err)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Message.Content == "" || resp.Usage.TotalTokens == 0 {
		t.Fatalf("unexpected completion: %+v", resp)
	}

	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:         "feature/support-answer",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("It was due Monday.")},
		Metadata:      map[string]string{"customer": "Ana", "question": "Where is my order?"},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("streaming call: %v", err)
	}
	if chunks < 2 || acc.Choices[0].Message.Content == "" || acc.Usage.CompletionTokens == 0 {
		t.Fatalf("stream: %d chunks, content %q, usage %+v", chunks, acc.Choices[0].Message.Content, acc.Usage)
	}

	models, err := client.Models.List(ctx)
	if err != nil {
		t.Fatalf("list models: %v", err)
	}
	found := false
	for _, m := range models.Data {
		found = found || m.ID == "feature/support-answer"
	}
	if !found {
		t.Fatalf("GET /v1/models lacks feature/support-answer: %+v", models.Data)
	}

	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "no-such-model", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Fatalf("unknown model: got %v, want the SDK to see a 404 model_not_found", err)
	}
}

func TestDevAgentStreamsToCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not installed; .ci/run installs it")
	}
	addr := startDevAgent(t)
	out, err := exec.Command(curl, "-sS", "-N", "--max-time", "30", "http://"+addr+"/v1/chat/completions",
		"-H", "Authorization: Bearer "+e2eKey, "-H", "Content-Type: application/json",
		"-d", `{"model":"default","stream":true,"messages":[{"role":"user","content":"Hello"}]}`).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	text := string(out)
	if !strings.HasPrefix(text, "data: {") || !strings.HasSuffix(strings.TrimSpace(text), "data: [DONE]") {
		t.Fatalf("curl saw no SSE stream ending in [DONE]:\n%s", text)
	}
	if n := strings.Count(text, "\n\ndata: "); n < 2 {
		t.Fatalf("only %d events in the stream:\n%s", n+1, text)
	}
}
