// Package dataset is the evaluation dataset: a named set of cases, each
// with its input (template variables or chat messages), optional expected
// output, tags, criticality, expected retrieval sources and tool calls,
// and assertions. It parses the YAML and JSONL files users write, strictly
// and with errors that name the file, line and field; it keeps every size
// within limits; and it names a dataset's content by a hash, so that
// pushing unchanged content makes no new version.
//
// The types are plain JSON-able values whose Check validates them against
// the limits, so that they can travel in a replicated command and be
// checked again on every replica.
package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"gantry/eval/assert"
)

// Limits of a dataset.
const (
	MaxCases        = 2000     // cases in one dataset
	MaxCaseBytes    = 32 << 10 // one case, encoded as JSON
	MaxDatasetBytes = 2 << 20  // a whole dataset, encoded as JSON
	MaxFileBytes    = 4 << 20  // a file as read, comments and all
	MaxAssertions   = 32       // per case, and at the top of a dataset
	MaxStringBytes  = 16 << 10 // expected output, one message's content
	MaxMessages     = 64
	MaxVars         = 64 // top-level variables of one case
	MaxDepth        = 8  // nesting of variable values
	MaxTags         = 16
	MaxTagBytes     = 64
	MaxSources      = 32
	MaxSourceBytes  = 256
	MaxToolCalls    = 16
	MaxIDBytes      = 128
	MaxNameBytes    = 64
	MaxDescBytes    = 1 << 10
)

// Dataset is a named set of cases. Assert applies to every case, before
// the case's own assertions.
type Dataset struct {
	Name        string        `yaml:"name" json:"name"`
	Description string        `yaml:"description" json:"description,omitempty"`
	Assert      []assert.Spec `yaml:"assert" json:"assert,omitempty"`
	Cases       []Case        `yaml:"cases" json:"cases"`
}

// Case is one input to run and what its answer must satisfy.
type Case struct {
	// ID names the case across versions, for pairing runs and resuming
	// them. Unset in a file, it is derived from the case's content.
	ID          string         `yaml:"id" json:"id"`
	Description string         `yaml:"description" json:"description,omitempty"`
	Vars        map[string]any `yaml:"vars" json:"vars"` // {} is a case without variables, nil one with messages
	Messages    []Message      `yaml:"messages" json:"messages,omitempty"`
	Expected    *string        `yaml:"expected" json:"expected,omitempty"`
	Tags        []string       `yaml:"tags" json:"tags,omitempty"`
	// Critical cases must pass for a candidate not to be a regression,
	// whatever the averages say.
	Critical bool          `yaml:"critical" json:"critical,omitempty"`
	Assert   []assert.Spec `yaml:"assert" json:"assert,omitempty"`
	// Sources are the documents (or "document#chunk" ids) retrieval
	// should find for this case.
	Sources   []string              `yaml:"sources" json:"sources,omitempty"`
	ToolCalls []assert.ExpectedCall `yaml:"tool_calls" json:"tool_calls,omitempty"`
	// Trace is the production trace the case was made from, if any.
	Trace string `yaml:"trace" json:"trace,omitempty"`
}

// Message is a chat message of a case's input.
type Message struct {
	Role    string `yaml:"role" json:"role"`
	Content string `yaml:"content" json:"content"`
}

// Problem is one thing wrong with a dataset: the field's path, such as
// cases[3].assert[1].value, and why.
type Problem struct {
	Path   string
	Reason string
}

func (p Problem) Error() string {
	if p.Path == "" {
		return p.Reason
	}
	return p.Path + ": " + p.Reason
}

