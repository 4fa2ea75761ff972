package assert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/agnivade/levenshtein"
	"github.com/theory/jsonpath"

	"gantry/pipeline/chat"
	"gantry/pipeline/trace"
	"gantry/pipeline/validate"
)

// Output is what the release answered for one case, as the runner saw it.
type Output struct {
	Text      string         `json:"text"`
	ToolCalls []Call         `json:"tool_calls,omitempty"`
	LatencyMs float64        `json:"latency_ms"`
	CostUSD   float64        `json:"cost_usd"`
	Sources   []trace.Source `json:"sources,omitempty"` // retrieved, best first
	// Context is the retrieved context the model was given, for the
	// faithfulness rubric.
	Context string `json:"-"`
}

// Call is a tool call in an output: the tool's name and its arguments as
// the model encoded them.
type Call struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ExpectedCall is a tool call a case expects: the tool, and optionally a
// subset of its arguments that must be equal.
type ExpectedCall struct {
	Name      string         `yaml:"name" json:"name"`
	Arguments map[string]any `yaml:"arguments" json:"arguments,omitempty"`
}

// Case is what assertions need to know of the case they judge.
type Case struct {
	Input     string         // the case's input as text, for judges
	Expected  *string        // expected output, if the case has one
	Sources   []string       // expected retrieval sources, documents or chunk ids
	ToolCalls []ExpectedCall // expected tool calls
}

// Result is one assertion's verdict on one output.
type Result struct {
	Type string `json:"type"`
	Pass bool   `json:"pass"`
	// Score is in 0..1 for kinds that grade (levenshtein, similar,
	// rubrics, retrieval); nil for the others.
	Score  *float64 `json:"score,omitempty"`
	Reason string   `json:"reason,omitempty"`
	// Error is set when the assertion could not be evaluated (a judge
	// failed, say); Pass is then false and the case counts as an error,
	// not a failure.
	Error string `json:"error,omitempty"`
	// CostUSD is what judging cost: a judge's call or an embedding.
	CostUSD float64 `json:"cost_usd,omitempty"`
}

// Judge grades an output with a model. The runner's Judge calls a judge
// model through the gateway, so its cost is tracked and budgeted.
type Judge interface {
	Grade(ctx context.Context, g Grading) (Grade, error)
}

// Grading is what a judge is asked.
type Grading struct {
	Kind    string `json:"kind"`    // llm-rubric or faithfulness
	Rubric  string `json:"rubric"`  // what a good answer does
	Input   string `json:"input"`   // the case's input
	Output  string `json:"output"`  // the answer to grade
	Context string `json:"context"` // retrieved context, for faithfulness
}

// Grade is a judge's answer.
type Grade struct {
	Score   float64 // 0..1
	Reason  string
	CostUSD float64
}

// Embedder turns texts into embedding vectors, one per text, in order.
type Embedder interface {
	Embed(ctx context.Context, texts []string) (vecs [][]float64, costUSD float64, err error)
}

// Env is what a run gives assertions beyond the case and the output. Any
// field may be nil: an assertion that needs a missing one reports an
// error.
type Env struct {
	Judge    Judge
	Embedder Embedder
	// Tools are the release's tools; with them tool-call checks each
	// call's arguments against the tool's parameter schema.
	Tools *validate.Tools
}

// Assertion is a compiled Spec.
type Assertion struct {
	spec    Spec
	base    string
	negated bool
	re      *regexp.Regexp
	schema  *validate.Schema
	path    *jsonpath.Path
	value   any // normalised JSON value for equals and json-path
	strs    []string
}

// Spec returns what the assertion was compiled from.
func (a *Assertion) Spec() Spec { return a.spec }

// Compiler compiles specs, sharing the compiled form of identical JSON
// Schemas so that a schema every case uses compiles once per run. It is
// safe for concurrent use.
type Compiler struct {
	mu      sync.Mutex
	schemas map[string]*validate.Schema
}

// NewCompiler returns an empty Compiler.
func NewCompiler() *Compiler { return &Compiler{schemas: map[string]*validate.Schema{}} }

