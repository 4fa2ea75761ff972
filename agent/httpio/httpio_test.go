package httpio

import (
	"net/http"
	"testing"
)

func bearerOf(auth, apiKey string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	if apiKey != "" {
		r.Header.Set("X-Api-Key", apiKey)
	}
	return Bearer(r)
}

func TestBearerSchemeIgnoresCase(t *testing.T) {
	for _, tc := range []struct{ auth, apiKey, want string }{
		{"Bearer gk_a", "", "gk_a"},
		{"bearer gk_a", "", "gk_a"},
		{"BEARER   gk_a ", "", "gk_a"},
		{"Basic dXNlcg==", "gk_b", "gk_b"},
		{"", " gk_b ", "gk_b"},
		{"Bearer", "", ""},
	} {
		if got := bearerOf(tc.auth, tc.apiKey); got != tc.want {
			t.Fatalf("Bearer(%q, %q) = %q, want %q", tc.auth, tc.apiKey, got, tc.want)
		}
	}
}
