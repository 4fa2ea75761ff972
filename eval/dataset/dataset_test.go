package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/trace"
)

const smoke = `name: support-smoke
assert:                       # applied to every case
  - {type: is-json}
cases:
  - vars: {question: "Where is my order?"}
    critical: true
    assert:
      - {type: icontains, value: "order"}
      - {type: latency, max_ms: 5000}
  - id: refund-window
    messages:
      - {role: user, content: "How long do I have to return a jacket?"}
    expected: "30 days"
    tags: [returns, policy]
    sources: [returns-policy]
    assert:
      - {type: levenshtein, threshold: 0.5}
      - {type: retrieval, k: 3}
  - vars: {question: "Cancel order A-17", count: 2}
    tool_calls: [{name: cancel_order, arguments: {order_id: "A-17"}}]
    assert: [{type: tool-call}]
`

func parse(t *testing.T, file, src string) Dataset {
	t.Helper()
	d, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return d
}

func TestParseIssueExample(t *testing.T) {
	d := parse(t, "smoke.yaml", smoke)
	if d.Name != "support-smoke" || len(d.Assert) != 1 || len(d.Cases) != 3 {
		t.Fatalf("parsed %+v", d)
	}
	c := d.Cases[0]
	if !c.Critical || c.Vars["question"] != "Where is my order?" || len(c.Assert) != 2 || c.Assert[1].MaxMs != 5000 {
		t.Fatalf("case 0: %+v", c)
	}
	if !strings.HasPrefix(c.ID, "c-") || len(c.ID) != 14 {
		t.Fatalf("derived id %q, want c- and 12 hex digits", c.ID)
	}
	if d.Cases[1].ID != "refund-window" || *d.Cases[1].Expected != "30 days" {
		t.Fatalf("case 1: %+v", d.Cases[1])
	}
	if got := d.Cases[2].Vars["count"]; got != float64(2) {
		t.Fatalf("YAML 2 normalised to %T %v, want float64 2", got, got)
	}
	if d.Critical() != 1 || d.Tags()["returns"] != 1 {
		t.Fatalf("critical %d, tags %v", d.Critical(), d.Tags())
	}
	if !strings.HasPrefix(d.Hash(), "sha256:") {
		t.Fatalf("hash %q", d.Hash())
	}
}

// The same content written as YAML and as JSONL is the same dataset.
func TestYAMLAndJSONLHashAlike(t *testing.T) {
	y := parse(t, "smoke.yaml", smoke)
	var b strings.Builder
	hdr, _ := json.Marshal(map[string]any{"name": y.Name, "assert": y.Assert})
	b.Write(hdr)
	b.WriteString("\n\n")
	for _, c := range y.Cases {
		line, _ := json.Marshal(c)
		b.Write(line)
		b.WriteByte('\n')
	}
	j := parse(t, "smoke.jsonl", b.String())
	if j.Hash() != y.Hash() {
		t.Fatalf("JSONL hash %s, YAML hash %s", j.Hash(), y.Hash())
	}
	// A comment or a reordered key changes nothing; a changed value does.
	if again := parse(t, "smoke.yaml", "# the smoke set\n"+smoke); again.Hash() != y.Hash() {
		t.Fatal("a comment changed the hash")
	}
	if changed := parse(t, "smoke.yaml", strings.Replace(smoke, "5000", "4000", 1)); changed.Hash() == y.Hash() {
		t.Fatal("a changed latency bound kept the hash")
	}
}

// JSONL without a header takes its name from the file.
func TestJSONLNameFromFile(t *testing.T) {
	d := parse(t, "/tmp/checkout-flow.jsonl", `{"vars": {"q": "hi"}, "assert": [{"type": "contains", "value": "hello"}]}`+"\n")
	if d.Name != "checkout-flow" || len(d.Cases) != 1 {
		t.Fatalf("parsed %+v", d)
	}
}