// Problems lists every problem found.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Error()
	}
	return strings.Join(s, "\n")
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	tagRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`)
	roles  = map[string]bool{"system": true, "user": true, "assistant": true}
)

// Check validates a complete dataset (as built by Parse, or decoded from
// a replicated command) against every limit. Case IDs must be set and
// unique.
func (d Dataset) Check() error {
	var ps Problems
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
	}
	switch {
	case d.Name == "":
		add("name", "a dataset needs a name")
	case len(d.Name) > MaxNameBytes || !nameRE.MatchString(d.Name):
		add("name", "%q is not a name: lower-case letters, digits, '.', '_' and '-', at most %d characters", clip(d.Name), MaxNameBytes)
	}
	checkText(add, "description", d.Description, MaxDescBytes)
	if len(d.Assert) > MaxAssertions {
		add("assert", "%d assertions, more than %d", len(d.Assert), MaxAssertions)
	}
	for i, s := range d.Assert {
		checkSpec(add, fmt.Sprintf("assert[%d]", i), s)
	}
	if len(d.Cases) == 0 {
		add("cases", "a dataset needs at least one case")
	}
	if len(d.Cases) > MaxCases {
		add("cases", "%d cases, more than %d", len(d.Cases), MaxCases)
		return ps // do not report on thousands of cases
	}
	ids := make(map[string]int, len(d.Cases))
	for i, c := range d.Cases {
		p := fmt.Sprintf("cases[%d]", i)
		c.check(add, p, d.Assert)
		if c.ID != "" {
			if j, dup := ids[c.ID]; dup {
				add(p+".id", "id %q is already the id of cases[%d]", c.ID, j)
			}
			ids[c.ID] = i
		}
		if len(ps) > 100 {
			add("", "more problems not shown")
			return ps
		}
	}
	if len(ps) == 0 {
		if b, err := json.Marshal(d); err != nil {
			add("", "does not encode as JSON: %v", err)
		} else if len(b) > MaxDatasetBytes {
			add("", "%d bytes as JSON, more than %d", len(b), MaxDatasetBytes)
		}
	}
	if len(ps) > 0 {
		return ps
	}
	return nil
}

func (c Case) check(add func(path, format string, args ...any), p string, shared []assert.Spec) {
	switch {
	case c.ID == "":
		add(p+".id", "a case needs an id")
	case len(c.ID) > MaxIDBytes || !printable(c.ID):
		add(p+".id", "id must be at most %d printable characters", MaxIDBytes)
	}
	checkText(add, p+".description", c.Description, MaxDescBytes)
	switch {
	case c.Vars == nil && len(c.Messages) == 0:
		add(p, "a case needs vars or messages")
	case c.Vars != nil && len(c.Messages) > 0:
		add(p, "a case has vars or messages, not both")
	}
	if len(c.Vars) > MaxVars {
		add(p+".vars", "%d variables, more than %d", len(c.Vars), MaxVars)
	}
	for k, v := range c.Vars {
		if k == "" || len(k) > MaxNameBytes {
			add(p+".vars", "variable name %q must be 1 to %d characters", clip(k), MaxNameBytes)
		}
		if depth(v) > MaxDepth {
			add(p+".vars."+k, "nested more than %d levels deep", MaxDepth)
		}
	}
	if len(c.Messages) > MaxMessages {
		add(p+".messages", "%d messages, more than %d", len(c.Messages), MaxMessages)
	}
	for i, m := range c.Messages {
		mp := fmt.Sprintf("%s.messages[%d]", p, i)
		if !roles[m.Role] {
			add(mp+".role", "role %q is not system, user or assistant", clip(m.Role))
		}
		if m.Content == "" {
			add(mp+".content", "a message needs content")
		}
		checkText(add, mp+".content", m.Content, MaxStringBytes)
	}
	if c.Expected != nil {
		checkText(add, p+".expected", *c.Expected, MaxStringBytes)
	}
	if len(c.Tags) > MaxTags {
		add(p+".tags", "%d tags, more than %d", len(c.Tags), MaxTags)
	}
	for i, t := range c.Tags {
		if len(t) > MaxTagBytes || !tagRE.MatchString(t) {
			add(fmt.Sprintf("%s.tags[%d]", p, i), "tag %q: letters, digits and . _ : / -, at most %d characters", clip(t), MaxTagBytes)
		}
	}
	if len(c.Assert) > MaxAssertions {
		add(p+".assert", "%d assertions, more than %d", len(c.Assert), MaxAssertions)
	}
	for i, s := range c.Assert {
		checkSpec(add, fmt.Sprintf("%s.assert[%d]", p, i), s)
	}
	if len(c.Sources) > MaxSources {
		add(p+".sources", "%d sources, more than %d", len(c.Sources), MaxSources)
	}
	for i, s := range c.Sources {
		if s == "" || len(s) > MaxSourceBytes || !printable(s) {
			add(fmt.Sprintf("%s.sources[%d]", p, i), "a source is 1 to %d printable characters", MaxSourceBytes)
		}
	}
	if len(c.ToolCalls) > MaxToolCalls {
		add(p+".tool_calls", "%d tool calls, more than %d", len(c.ToolCalls), MaxToolCalls)
	}
	for i, tc := range c.ToolCalls {
		tp := fmt.Sprintf("%s.tool_calls[%d]", p, i)
		if tc.Name == "" || len(tc.Name) > MaxNameBytes || !printable(tc.Name) {
			add(tp+".name", "a tool call needs the tool's name, at most %d characters", MaxNameBytes)
		}
		if depth(map[string]any(tc.Arguments)) > MaxDepth {
			add(tp+".arguments", "nested more than %d levels deep", MaxDepth)
		}
	}
	if len(c.Trace) > 64 || !printable(c.Trace) {
		add(p+".trace", "not a trace id")
	}
	// Assertions that need something of the case, wherever they come from.
	needs := func(where string, s assert.Spec) {
		base, _ := s.Kind()
		switch {
		case s.NeedsExpected() && c.Expected == nil:
			add(where, "%s has no value and compares with the expected output, which this case lacks", s.Type)
		case base == assert.Retrieval && len(c.Sources) == 0:
			add(where, "%s needs the case's expected sources", s.Type)
		case base == assert.ToolCall && s.Tool == "" && len(c.ToolCalls) == 0:
			add(where, "%s names no tool and the case expects no tool calls", s.Type)
		}
	}
	for i, s := range shared {
		needs(fmt.Sprintf("%s (assert[%d], for every case)", p, i), s)
	}
	for i, s := range c.Assert {
		needs(fmt.Sprintf("%s.assert[%d]", p, i), s)
	}
	if b, err := json.Marshal(c); err != nil {
		add(p, "does not encode as JSON: %v", err)
	} else if len(b) > MaxCaseBytes {
		add(p, "%d bytes as JSON, more than %d", len(b), MaxCaseBytes)
	}
}

func checkSpec(add func(path, format string, args ...any), p string, s assert.Spec) {
	if err := s.Check(); err != nil {
		if f, ok := err.(*assert.Field); ok {
			add(p+"."+f.Name, "%s", f.Reason)
			return
		}
		add(p, "%v", err)
	}
}

func checkText(add func(path, format string, args ...any), p, s string, limit int) {
	if len(s) > limit {
		add(p, "%d bytes, more than %d", len(s), limit)
	} else if !utf8.ValidString(s) {
		add(p, "not valid UTF-8")
	}
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return utf8.ValidString(s)
}

// depth is how deeply v nests lists and mappings: 0 for a scalar.
func depth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

func clip(s string) string {
	if len(s) <= 40 {
		return s
	}
	s = s[:40]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// Hash names the dataset's content: the SHA-256 of its JSON encoding,
// which is canonical (struct fields in order, map keys sorted, numbers as
// encoding/json writes them) once values are normalised as Parse does. Two
// pushes of the same content, from YAML or JSONL, hash alike.
func (d Dataset) Hash() string {
	b, err := json.Marshal(d)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// caseID derives an id from a case's content (its id unset).
func caseID(c Case) string {
	c.ID = ""
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return "c-" + hex.EncodeToString(sum[:6])
}

// Tags counts the cases of each tag.
func (d Dataset) Tags() map[string]int {
	out := map[string]int{}
	for _, c := range d.Cases {
		for _, t := range c.Tags {
			out[t]++
		}
	}
	return out
}

// Critical counts the critical cases.
func (d Dataset) Critical() int {
	n := 0
	for _, c := range d.Cases {
		if c.Critical {
			n++
		}
	}
	return n
}

// AddCase returns d with c appended, its id derived if unset, checked as a
// whole: a case whose id is taken is refused.
func (d Dataset) AddCase(c Case) (Dataset, error) {
	if err := normalizeCase(&c); err != nil {
		return d, err
	}
	if c.ID == "" {
		c.ID = caseID(c)
	}
	out := d
	out.Cases = append(append(make([]Case, 0, len(d.Cases)+1), d.Cases...), c)
	if err := out.Check(); err != nil {
		return d, err
	}
	return out, nil
}

// Input is the case's input as one text, for judges and listings.
func (c Case) Input() string {
	if len(c.Messages) > 0 {
		var b strings.Builder
		for _, m := range c.Messages {
			b.WriteString(m.Role)
			b.WriteString(": ")
			b.WriteString(m.Content)
			b.WriteByte('\n')
		}
		return b.String()
	}
	b, _ := json.Marshal(c.Vars)
	return string(b)
}

// AssertCase is what assertions need to know of the case.
func (c Case) AssertCase() assert.Case {
	return assert.Case{Input: c.Input(), Expected: c.Expected, Sources: c.Sources, ToolCalls: c.ToolCalls}
}
