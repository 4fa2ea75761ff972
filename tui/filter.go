package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/pipeline/trace"
)

// Bounds of a filter: what one line of typing can hold.
const (
	maxFilterLen   = 256
	maxFilterTerms = 16
)

// traceFilter is a parsed filter: field:value terms, ranges and free
// words, all of which must match. Text matches case-insensitively as a
// substring.
type traceFilter struct {
	terms []filterTerm
}

type filterTerm struct {
	field string // empty for free text
	value string // lower case
	// Ranges (dur, cost): the term holds when lo <= x <= hi; an open end
	// is -1.
	lo, hi float64
}

// filterFields are the fields a term may name, with their aliases.
var filterFields = map[string]string{
	"feature": "feature", "f": "feature",
	"release": "release", "rel": "release", "r": "release",
	"model": "model", "m": "model",
	"provider": "provider", "p": "provider",
	"status": "status", "s": "status",
	"node": "node", "agent": "node",
	"code": "code",
	"kind": "kind", "error": "kind", "err": "kind",
	"feedback": "feedback", "fb": "feedback",
	"id":   "id",
	"user": "user", "u": "user",
	"key": "key",
	"fp":  "fp", "key_fp": "fp",
	"team":   "team",
	"client": "client",
	"slow":   "dur",
	"dur":    "dur", "duration": "dur",
	"cost": "cost",
}

// fieldNames lists the fields for error messages, in a stable order.
const fieldNames = "feature, release, model, provider, node, user, team, key, fp, kind, code, status, feedback, id, client, dur, cost"

// filterWords splits a filter the operator typed into its words, within
// the bounds every filter shares.
func filterWords(text string) ([]string, error) {
	if len(text) > maxFilterLen {
		return nil, fmt.Errorf("a filter is at most %d characters", maxFilterLen)
	}
	words := strings.Fields(text)
	if len(words) > maxFilterTerms {
		return nil, fmt.Errorf("a filter has at most %d terms", maxFilterTerms)
	}
	return words, nil
}

func parseTraceFilter(text string) (traceFilter, error) {
	var f traceFilter
	words, err := filterWords(text)
	if err != nil {
		return f, err
	}
	for _, w := range words {
		name, val, ok := strings.Cut(w, ":")
		if !ok {
			f.terms = append(f.terms, filterTerm{value: strings.ToLower(w)})
			continue
		}
		field, known := filterFields[strings.ToLower(name)]
		if !known {
			return traceFilter{}, fmt.Errorf("unknown field %q: use %s", name, fieldNames)
		}
		t := filterTerm{field: field, value: strings.ToLower(val), lo: -1, hi: -1}
		switch {
		case strings.ToLower(name) == "slow":
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				return traceFilter{}, fmt.Errorf("slow:%s: want a duration like 2s", val)
			}
			t.lo = float64(d) / float64(time.Millisecond)
		case field == "dur" || field == "cost":
			var err error
			if t.lo, t.hi, err = parseRange(field, val); err != nil {
				return traceFilter{}, err
			}
		}
		f.terms = append(f.terms, t)
	}
	return f, nil
}

// parseRange reads >X, >=X, <X, <=X or X..Y of durations (in ms) or
// dollars. Strict bounds are taken as inclusive ones: a trace's duration
// is in whole milliseconds and its cost in fractions of a cent, so the
// difference never shows.
func parseRange(field, val string) (lo, hi float64, err error) {
	lo, hi = -1, -1
	num := func(s string) (float64, error) {
		if field == "dur" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return 0, fmt.Errorf("%s:%s: want a duration like 2s or 250ms", field, val)
			}
			return float64(d) / float64(time.Millisecond), nil
		}
		c, err := strconv.ParseFloat(strings.TrimPrefix(s, "$"), 64)
		if err != nil || !(c >= 0 && c <= api.MaxCostFilter) {
			return 0, fmt.Errorf("%s:%s: want dollars like 0.01 or $1", field, val)
		}
		return c, nil
	}
	switch {
	case strings.HasPrefix(val, ">="):
		lo, err = num(val[2:])
	case strings.HasPrefix(val, ">"):
		lo, err = num(val[1:])
	case strings.HasPrefix(val, "<="):
		hi, err = num(val[2:])
	case strings.HasPrefix(val, "<"):
		hi, err = num(val[1:])
	case strings.Contains(val, ".."):
		a, b, _ := strings.Cut(val, "..")
		if lo, err = num(a); err == nil {
			hi, err = num(b)
		}
		if err == nil && lo > hi {
			err = fmt.Errorf("%s:%s: the range is empty", field, val)
		}
	default:
		err = fmt.Errorf("%s:%s: want >X, <X, >=X, <=X or X..Y", field, val)
	}
	return lo, hi, err
}

