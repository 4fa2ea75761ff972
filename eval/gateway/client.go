// Package gateway runs evaluation cases through a Gantry gateway over
// HTTP: Client is a run.Target that sends each case to the feature API
// (variables) or the chat API (messages) pinned to the release under test
// and marked as evaluation traffic, and an assert.Judge that asks a judge
// model through the same gateway, so judging is authenticated, budgeted,
// traced and costed like any call.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gantry/eval/assert"
	"gantry/eval/run"
	"gantry/pipeline/chat"
	"gantry/pipeline/trace"
)

// Headers an evaluation call carries. The gateway honours them only for
// credentials allowed to run evaluations.
const (
	// HeaderRelease pins the call to a release version of the feature,
	// instead of the label the caller would get.
	HeaderRelease = "X-Gantry-Release"
	// HeaderEvalRun marks the call as evaluation traffic of a run: its
	// trace is tagged and it stays out of production counters.
	HeaderEvalRun = "X-Gantry-Eval-Run"
	// HeaderEvalCase names the case, for the trace.
	HeaderEvalCase = "X-Gantry-Eval-Case"
	// HeaderCost is the call's cost in US dollars, which the gateway
	// sends back on evaluation calls.
	HeaderCost = "X-Gantry-Cost-Usd"
)

// MaxResponseBytes bounds a gateway response the client reads.
const MaxResponseBytes = 4 << 20

// Client calls one gateway with one credential.
type Client struct {
	// Base is the gateway's base URL, such as http://127.0.0.1:7400.
	Base string
	// Key is the virtual key or token the calls present.
	Key string
	// HTTP is the client to use; http.DefaultClient when nil.
	HTTP *http.Client
	// JudgeModel is what a judge call names as its model: a model, a
	// route alias or feature/<name>.
	JudgeModel string
	// RunID marks judge calls as evaluation traffic of the run, so they
	// stay out of production counters and report their cost.
	RunID string
}

var (
	_ run.Target   = (*Client)(nil)
	_ assert.Judge = (*Client)(nil)
)

// Error is a gateway's refusal or failure, in OpenAI's error shape.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("gateway %d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("gateway %d: %s", e.Status, e.Message)
}

// invokeResponse is the feature API's answer. cost_usd, tool_calls and
// context are sent on evaluation calls.
type invokeResponse struct {
	Output    json.RawMessage `json:"output"`
	TraceID   string          `json:"trace_id"`
	Release   string          `json:"release"`
	Model     string          `json:"model"`
	Sources   []trace.Source  `json:"sources"`
	CostUSD   *float64        `json:"cost_usd"`
	ToolCalls []chat.ToolCall `json:"tool_calls"`
	Context   string          `json:"context"`
}

// Invoke sends one case: variables to POST /v1/features/{feature}/invoke,
// messages to POST /v1/chat/completions with model feature/{feature}.
func (c *Client) Invoke(ctx context.Context, r run.Request) (run.Response, error) {
	h := http.Header{}
	h.Set(HeaderRelease, strconv.Itoa(r.Release))
	h.Set(HeaderEvalRun, r.RunID)
	h.Set(HeaderEvalCase, r.CaseID)
	if r.Messages != nil {
		msgs := make([]chat.Message, len(r.Messages))
		for i, m := range r.Messages {
			msgs[i] = chat.Message{Role: m.Role, Content: chat.Content{Text: m.Content}}
		}
		body := map[string]any{"model": "feature/" + r.Feature, "messages": msgs}
		var resp chat.Response
		hdr, err := c.post(ctx, "/v1/chat/completions", h, body, &resp)
		if err != nil {
			return run.Response{}, err
		}
		out := run.Response{Model: resp.Model, Release: hdr.Get("X-Gantry-Release-Id"), CostUSD: cost(hdr)}
		if p, err := trace.ParseTraceparent(hdr.Get("Traceparent")); err == nil {
			out.TraceID = p.TraceID.String()
		}
		if len(resp.Choices) > 0 {
			m := resp.Choices[0].Message
			out.Output = m.Content.Text
			out.ToolCalls = calls(m.ToolCalls)
		}
		return out, nil
	}
	vars := r.Vars
	if vars == nil {
		vars = map[string]any{}
	}
	var resp invokeResponse
	hdr, err := c.post(ctx, "/v1/features/"+url.PathEscape(r.Feature)+"/invoke", h, map[string]any{"vars": vars}, &resp)
	if err != nil {
		return run.Response{}, err
	}
	out := run.Response{TraceID: resp.TraceID, Release: resp.Release, Model: resp.Model, Sources: resp.Sources,
		Context: resp.Context, ToolCalls: calls(resp.ToolCalls), CostUSD: cost(hdr)}
	if resp.CostUSD != nil {
		out.CostUSD = *resp.CostUSD
	}
	// A schema-bound release answers with JSON; others with a string.
	var s string
	if err := json.Unmarshal(resp.Output, &s); err == nil {
		out.Output = s
	} else {
		out.Output = string(resp.Output)
	}
	return out, nil
}

