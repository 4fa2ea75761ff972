package dataset

import (
	"encoding/json"
	"testing"
)

// FuzzParse feeds arbitrary files to both parsers. Parsing must never
// panic, and what it accepts must pass Check and survive a round trip
// through JSON with the same hash: the form a replicated command carries.
func FuzzParse(f *testing.F) {
	f.Add([]byte(smoke), false)
	f.Add([]byte(`{"name": "x", "assert": [{"type": "is-json"}]}`+"\n"+`{"vars": {"q": 1}, "critical": true}`+"\n"), true)
	f.Add([]byte("name: x\ncases:\n  - messages: [{role: user, content: hi}]\n    assert: [{type: not-regex, value: 'a+'}]\n"), false)
	f.Add([]byte("name: x\ncases:\n  - vars: &a {q: *a}\n"), false)
	f.Add([]byte(`{"vars": {"q": [1, {"a": null}]}, "tool_calls": [{"name": "t", "arguments": {"x": 1e400}}]}`), true)
	f.Fuzz(func(t *testing.T, data []byte, jsonl bool) {
		file := "f.yaml"
		if jsonl {
			file = "f.jsonl"
		}
		d, err := Parse(file, data)
		if err != nil {
			return
		}
		if err := d.Check(); err != nil {
			t.Fatalf("Parse accepted a dataset Check refuses: %v", err)
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("accepted dataset does not encode: %v", err)
		}
		back, err := Parse("f.json", b)
		if err != nil {
			t.Fatalf("its JSON does not parse back: %v\n%s", err, b)
		}
		if back.Hash() != d.Hash() {
			t.Fatalf("hash changed through JSON: %s != %s", back.Hash(), d.Hash())
		}
	})
}
