// Package sim is the `sim` provider kind: a simulator that stands in for a
// language model in demos, tests and load runs. It is no upstream and never
// calls the network; the production providers live in package provider.
package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gantry/config"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
	"gantry/pipeline/tokens"
)

// Sim is the simulator provider: it stands in for a language model in demos,
// tests and load runs. It waits a log-normal time to first token, paces its
// tokens, fails at the configured rates the way real upstreams fail, answers
// response formats with JSON that satisfies the request's schema, and calls
// the request's tools. It never calls the network, and its answers say what
// it is: their system_fingerprint is Fingerprint.
type Simulator struct {
	set config.SimSettings
	seq atomic.Uint64

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

var _ provider.Provider = (*Simulator)(nil)

// Simulator defaults where the settings leave a value unset.
const (
	simOutputTokens = 50
	// simHang bounds how long a simulated timeout holds a call whose
	// context has no deadline.
	simHang = 2 * time.Minute
	// simRetryAfter is what a simulated rate limit asks the caller to wait.
	simRetryAfter = time.Second
	// simCharsPerToken is the rough size of a token, used to cut JSON into
	// stream pieces.
	simCharsPerToken = 4
)

// Fingerprint marks every complete answer of the simulator, so that no
// one mistakes it for a model's.
const Fingerprint = "gantry-sim"

// New returns a simulator. Its choices are repeatable for a nonzero
// s.Seed when calls arrive in the same order.
func New(s config.SimSettings) *Simulator {
	if s.OutputTokens == 0 {
		s.OutputTokens = simOutputTokens
	}
	if s.LatencyP99 < s.LatencyP50 {
		s.LatencyP99 = s.LatencyP50
	}
	seed := uint64(s.Seed)
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	return &Simulator{set: s, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// simOutcome is what a simulated call does.
type simOutcome int

const (
	simOK simOutcome = iota
	simRateLimit
	simServerError
	simTimeout
	simCut
)

// simPlan is everything one call will do, drawn up front so that the random
// source is held only briefly.
type simPlan struct {
	outcome  simOutcome
	ttft     time.Duration
	interval time.Duration // between tokens
	id       string
	pieces   []string // the answer's tokens: content, or a tool call's arguments
	tool     *chat.ToolCall
	finish   string
	cutAt    int // for simCut: pieces sent before the cut
	prompt   int // prompt tokens
}

func (s *Simulator) plan(req *chat.Request) (*simPlan, error) {
	if req.Choices() > 1 {
		return nil, &provider.Error{Kind: provider.KindStatus, Status: 400, Message: "the simulator answers with one choice; n must be 1"}
	}
	// Counting the prompt is the slow part; it needs no lock.
	prompt := promptTokens(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &simPlan{
		id:     "chatcmpl-sim-" + strconv.FormatUint(s.seq.Add(1), 10),
		ttft:   logNormal(s.set.LatencyP50.D(), s.set.LatencyP99.D(), s.rng.NormFloat64()),
		prompt: prompt,
		finish: "stop",
	}
	if s.set.TokensPerSecond > 0 {
		p.interval = time.Duration(float64(time.Second) / s.set.TokensPerSecond)
	}
	u := s.rng.Float64()
	for _, o := range []struct {
		rate    float64
		outcome simOutcome
	}{{s.set.RateLimitRate, simRateLimit}, {s.set.ErrorRate, simServerError}, {s.set.TimeoutRate, simTimeout}, {s.set.CutRate, simCut}} {
		if u < o.rate {
			p.outcome = o.outcome
			break
		}
		u -= o.rate
	}
	if err := s.answer(req, p); err != nil {
		return nil, err
	}
	if limit := req.OutputLimit(); limit > 0 {
		// Keep whole pieces while their tokens fit the limit.
		n := 0
		for i, piece := range p.pieces {
			if n += tokens.Count(piece); n > limit {
				p.pieces = p.pieces[:i]
				p.finish = "length"
				break
			}
		}
	}
	if p.outcome == simCut {
		p.cutAt = s.rng.IntN(len(p.pieces) + 1)
	}
	return p, nil
}

// answer writes the plan's output: a tool call when the request offers tools
// and the conversation is not answering one, JSON for a JSON response
// format, and words otherwise.
func (s *Simulator) answer(req *chat.Request, p *simPlan) error {
	if tool, ok := simTool(req); ok {
		args, err := simJSON(tool.Function.Parameters, s.rng)
		if err != nil {
			return &provider.Error{Kind: provider.KindStatus, Status: 400, Message: fmt.Sprintf("the simulator cannot call tool %q: %v", tool.Function.Name, err)}
		}
		p.tool = &chat.ToolCall{ID: "call_sim_" + strconv.FormatUint(s.rng.Uint64()>>16, 36), Type: "function", Function: chat.FunctionCall{Name: tool.Function.Name}}
		p.pieces = splitJSON(args)
		p.finish = "tool_calls"
		return nil
	}
	if e, r := s.set.EmptyRate, s.set.RefusalRate; e+r > 0 {
		switch u := s.rng.Float64(); {
		case u < e:
			p.pieces = nil
			return nil
		case u < e+r:
			p.pieces = []string{SimRefusal}
			return nil
		}
	}
	if f := req.ResponseFormat; f != nil && f.Type != "text" {
		var schema json.RawMessage
		if f.JSONSchema != nil {
			schema = f.JSONSchema.Schema
		}
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}`)
		}
		out, err := simJSON(schema, s.rng)
		if err != nil {
			return &provider.Error{Kind: provider.KindStatus, Status: 400, Message: "the simulator cannot satisfy the response schema: " + err.Error()}
		}
		if s.set.InvalidRate > 0 && s.rng.Float64() < s.set.InvalidRate {
			out = simBreak(schema, out)
		}
		p.pieces = splitJSON(out)
		return nil
	}
	n := s.set.OutputTokens/2 + s.rng.IntN(s.set.OutputTokens+1)
	p.pieces = simWords(s.rng, max(n, 1))
	return nil
}

// SimRefusal is the simulator's refusal, worded as models word theirs.
const SimRefusal = "I'm sorry, but I can't help with that."

// simBreak makes a schema-valid answer invalid the way a model's answer
// often is: an object loses its first required property; anything else
// becomes an empty array, which an object or scalar schema refuses.
func simBreak(schema json.RawMessage, out string) string {
	var sch struct {
		Required []string `json:"required"`
	}
	var obj map[string]any
	if json.Unmarshal(schema, &sch) == nil && len(sch.Required) > 0 && json.Unmarshal([]byte(out), &obj) == nil {
		delete(obj, sch.Required[0])
		if b, err := json.Marshal(obj); err == nil {
			return string(b)
		}
	}
	return "[]"
}

// simTool picks the tool the simulated model calls, if any: the one
// tool_choice names, else the first, unless tool_choice is "none" or the
// last message is a tool result the model should now answer from.
func simTool(req *chat.Request) (chat.Tool, bool) {
	if len(req.Tools) == 0 {
		return chat.Tool{}, false
	}
	choice := string(bytes.TrimSpace(req.ToolChoice))
	if choice == `"none"` {
		return chat.Tool{}, false
	}
	var named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(req.ToolChoice, &named) == nil && named.Function.Name != "" {
		for _, t := range req.Tools {
			if t.Function.Name == named.Function.Name {
				return t, true
			}
		}
	}
	if choice != `"required"` && req.Messages[len(req.Messages)-1].Role == "tool" {
		return chat.Tool{}, false
	}
	return req.Tools[0], true
}

// logNormal is the latency at standard-normal draw z of a log-normal
// distribution with the given median and 99th percentile.
func logNormal(p50, p99 time.Duration, z float64) time.Duration {
	if p50 <= 0 {
		return 0
	}
	const z99 = 2.326347874
	sigma := 0.0
	if p99 > p50 {
		sigma = math.Log(float64(p99)/float64(p50)) / z99
	}
	d := float64(p50) * math.Exp(sigma*z)
	// A draw far in the tail is clipped, so one unlucky call cannot hang a
	// demo for minutes.
	return time.Duration(min(d, 4*float64(max(p99, p50))))
}

// promptTokens counts the prompt as OpenAI's tokenizer would: messages with
// their per-message overhead, and tool definitions.
func promptTokens(req *chat.Request) int {
	return tokens.CountMessages(req.Messages) + tokens.CountTools(req.Tools)
}

var simVocabulary = strings.Fields(`the order shipped yesterday and should arrive within three
business days you can track it from your account page we have refunded the difference to your
original payment method please let us know if anything else is unclear thanks for your patience
our team checked the invoice and found the charge was applied twice a replacement is on its way
returns are free within thirty days of delivery`)

// simWords makes n tokens of plausible prose, a word each.
func simWords(rng *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		w := simVocabulary[rng.IntN(len(simVocabulary))]
		switch {
		case i == 0:
			w = strings.ToUpper(w[:1]) + w[1:]
		case i%12 == 0 && i+1 < n:
			w = " " + w + "."
		default:
			w = " " + w
		}
		if i == n-1 {
			w += "."
		}
		out[i] = w
	}
	return out
}

// splitJSON cuts a JSON text into stream pieces of about one token each,
// on rune boundaries.
func splitJSON(s string) []string {
	var out []string
	for len(s) > 0 {
		n := min(simCharsPerToken, len(s))
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n++
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	if out == nil {
		out = []string{""}
	}
	return out
}

// fail returns the error a failing outcome produces once its time is up.
func (s *Simulator) fail(ctx context.Context, p *simPlan) error {
	switch p.outcome {
	case simRateLimit:
		return &provider.Error{Kind: provider.KindStatus, Status: 429, RetryAfter: simRetryAfter, Message: "simulated rate limit"}
	case simServerError:
		return &provider.Error{Kind: provider.KindStatus, Status: 503, Message: "simulated server error"}
	case simTimeout:
		// A hung upstream: hold the call until the caller gives up.
		t := time.NewTimer(simHang)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return provider.TransportError(ctx, ctx.Err(), provider.KindTimeout)
		case <-t.C:
			return &provider.Error{Kind: provider.KindTimeout, Message: "simulated upstream did not answer"}
		}
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// usage counts the answer's tokens.
func (p *simPlan) usage() *chat.Usage {
	out := tokens.Count(strings.Join(p.pieces, ""))
	return &chat.Usage{PromptTokens: p.prompt, CompletionTokens: out, TotalTokens: p.prompt + out}
}

func (s *Simulator) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	start := time.Now()
	p, err := s.plan(req)
	if err != nil {
		return nil, err
	}
	if p.outcome == simTimeout {
		return nil, s.fail(ctx, p)
	}
	if err := sleep(ctx, p.ttft); err != nil {
		return nil, provider.TransportError(ctx, err, provider.KindTimeout)
	}
	if err := s.fail(ctx, p); err != nil {
		return nil, err
	}
	n := len(p.pieces)
	if p.outcome == simCut {
		n = p.cutAt
	}
	// The whole answer is generated before it is sent.
	if err := sleep(ctx, time.Duration(n)*p.interval); err != nil {
		return nil, provider.TransportError(ctx, err, provider.KindTimeout)
	}
	if p.outcome == simCut {
		return nil, &provider.Error{Kind: provider.KindCut, Message: "simulated connection loss mid-answer"}
	}
	msg := chat.Message{Role: "assistant"}
	text := strings.Join(p.pieces, "")
	if p.tool != nil {
		tc := *p.tool
		tc.Function.Arguments = text
		msg.ToolCalls = []chat.ToolCall{tc}
	} else {
		msg.Content = chat.Text(text)
	}
	return &chat.Response{
		ID:      p.id,
		Object:  chat.ObjectCompletion,
		Created: start.Unix(),
		Model:   req.Model,
		Choices: []chat.Choice{{Message: msg, FinishReason: p.finish}},
		// Say plainly that no model wrote this.
		SystemFingerprint: Fingerprint,
		Usage:             p.usage(),
	}, nil
}

func (s *Simulator) Stream(ctx context.Context, req *chat.Request) (provider.Stream, error) {
	p, err := s.plan(req)
	if err != nil {
		return nil, err
	}
	if p.outcome == simTimeout {
		return nil, s.fail(ctx, p)
	}
	start := time.Now()
	if err := sleep(ctx, p.ttft); err != nil {
		return nil, provider.TransportError(ctx, err, provider.KindTimeout)
	}
	if err := s.fail(ctx, p); err != nil {
		return nil, err
	}
	if p.outcome == simCut && p.cutAt == 0 {
		return nil, &provider.Error{Kind: provider.KindCut, Message: "simulated connection loss before the first token"}
	}
	return &simStream{ctx: ctx, plan: p, model: req.Model, first: start.Add(p.ttft)}, nil
}

// simStream yields a plan's pieces on their schedule: piece i at the time to
// first token plus i token intervals, then the finish chunk and the usage
// chunk.
type simStream struct {
	ctx    context.Context
	plan   *simPlan
	model  string
	first  time.Time
	next   int // next piece; len(pieces) is the finish chunk, +1 the usage chunk
	closed atomic.Bool
}

// errStreamClosed is what Recv returns after Close.
var errStreamClosed = errors.New("stream closed")

func (s *simStream) chunk(delta chat.Delta, finish *string) *chat.Chunk {
	return &chat.Chunk{ID: s.plan.id, Object: chat.ObjectChunk, Created: s.first.Unix(), Model: s.model,
		Choices: []chat.ChunkChoice{{Delta: delta, FinishReason: finish}}}
}

func (s *simStream) Recv() (*chat.Chunk, error) {
	if s.closed.Load() {
		return nil, errStreamClosed
	}
	p := s.plan
	i := s.next
	switch {
	case p.outcome == simCut && i == p.cutAt:
		return nil, &provider.Error{Kind: provider.KindCut, Message: "simulated connection loss mid-answer"}
	case i < len(p.pieces):
		if err := sleep(s.ctx, time.Until(s.first.Add(time.Duration(i)*p.interval))); err != nil {
			return nil, provider.MidStreamError(s.ctx, err)
		}
		s.next++
		var d chat.Delta
		if i == 0 {
			d.Role = "assistant"
		}
		piece := p.pieces[i]
		if p.tool != nil {
			idx := 0
			tc := chat.ToolCall{Index: &idx, Function: chat.FunctionCall{Arguments: piece}}
			if i == 0 {
				tc.ID, tc.Type, tc.Function.Name = p.tool.ID, p.tool.Type, p.tool.Function.Name
			}
			d.ToolCalls = []chat.ToolCall{tc}
		} else {
			d.Content = &piece
		}
		return s.chunk(d, nil), nil
	case i == len(p.pieces):
		s.next++
		finish := p.finish
		return s.chunk(chat.Delta{}, &finish), nil
	case i == len(p.pieces)+1:
		s.next++
		c := s.chunk(chat.Delta{}, nil)
		c.Choices = []chat.ChunkChoice{}
		c.Usage = p.usage()
		return c, nil
	}
	return nil, io.EOF
}

func (s *simStream) Close() error {
	s.closed.Store(true)
	return nil
}