func (f traceFilter) match(s *trace.Summary) bool {
	for i := range f.terms {
		if !f.terms[i].match(s) {
			return false
		}
	}
	return true
}

func (t *filterTerm) match(s *trace.Summary) bool {
	has := func(v string) bool { return containsFold(v, t.value) }
	in := func(x float64) bool { return (t.lo < 0 || x >= t.lo) && (t.hi < 0 || x <= t.hi) }
	switch t.field {
	case "":
		return has(s.ID) || has(s.Feature) || has(s.Release) || has(s.Model) || has(s.ErrorCode) || has(s.Node) ||
			has(s.Provider) || has(s.User) || has(s.Team) || has(s.Key) || has(s.KeyFP) || has(s.Client) || has(s.TraceID) ||
			failedHas(s.Failed, t.value, true) || failedHas(s.Failed, t.value, false)
	case "feature":
		return has(s.Feature)
	case "release":
		return has(s.Release)
	case "model":
		return has(s.Model) || failedHas(s.Failed, t.value, true)
	case "provider":
		return has(s.Provider)
	case "status":
		if t.value == "err" || t.value == "error" {
			return s.Status != "ok"
		}
		return has(s.Status) || has(strconv.Itoa(s.HTTPStatus))
	case "node":
		return has(s.Node)
	case "code":
		return has(s.ErrorCode) || has(strconv.Itoa(s.HTTPStatus))
	case "kind":
		return has(s.ErrorCode) || failedHas(s.Failed, t.value, false)
	case "feedback":
		return has(s.Feedback)
	case "id":
		return strings.HasPrefix(strings.ToLower(s.ID), t.value)
	case "user":
		return has(s.User)
	case "team":
		return has(s.Team)
	case "key":
		return has(s.Key) || has(s.KeyFP)
	case "fp":
		return strings.HasPrefix(strings.ToLower(s.KeyFP), t.value)
	case "client":
		return has(s.Client)
	case "dur":
		return in(float64(s.Duration))
	case "cost":
		return in(s.CostUSD)
	}
	return false
}

// failedHas reports whether a failed attempt ("model:kind") has v in its
// model or its kind.
func failedHas(failed string, v string, model bool) bool {
	for rest := failed; rest != ""; {
		var f string
		f, rest, _ = strings.Cut(rest, " ")
		m, k, _ := strings.Cut(f, ":")
		if model && containsFold(m, v) || !model && containsFold(k, v) {
			return true
		}
	}
	return false
}

// query is what the agents can search for of the filter: the fields the
// trace list takes. The table applies the whole filter to what comes back.
func (f traceFilter) query() api.TraceQuery {
	var q api.TraceQuery
	for _, t := range f.terms {
		switch t.field {
		case "":
			if q.Text == "" {
				q.Text = t.value
			}
		case "model":
			q.Model = t.value
		case "feature":
			q.Feature = t.value
		case "release":
			q.Release = t.value
		case "node":
			q.Node = t.value
		case "user":
			q.User = t.value
		case "fp":
			q.KeyFP = t.value
		case "kind":
			q.ErrorKind = t.value
		case "status":
			switch t.value {
			case "ok":
				q.Status = "ok"
			case "err", "error":
				q.Status = "error"
			}
		case "dur":
			if t.lo >= 0 {
				q.MinDuration = time.Duration(t.lo * float64(time.Millisecond))
			}
			if t.hi >= 0 {
				q.MaxDuration = time.Duration(t.hi * float64(time.Millisecond))
			}
		case "cost":
			if t.lo >= 0 {
				q.MinCost = t.lo
			}
			if t.hi >= 0 {
				q.MaxCost = t.hi
			}
		}
	}
	return q
}

// yank asks the terminal to copy text and says so.
func yank(text, what string) tea.Cmd {
	return tea.Batch(
		func() tea.Msg { return YankRequest{Text: text} },
		status("copied "+what+" "+text+" to the clipboard", false),
	)
}
