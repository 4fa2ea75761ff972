package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"gantry/config"
)

func TestDecodeBody(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{``, "empty"},
		{`{"name":"k","role":"admin"} {}`, "after the JSON value"},
		{`{"name":"k","rolez":"admin"}`, "unknown field"},
		{`{"name":5}`, "name"},
		{`{"name":`, "request body"},
		{`{"name":"` + strings.Repeat("n", MaxBodyBytes) + `"}`, "more than"},
	} {
		var in TokenCreate
		err := DecodeBody(strings.NewReader(tc.body), MaxBodyBytes, &in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%.40s: %v, want an error saying %q", tc.body, err, tc.want)
		}
	}
}

func TestAdminBodiesChecked(t *testing.T) {
	for _, tc := range []struct {
		v    interface{ Check() error }
		want string
	}{
		{KeyCreate{Name: ""}, "name"},
		{KeyCreate{Name: "k", Team: "a b"}, "team"},
		{KeyCreate{Name: "k", Features: []string{strings.Repeat("f", 65)}}, "features[0]"},
		{KeyCreate{Name: "k", MaxBudgetUSD: 1e300}, "max_budget_usd"},
		{KeyCreate{Name: "k", RateLimit: &config.RateLimit{RPM: -1}}, "rate_limit"},
		{TokenCreate{Name: "t", Role: "root"}, "role"},
		{LabelMove{Feature: "f", Action: config.MovePromote, To: 2, Reason: strings.Repeat("r", MaxReasonLen+1)}, "reason"},
	} {
		if err := tc.v.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%+v: %v, want a problem with %s", tc.v, err, tc.want)
		}
	}
}

// FuzzAdminDecoders decodes arbitrary bodies into each admin request type
// as the agent does, then checks them. Neither may panic; a body that
// decodes and checks must encode, decode and encode again to the same
// bytes.
func FuzzAdminDecoders(f *testing.F) {
	for _, s := range []string{
		`{"feature":"support","label":"production","action":"promote","to":2,"reason":"fix"}`,
		`{"feature":"support","label":"canary","action":"canary","to":3,"weight":10,"from":0}`,
		`{"name":"app","team":"core","features":["a"],"models":["m"],"expires":"2027-01-31T00:00:00Z","rate_limit":{"rpm":60},"max_budget_usd":5}`,
		`{"name":"ops","role":"operator"}`,
		`{"version":0,"system":"s","route":"r","params":{"max_tokens":10},"schema":{"type":"object"}}`,
		`{"name":"k","expires":"yesterday"}`,
		`{"to":-1}`, `[]`, `null`, `{"name":"\ud800"}`,
	} {
		for which := range 4 {
			f.Add(which, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, which int, body []byte) {
		var v any
		switch uint(which) % 4 {
		case 0:
			v = &LabelMove{}
		case 1:
			v = &KeyCreate{}
		case 2:
			v = &TokenCreate{}
		default:
			v = &config.Release{}
		}
		if err := DecodeBody(strings.NewReader(string(body)), MaxBodyBytes, v); err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if c, ok := v.(interface{ Check() error }); ok && c.Check() != nil {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			return // values JSON cannot carry back (a release's schema of any shape)
		}
		back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := DecodeBody(strings.NewReader(string(b)), MaxBodyBytes, back); err != nil {
			t.Fatalf("an accepted body does not decode after encoding: %v\n%s", err, b)
		}
		if b2, err := json.Marshal(back); err != nil || string(b2) != string(b) {
			t.Fatalf("round trip changed the value:\n%s\n%s", b, b2)
		}
	})
}