// Compile checks and compiles a spec.
func (c *Compiler) Compile(s Spec) (*Assertion, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	a := &Assertion{spec: s}
	a.base, a.negated = s.Kind()
	var err error
	switch a.base {
	case Regex:
		a.re = regexp.MustCompile(s.Value.(string)) // Check compiled it
	case Contains, IContains, StartsWith:
		a.strs = []string{s.Value.(string)}
	case ContainsAny, ContainsAll, IContainsAny, IContainsAll:
		for _, v := range s.Value.([]any) {
			a.strs = append(a.strs, v.(string))
		}
	case JSONSchema:
		if a.schema, err = c.schema(s.Value); err != nil {
			return nil, bad("value", "%v", err)
		}
	case JSONPath:
		a.path = jsonpath.MustParse(s.Path) // Check parsed it
		if s.Value != nil {
			a.value, _ = normalize(s.Value)
		}
	case Equals:
		if s.Value != nil {
			a.value, _ = normalize(s.Value)
		}
	}
	return a, nil
}

func (c *Compiler) schema(v any) (*validate.Schema, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.schemas[string(b)]; ok {
		return s, nil
	}
	s, err := validate.Compile(json.RawMessage(b))
	if err != nil {
		return nil, err
	}
	c.schemas[string(b)] = s
	return s, nil
}