// Every problem names the file, the line and the field.
func TestParseErrorsNameFileLineAndField(t *testing.T) {
	tests := []struct {
		name, file, src string
		want            []string
	}{
		{"unknown field", "d.yaml", "name: x\ncases:\n  - vars: {a: 1}\n    expect: \"y\"\n",
			[]string{`d.yaml:4: cases[0].expect: unknown field "expect"`}},
		{"bad assertion field", "d.yaml", "name: x\ncases:\n  - vars: {a: 1}\n    assert:\n      - {type: latency, max_ms: -1}\n",
			[]string{"d.yaml:5: cases[0].assert[0].max_ms: latency needs max_ms between"}},
		{"unknown assertion", "d.yaml", "name: x\ncases:\n  - vars: {a: 1}\n    assert:\n      - {type: contain, value: a}\n",
			[]string{`d.yaml:5: cases[0].assert[0].type: unknown assertion type "contain"`}},
		{"wrong shape", "d.yaml", "name: x\ncases:\n  - vars: [1, 2]\n",
			[]string{"d.yaml:3: cases[0].vars: want a mapping, found a list"}},
		{"no input", "d.yaml", "name: x\ncases:\n  - expected: y\n",
			[]string{"d.yaml:3: cases[0]: a case needs vars or messages"}},
		{"both inputs", "d.yaml", "name: x\ncases:\n  - vars: {a: 1}\n    messages: [{role: user, content: hi}]\n",
			[]string{"d.yaml:3: cases[0]: a case has vars or messages, not both"}},
		{"bad role", "d.yaml", "name: x\ncases:\n  - messages:\n      - {role: robot, content: hi}\n",
			[]string{`d.yaml:4: cases[0].messages[0].role: role "robot" is not system, user or assistant`}},
		{"needs expected", "d.yaml", "name: x\nassert: [{type: levenshtein}]\ncases:\n  - vars: {a: 1}\n",
			[]string{"d.yaml:4: cases[0] (assert[0], for every case): levenshtein has no value and compares with the expected output"}},
		{"needs sources", "d.yaml", "name: x\ncases:\n  - vars: {a: 1}\n    assert: [{type: retrieval}]\n",
			[]string{"d.yaml:4: cases[0].assert[0]: retrieval needs the case's expected sources"}},
		{"duplicate id", "d.yaml", "name: x\ncases:\n  - {id: a, vars: {q: 1}}\n  - {id: a, vars: {q: 2}}\n",
			[]string{`d.yaml:4: cases[1].id: id "a" is already the id of cases[0]`}},
		{"identical cases", "d.yaml", "name: x\ncases:\n  - vars: {q: 1}\n  - vars: {q: 1}\n",
			[]string{"d.yaml:4: cases[1].id: id"}},
		{"bad name", "d.yaml", "name: Support Smoke\ncases:\n  - vars: {q: 1}\n",
			[]string{`d.yaml:1: name: "Support Smoke" is not a name`}},
		{"alias", "d.yaml", "name: x\ncases:\n  - vars: &v {q: 1}\n  - vars: *v\n",
			[]string{"d.yaml:4: cases[1].vars: YAML aliases are not allowed"}},
		{"repeated key", "d.yaml", "name: x\ncases:\n  - vars: {q: 1, q: 2}\n",
			[]string{"d.yaml:3"}},
		{"YAML syntax", "d.yaml", "name: x\ncases:\n  - vars: {q: 1\n",
			[]string{"d.yaml: "}},
		{"JSONL unknown field", "d.jsonl", `{"name": "x"}` + "\n" + `{"vars": {"q": 1}}` + "\n" + `{"vars": {"q": 2}, "critcal": true}` + "\n",
			[]string{`d.jsonl:3: cases[1]: unknown field "critcal"`}},
		{"JSONL wrong type", "d.jsonl", `{"vars": {"q": 1}, "critical": "yes"}` + "\n",
			[]string{"d.jsonl:1: cases[0]: critical: want true or false, found a JSON string"}},
		{"JSONL not an object", "d.jsonl", `{"vars": {"q": 1}}` + "\n" + `[1,2]` + "\n",
			[]string{"d.jsonl:2: want one JSON object on the line"}},
		{"JSONL late header", "d.jsonl", `{"vars": {"q": 1}}` + "\n" + `{"name": "x"}` + "\n",
			[]string{"d.jsonl:2: name: the header line"}},
		{"JSONL check with line", "d.jsonl", `{"name": "x"}` + "\n" + `{"vars": {"q": 1}}` + "\n" + `{"vars": {"q": 2}, "assert": [{"type": "regex", "value": "(a"}]}` + "\n",
			[]string{"d.jsonl:3: cases[1].assert[0].value: regex:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.file, []byte(tt.src))
			if err == nil {
				t.Fatal("parsed without error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error\n%v\ndoes not say\n%s", err, w)
				}
			}
			var p config.Problem
			if !errors.As(err, &p) || p.File != tt.file {
				t.Fatalf("error is not a config.Problem of %s: %#v", tt.file, err)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("name: big\ncases:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - vars: {q: %d}\n", i)
		}
		return b.String()
	}
	if _, err := Parse("ok.yaml", []byte(many(MaxCases))); err != nil {
		t.Fatalf("%d cases refused: %v", MaxCases, err)
	}
	tests := []struct{ name, file, src, want string }{
		{"too many cases", "d.yaml", many(MaxCases + 1), fmt.Sprintf("more than %d", MaxCases)},
		{"case too big", "d.yaml", "name: x\ncases:\n  - vars: {q: \"" + strings.Repeat("a", MaxCaseBytes) + "\"}\n", fmt.Sprintf("more than %d", MaxCaseBytes)},
		{"JSONL line too long", "d.jsonl", `{"vars": {"q": "` + strings.Repeat("a", MaxCaseBytes+10) + `"}}` + "\n", "longer than the limit"},
		{"expected too long", "d.yaml", "name: x\ncases:\n  - vars: {q: 1}\n    expected: \"" + strings.Repeat("a", MaxStringBytes+1) + "\"\n", "cases[0].expected"},
		{"too many assertions", "d.yaml", "name: x\ncases:\n  - vars: {q: 1}\n    assert: [" + strings.Repeat("{type: is-json},", MaxAssertions+1) + "]\n", "cases[0].assert: 33 assertions"},
		{"too deep", "d.yaml", "name: x\ncases:\n  - vars: {q: " + strings.Repeat("[", 10) + strings.Repeat("]", 10) + "}\n", "nested more than"},
		{"too many tags", "d.yaml", "name: x\ncases:\n  - vars: {q: 1}\n    tags: [" + strings.Repeat("t,", MaxTags+1) + "]\n", "tags"},
		{"file too big", "d.yaml", strings.Repeat("#", MaxFileBytes+1), "more than the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.file, []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %.300v, want …%s…", err, tt.want)
			}
		})
	}
	// The whole dataset is bounded too: 2,000 cases near the case limit.
	var b strings.Builder
	b.WriteString("name: heavy\ncases:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  - vars: {q: %d, pad: \"%s\"}\n", i, strings.Repeat("x", 30<<10))
	}
	if _, err := Parse("heavy.yaml", []byte(b.String())); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d", MaxDatasetBytes)) {
		t.Fatalf("3 MB dataset: got %.200v", err)
	}
}

func TestLoadReadsFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "smoke.yaml")
	if err := os.WriteFile(path, []byte(smoke), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Load(path)
	if err != nil || len(d.Cases) != 3 {
		t.Fatalf("Load: %v, %d cases", err, len(d.Cases))
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("loaded a missing file")
	}
}

func TestPushMakesVersionsOnlyOnChange(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := parse(t, "smoke.yaml", smoke)
	var c Catalog
	c, v1, changed, err := c.Push(d, t0)
	if err != nil || !changed || v1.Version != 1 || v1.Hash != d.Hash() {
		t.Fatalf("first push: %+v changed=%v err=%v", v1, changed, err)
	}
	same := parse(t, "smoke.yaml", "# edited comment only\n"+smoke)
	c2, v, changed, err := c.Push(same, t0.Add(time.Hour))
	if err != nil || changed || v.Version != 1 || len(c2["support-smoke"]) != 1 {
		t.Fatalf("unchanged push: version %d changed=%v err=%v", v.Version, changed, err)
	}
	edited := parse(t, "smoke.yaml", strings.Replace(smoke, "critical: true", "critical: false", 1))
	c3, v2, changed, err := c.Push(edited, t0.Add(2*time.Hour))
	if err != nil || !changed || v2.Version != 2 {
		t.Fatalf("changed push: %+v changed=%v err=%v", v2, changed, err)
	}
	if len(c["support-smoke"]) != 1 {
		t.Fatal("Push changed the catalog it was called on")
	}
	if got, ok := c3["support-smoke"].Get(1); !ok || got.Hash != v1.Hash {
		t.Fatal("version 1 lost")
	}
	if err := c3.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	// Only MaxVersions are kept.
	h := c3["support-smoke"]
	for i := range MaxVersions + 3 {
		next := edited
		next.Description = fmt.Sprintf("edit %d", i)
		h, _, _, err = h.Push(next, t0)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(h) != MaxVersions || h[0].Version != 2+3+1 {
		t.Fatalf("kept %d versions from v%d", len(h), h[0].Version)
	}
	// A tampered replicated history is refused.
	bad := h
	bad[0].Dataset.Description = "tampered"
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "hashes to") {
		t.Fatalf("tampered history: %v", err)
	}
}