// Grade asks the judge model through the gateway's chat API.
func (c *Client) Grade(ctx context.Context, g assert.Grading) (assert.Grade, error) {
	if c.JudgeModel == "" {
		return assert.Grade{}, errors.New("no judge model configured")
	}
	zero := 0.0
	body := map[string]any{"model": c.JudgeModel, "messages": assert.JudgePrompt(g), "temperature": zero, "max_tokens": 300}
	h := http.Header{}
	if c.RunID != "" {
		h.Set(HeaderEvalRun, c.RunID)
	}
	var resp chat.Response
	hdr, err := c.post(ctx, "/v1/chat/completions", h, body, &resp)
	if err != nil {
		return assert.Grade{}, err
	}
	gr := assert.Grade{CostUSD: cost(hdr)}
	if len(resp.Choices) == 0 {
		return gr, errors.New("judge model answered no choices")
	}
	gr.Score, gr.Reason, err = assert.ParseGrade(resp.Choices[0].Message.Content.Text)
	return gr, err
}

// Events are a repeat's assertion results as gen_ai.evaluation.result
// events: the assertion type, its score, pass, fail or error, and why.
func Events(r run.CaseResult, at time.Time) []trace.Evaluation {
	out := make([]trace.Evaluation, 0, min(len(r.Assertions), trace.MaxEvaluations))
	for _, a := range r.Assertions {
		if len(out) == trace.MaxEvaluations {
			break
		}
		ev := trace.Evaluation{Time: at, Name: a.Type, ScoreValue: a.Score, ScoreLabel: trace.EvalFail, Explanation: clip(a.Reason, 1<<10)}
		switch {
		case a.Error != "":
			ev.ScoreLabel, ev.ErrorType = trace.EvalError, clip(a.Error, 1<<10)
		case a.Pass:
			ev.ScoreLabel = trace.EvalPass
		}
		if ev.ScoreValue != nil && !(*ev.ScoreValue >= 0 && *ev.ScoreValue <= 1) {
			ev.ScoreValue = nil
		}
		out = append(out, ev)
	}
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// Evaluate attaches a repeat's assertion results to the trace of its call
// (POST /v1/evaluations), linked by the trace id. The gateway records a
// trace shortly after it answers, so a trace not found yet is asked for
// again a few times.
func (c *Client) Evaluate(ctx context.Context, runID string, r run.CaseResult) error {
	if r.TraceID == "" || len(r.Assertions) == 0 {
		return nil
	}
	body := map[string]any{"trace_id": r.TraceID, "run": runID, "evaluations": Events(r, time.Now().UTC())}
	var out struct{}
	for wait := 50 * time.Millisecond; ; wait *= 2 {
		_, err := c.post(ctx, "/v1/evaluations", http.Header{}, body, &out)
		var ge *Error
		if err == nil || !errors.As(err, &ge) || ge.Status != http.StatusNotFound || wait > 2*time.Second {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (c *Client) post(ctx context.Context, path string, h http.Header, body any, into any) (http.Header, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.Base, "/")+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Key)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read gateway response: %w", err)
	}
	if len(data) > MaxResponseBytes {
		return nil, fmt.Errorf("gateway response over %d bytes", MaxResponseBytes)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(data))}
		var oe struct {
			Error struct {
				Message string `json:"message"`
				Code    any    `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &oe) == nil && oe.Error.Message != "" {
			e.Message = oe.Error.Message
			if oe.Error.Code != nil {
				e.Code = fmt.Sprint(oe.Error.Code)
			}
		}
		if len(e.Message) > 512 {
			e.Message = e.Message[:512] + "…"
		}
		return nil, e
	}
	if err := json.Unmarshal(data, into); err != nil {
		return nil, fmt.Errorf("decode gateway response: %w", err)
	}
	return resp.Header, nil
}

func cost(h http.Header) float64 {
	v, err := strconv.ParseFloat(h.Get(HeaderCost), 64)
	if err != nil || v < 0 || v > 1e6 {
		return 0
	}
	return v
}

func calls(tcs []chat.ToolCall) []assert.Call {
	if len(tcs) == 0 {
		return nil
	}
	out := make([]assert.Call, len(tcs))
	for i, tc := range tcs {
		out[i] = assert.Call{Name: tc.Function.Name, Arguments: tc.Function.Arguments}
	}
	return out
}

// DefaultTimeout is a sensible HTTP client timeout for evaluation calls.
const DefaultTimeout = 2 * time.Minute