// normalize turns a decoded YAML or JSON value into the form
// encoding/json decodes into, so that 1 (YAML int) equals 1.0 (JSON).
func normalize(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Eval judges out for case c. It never panics on odd output; a context
// that ends while a judge is called yields an error result.
func (a *Assertion) Eval(ctx context.Context, env Env, c Case, out Output) Result {
	r := a.eval(ctx, env, c, out)
	r.Type = a.spec.Type
	if r.Error != "" {
		r.Pass, r.Score = false, nil
		return r
	}
	if a.negated {
		r.Pass = !r.Pass
		if r.Score != nil {
			s := 1 - *r.Score
			r.Score = &s
		}
		if r.Pass {
			r.Reason = ""
		} else {
			r.Reason = "negated assertion holds: " + strings.TrimPrefix(a.spec.Type, Not) + " passed"
		}
	}
	return r
}

func pass(ok bool, reason string, args ...any) Result {
	if ok {
		return Result{Pass: true}
	}
	return Result{Reason: fmt.Sprintf(reason, args...)}
}

func scored(score, threshold float64, reason string) Result {
	score = min(max(score, 0), 1)
	r := Result{Score: &score, Pass: score >= threshold}
	if !r.Pass {
		r.Reason = fmt.Sprintf("score %.3f below %.3f", score, threshold)
		if reason != "" {
			r.Reason += ": " + reason
		}
	}
	return r
}

func errResult(format string, args ...any) Result {
	return Result{Error: fmt.Sprintf(format, args...)}
}

// expected is the spec's string value or the case's expected output.
func (a *Assertion) expected(c Case) (string, bool) {
	if s, ok := a.spec.Value.(string); ok {
		return s, true
	}
	if c.Expected != nil {
		return *c.Expected, true
	}
	return "", false
}

func (a *Assertion) eval(ctx context.Context, env Env, c Case, out Output) Result {
	text := out.Text
	switch a.base {
	case Equals:
		if a.value == nil {
			want, ok := a.expected(c)
			if !ok {
				return errResult("equals has no value and the case no expected output")
			}
			return pass(text == want, "output %s differs from %s", quote(text), quote(want))
		}
		if want, ok := a.value.(string); ok {
			return pass(text == want, "output %s differs from %s", quote(text), quote(want))
		}
		got, err := decodeOutput(text)
		if err != nil {
			return pass(false, "output is not JSON to compare: %v", err)
		}
		return pass(reflect.DeepEqual(got, a.value), "output JSON differs from the expected value")
	case Contains:
		return pass(strings.Contains(text, a.strs[0]), "output does not contain %s", quote(a.strs[0]))
	case IContains:
		return pass(containsFold(text, a.strs[0]), "output does not contain %s in any case", quote(a.strs[0]))
	case ContainsAny, IContainsAny:
		for _, s := range a.strs {
			if a.contains(text, s) {
				return Result{Pass: true}
			}
		}
		return pass(false, "output contains none of %d values", len(a.strs))
	case ContainsAll, IContainsAll:
		for _, s := range a.strs {
			if !a.contains(text, s) {
				return pass(false, "output does not contain %s", quote(s))
			}
		}
		return Result{Pass: true}
	case StartsWith:
		return pass(strings.HasPrefix(text, a.strs[0]), "output does not start with %s", quote(a.strs[0]))
	case Regex:
		return pass(a.re.MatchString(text), "output does not match %s", quote(a.re.String()))
	case IsJSON:
		_, err := decodeOutput(text)
		return pass(err == nil, "output is not JSON: %v", err)
	case JSONSchema:
		v, err := decodeOutput(text)
		if err != nil {
			return pass(false, "output is not JSON: %v", err)
		}
		fs := a.schema.ValidateValue(v)
		if len(fs) == 0 {
			return Result{Pass: true}
		}
		return pass(false, "%s", strings.Join(validate.Strings(fs), "; "))
	case JSONPath:
		v, err := decodeOutput(text)
		if err != nil {
			return pass(false, "output is not JSON: %v", err)
		}
		nodes := a.path.Select(v)
		if len(nodes) == 0 {
			return pass(false, "%s selects nothing", a.spec.Path)
		}
		if a.value == nil {
			return Result{Pass: true}
		}
		got := any(nodes[0])
		if len(nodes) > 1 {
			got = []any(nodes)
		}
		return pass(reflect.DeepEqual(got, a.value), "%s is %s, want %s", a.spec.Path, short(got), short(a.value))
	case Levenshtein:
		want, ok := a.expected(c)
		if !ok {
			return errResult("levenshtein has no value and the case no expected output")
		}
		if utf8.RuneCountInString(text) > MaxLevenshteinRunes || utf8.RuneCountInString(want) > MaxLevenshteinRunes {
			return pass(false, "output or expected text longer than %d characters for an edit distance", MaxLevenshteinRunes)
		}
		return scored(Similarity(text, want), a.spec.threshold(DefaultLevenshtein), "")
	case Latency:
		return pass(out.LatencyMs <= a.spec.MaxMs, "latency %.0f ms over %.0f ms", out.LatencyMs, a.spec.MaxMs)
	case Cost:
		return pass(out.CostUSD <= a.spec.MaxUSD, "cost $%.6f over $%.6f", out.CostUSD, a.spec.MaxUSD)
	case LLMRubric, Faithfulness:
		return a.judge(ctx, env, c, out)
	case Retrieval:
		if len(c.Sources) == 0 {
			return errResult("retrieval: the case names no expected sources")
		}
		m := Retrieve(c.Sources, out.Sources, a.spec.K)
		r := scored(m.Recall, a.spec.threshold(DefaultRecall), fmt.Sprintf("found %d of %d expected sources in the top %d", m.Found, len(c.Sources), m.K))
		return r
	case ToolCall:
		return a.toolCalls(env, c, out)
	case Similar:
		want, ok := a.expected(c)
		if !ok {
			return errResult("similar has no value and the case no expected output")
		}
		if env.Embedder == nil {
			return errResult("similar: this run has no embedding model")
		}
		vecs, cost, err := env.Embedder.Embed(ctx, []string{text, want})
		if err != nil {
			return Result{Error: "similar: embed: " + err.Error(), CostUSD: cost}
		}
		if len(vecs) != 2 {
			return Result{Error: fmt.Sprintf("similar: embedder returned %d vectors for 2 texts", len(vecs)), CostUSD: cost}
		}
		cos, err := Cosine(vecs[0], vecs[1])
		if err != nil {
			return Result{Error: "similar: " + err.Error(), CostUSD: cost}
		}
		r := scored(cos, a.spec.threshold(DefaultSimilar), "")
		r.CostUSD = cost
		return r
	}
	return errResult("assertion type %q has no evaluator", a.spec.Type)
}

func (a *Assertion) contains(text, s string) bool {
	if a.base == IContainsAny || a.base == IContainsAll {
		return containsFold(text, s)
	}
	return strings.Contains(text, s)
}

func (a *Assertion) judge(ctx context.Context, env Env, c Case, out Output) Result {
	if env.Judge == nil {
		return errResult("%s: this run has no judge model", a.base)
	}
	g := Grading{Kind: a.base, Input: c.Input, Output: out.Text}
	if a.base == LLMRubric {
		g.Rubric = a.spec.Value.(string)
	} else {
		if strings.TrimSpace(out.Context) == "" {
			return errResult("faithfulness: the release retrieved no context for this case")
		}
		g.Context = out.Context
		g.Rubric = FaithfulnessRubric
	}
	gr, err := env.Judge.Grade(ctx, g)
	if err != nil {
		return Result{Error: a.base + ": judge: " + err.Error(), CostUSD: gr.CostUSD}
	}
	if math.IsNaN(gr.Score) || gr.Score < 0 || gr.Score > 1 {
		return Result{Error: fmt.Sprintf("%s: judge gave score %v outside 0..1", a.base, gr.Score), CostUSD: gr.CostUSD}
	}
	r := scored(gr.Score, a.spec.threshold(DefaultJudge), clipText(gr.Reason, 500))
	r.CostUSD = gr.CostUSD
	return r
}

func (a *Assertion) toolCalls(env Env, c Case, out Output) Result {
	want := c.ToolCalls
	if a.spec.Tool != "" {
		var args map[string]any
		if a.spec.Value != nil {
			args = a.spec.Value.(map[string]any)
		}
		want = []ExpectedCall{{Name: a.spec.Tool, Arguments: args}}
	}
	if len(want) == 0 {
		return errResult("tool-call names no tool and the case expects no tool calls")
	}
	for _, w := range want {
		var problems []string
		found := false
		for _, got := range out.ToolCalls {
			if got.Name != w.Name {
				continue
			}
			p := checkCall(env.Tools, got, w)
			if p == "" {
				found = true
				break
			}
			problems = append(problems, p)
		}
		if found {
			continue
		}
		if len(problems) > 0 {
			return pass(false, "%s called, but %s", w.Name, problems[0])
		}
		called := make([]string, len(out.ToolCalls))
		for i, g := range out.ToolCalls {
			called[i] = g.Name
		}
		if len(called) == 0 {
			return pass(false, "%s not called: no tool was called", w.Name)
		}
		return pass(false, "%s not called (called: %s)", w.Name, strings.Join(called, ", "))
	}
	return Result{Pass: true}
}

// checkCall says what is wrong with got, or "".
func checkCall(tools *validate.Tools, got Call, want ExpectedCall) string {
	if tools != nil {
		if fs := tools.Check(chat.ToolCall{Function: chat.FunctionCall{Name: got.Name, Arguments: got.Arguments}}); len(fs) > 0 {
			return "its arguments miss the tool's schema: " + strings.Join(validate.Strings(fs), "; ")
		}
	}
	raw := strings.TrimSpace(got.Arguments)
	if raw == "" {
		raw = "{}"
	}
	v, err := decodeOutput(raw)
	if err != nil {
		return "its arguments are not JSON: " + err.Error()
	}
	args, ok := v.(map[string]any)
	if !ok {
		return "its arguments are not a JSON object"
	}
	for k, wv := range want.Arguments {
		nv, _ := normalize(wv)
		if gv, ok := args[k]; !ok || !reflect.DeepEqual(gv, nv) {
			return fmt.Sprintf("argument %s is %s, want %s", k, short(args[k]), short(nv))
		}
	}
	return ""
}

// decodeOutput parses output as one JSON value within the validation
// limits (the gateway's own rule), with numbers as float64 so that it
// compares with dataset values.
func decodeOutput(text string) (any, error) {
	v, f := validate.Decode([]byte(text))
	if f != nil {
		return nil, errors.New(f.Reason)
	}
	return normalize(v)
}

// containsFold is a Unicode case-insensitive strings.Contains.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// Similarity is 1 minus the Levenshtein distance over the longer length,
// in characters: 1 for equal texts, 0 for nothing in common.
func Similarity(a, b string) float64 {
	n := max(utf8.RuneCountInString(a), utf8.RuneCountInString(b))
	if n == 0 {
		return 1
	}
	return 1 - float64(levenshtein.ComputeDistance(a, b))/float64(n)
}

// Cosine is the cosine similarity of two vectors, clamped to 0..1: an
// embedding pointing away counts as nothing in common.
func Cosine(a, b []float64) (float64, error) {
	if len(a) == 0 || len(a) != len(b) {
		return 0, fmt.Errorf("vectors of lengths %d and %d", len(a), len(b))
	}
	var dot, na, nb float64
	for i := range a {
		dot += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	if na == 0 || nb == 0 || math.IsNaN(dot) {
		return 0, errors.New("zero or invalid vector")
	}
	return min(max(dot/math.Sqrt(na*nb), 0), 1), nil
}

func quote(s string) string { return fmt.Sprintf("%q", clipText(s, 80)) }

func short(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return clipText(string(bytes.TrimSpace(b)), 80)
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
