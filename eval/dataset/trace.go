package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"gantry/pipeline/trace"
)

// VarsAttr is the trace attribute that holds a call's variables as JSON,
// for features that capture their inputs. FromTrace prefers it to the
// rendered prompt.
const VarsAttr = "gantry.vars"

// TraceTags are the tags FromTrace gives a case.
const (
	TagFromTrace    = "from-trace"
	TagThumbsDown   = "thumbs-down"
	TagCorrected    = "corrected"
	traceCaseIDHead = "trace-"
)

// ErrTraceInput is wrapped when a trace does not keep an input a case can
// replay.
var ErrTraceInput = errors.New("trace keeps no replayable input")

// FromTrace turns a production trace, say one a user gave a thumbs-down,
// into a case: its input is the call's variables when the trace kept them
// (attribute gantry.vars), else the messages the caller sent (the
// release's own system message dropped, since the release under test adds
// its own); its expected output is the latest correction among its
// feedback. The case is tagged from-trace, and thumbs-down or corrected as
// its feedback says. Inputs the gateway redacted stay redacted: a case
// never holds more than the trace did.
func FromTrace(t *trace.Trace) (Case, error) {
	if t == nil || t.ID == "" {
		return Case{}, errors.New("no trace")
	}
	c := Case{
		ID:    traceCaseIDHead + t.ID[:min(16, len(t.ID))],
		Trace: t.ID,
		Tags:  []string{TagFromTrace},
	}
	if t.Release != "" {
		c.Description = fmt.Sprintf("from trace %s served by %s at %s", t.ID, t.Release, t.Start.UTC().Format("2006-01-02 15:04:05Z"))
	}
	if raw, ok := t.Attrs[VarsAttr]; ok {
		var vars map[string]any
		if err := json.Unmarshal([]byte(raw), &vars); err != nil {
			return Case{}, fmt.Errorf("trace %s: attribute %s: %w", t.ID, VarsAttr, err)
		}
		if vars == nil {
			vars = map[string]any{}
		}
		c.Vars = vars
	} else {
		msgs, err := promptMessages(t.Input)
		if err != nil {
			return Case{}, fmt.Errorf("trace %s: %w", t.ID, err)
		}
		c.Messages = msgs
	}
	var down bool
	for _, f := range t.Feedback {
		if f.Correction != "" {
			corr := f.Correction
			c.Expected = &corr
		}
		switch f.Thumbs {
		case "down":
			down = true
		case "up":
			down = false
		}
	}
	if down {
		c.Tags = append(c.Tags, TagThumbsDown)
	}
	if c.Expected != nil {
		c.Tags = append(c.Tags, TagCorrected)
	}
	if err := normalizeCase(&c); err != nil {
		return Case{}, fmt.Errorf("trace %s: %w", t.ID, err)
	}
	var ps Problems
	c.check(func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
	}, "case", nil)
	if len(ps) > 0 {
		return Case{}, fmt.Errorf("trace %s: %w", t.ID, ps)
	}
	return c, nil
}

// roleHeads start a message in a trace's prompt text, which holds one
// "role: content" block a message, each ending in a newline.
var roleHeads = []string{"system: ", "user: ", "assistant: ", "tool: ", "developer: "}

// promptMessages reads the prompt text of a trace back into messages. A
// line that starts with a role and ": " starts a message; other lines
// continue the one before.
func promptMessages(input string) ([]Message, error) {
	if input == "" {
		return nil, fmt.Errorf("%w: its prompt is empty (the trace may have been trimmed)", ErrTraceInput)
	}
	if !strings.HasSuffix(input, "\n") {
		return nil, fmt.Errorf("%w: the trace kept only the start of a long prompt", ErrTraceInput)
	}
	var msgs []Message
	for line := range strings.SplitSeq(strings.TrimSuffix(input, "\n"), "\n") {
		started := false
		for _, h := range roleHeads {
			if rest, ok := strings.CutPrefix(line, h); ok {
				msgs = append(msgs, Message{Role: strings.TrimSuffix(h, ": "), Content: rest})
				started = true
				break
			}
		}
		if started {
			continue
		}
		if len(msgs) == 0 {
			return nil, fmt.Errorf("%w: its prompt does not start with a role", ErrTraceInput)
		}
		msgs[len(msgs)-1].Content += "\n" + line
	}
	out := msgs[:0]
	for _, m := range msgs {
		switch m.Role {
		case "system", "developer":
			continue // the release's own instructions
		case "tool":
			return nil, fmt.Errorf("%w: it holds tool results, which a case cannot replay yet", ErrTraceInput)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: its prompt holds only system instructions", ErrTraceInput)
	}
	return out, nil
}