func TestCatalogBounds(t *testing.T) {
	c := Catalog{}
	for i := range MaxDatasets {
		d := parse(t, "x.yaml", fmt.Sprintf("name: set-%d\ncases: [{vars: {q: 1}}]\n", i))
		var err error
		if c, _, _, err = c.Push(d, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	d := parse(t, "x.yaml", "name: one-more\ncases: [{vars: {q: 1}}]\n")
	if _, _, _, err := c.Push(d, time.Time{}); err == nil {
		t.Fatalf("dataset %d accepted", MaxDatasets+1)
	}
}

func TestAddCase(t *testing.T) {
	d := parse(t, "smoke.yaml", smoke)
	d2, err := d.AddCase(Case{Vars: map[string]any{"question": "Is it raining?"}})
	if err != nil || len(d2.Cases) != 4 || len(d.Cases) != 3 || d2.Cases[3].ID == "" {
		t.Fatalf("AddCase: %v", err)
	}
	if _, err := d2.AddCase(Case{ID: "refund-window", Vars: map[string]any{"q": 1}}); err == nil {
		t.Fatal("a case with a taken id was added")
	}
}

func TestFromTrace(t *testing.T) {
	score := 0.0
	tr := &trace.Trace{
		ID:      "4bf92f3577b34da6a3ce929d0e0e4736",
		Start:   time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC),
		Release: "support-answer@v2",
		Input:   "system: You are a support agent.\nAnswer briefly.\nuser: Customer [NAME_1] asks: where is order A-17?\nIt was due Monday.\n",
		Feedback: []trace.Feedback{
			{Thumbs: "down", Score: &score},
			{Correction: "Order A-17 left the warehouse on Tuesday; it arrives Thursday."},
		},
	}
	c, err := FromTrace(tr)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "trace-4bf92f3577b34da6" || c.Trace != tr.ID {
		t.Fatalf("id %q trace %q", c.ID, c.Trace)
	}
	if len(c.Messages) != 1 || c.Messages[0].Role != "user" || c.Messages[0].Content != "Customer [NAME_1] asks: where is order A-17?\nIt was due Monday." {
		t.Fatalf("messages %+v", c.Messages)
	}
	if c.Expected == nil || *c.Expected != tr.Feedback[1].Correction {
		t.Fatalf("expected %v", c.Expected)
	}
	if strings.Join(c.Tags, ",") != "from-trace,thumbs-down,corrected" {
		t.Fatalf("tags %v", c.Tags)
	}

	// Variables kept by the trace are preferred to the prompt.
	tr.Attrs = map[string]string{VarsAttr: `{"customer": "Ann", "question": "where is A-17?"}`}
	c, err = FromTrace(tr)
	if err != nil || c.Vars["customer"] != "Ann" || c.Messages != nil {
		t.Fatalf("with vars: %+v, %v", c, err)
	}
	// The case joins a dataset.
	d := parse(t, "smoke.yaml", smoke)
	if _, err := d.AddCase(c); err != nil {
		t.Fatalf("add the trace's case: %v", err)
	}

	for _, bad := range []struct{ input, want string }{
		{"", "prompt is empty"},
		{"user: " + strings.Repeat("a", 100) + "…", "only the start"},
		{"system: only instructions\n", "only system instructions"},
		{"user: hi\ntool: {\"ok\":true}\n", "tool results"},
		{"hello\n", "does not start with a role"},
	} {
		_, err := FromTrace(&trace.Trace{ID: "abc", Input: bad.input})
		if !errors.Is(err, ErrTraceInput) || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("input %.30q: got %v, want …%s…", bad.input, err, bad.want)
		}
	}
}
