package validate

import (
	"strings"
	"testing"
)

// FuzzValidate feeds arbitrary model output to the decoder and validator. It
// must never panic, and every failure of unparseable output must carry a
// position.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"category":"billing","priority":2}`))
	f.Add([]byte(`{"category":"refund","priority":9,"x":[1,{"y":null}]}`))
	f.Add([]byte("{\n\"category\":"))
	f.Add([]byte(`"just a string"`))
	f.Add([]byte{0xff, '{'})
	s, err := Compile(triage)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		fs := s.Validate(out)
		for _, fl := range fs {
			if fl.Reason == "" {
				t.Fatalf("failure without a reason: %+v", fl)
			}
			if fl.Path == "" && strings.HasPrefix(fl.Reason, "invalid JSON") && !strings.Contains(fl.Reason, "line ") {
				t.Fatalf("invalid JSON without a position: %q", fl.Reason)
			}
		}
		if len(fs) > MaxFailures+1 {
			t.Fatalf("%d failures, more than the bound", len(fs))
		}
	})
}
