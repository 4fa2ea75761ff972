package assert

import (
	"math"
	"testing"
)

// FuzzParseGrade: whatever a judge model replies, ParseGrade never panics
// and accepts only a score in 0..1.
func FuzzParseGrade(f *testing.F) {
	f.Add(`{"score": 0.8, "reason": "ok"}`)
	f.Add("```json\n{\"score\": 1}\n```")
	f.Add(`{"score": -0, "reason": "}{"}`)
	f.Add(`{"score": 1e309}`)
	f.Fuzz(func(t *testing.T, reply string) {
		s, reason, err := ParseGrade(reply)
		if err != nil {
			return
		}
		if math.IsNaN(s) || s < 0 || s > 1 {
			t.Fatalf("accepted score %v", s)
		}
		if len(reason) > 504 {
			t.Fatalf("reason of %d bytes", len(reason))
		}
	})
}
