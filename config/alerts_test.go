package config

import (
	"strings"
	"testing"
	"time"
)

func TestAlertsSection(t *testing.T) {
	base := append([]byte(nil), exampleYAML...)
	cfg, err := Parse("gantry.yaml", append(base[:len(base):len(base)], []byte("alerts:\n  error_rate: 0.2\n  p95: 3s\n  min_calls: 5\n")...))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Alerts.WithDefaults()
	if a.ErrorRate != 0.2 || a.P95.D() != 3*time.Second || a.MinCalls != 5 || a.Window.D() != DefaultAlertWindow {
		t.Fatalf("alerts %+v", a)
	}
	if d := (Alerts{}).WithDefaults(); d.ErrorRate != DefaultAlertErrorRate || d.P95.D() != DefaultAlertP95 || d.MinCalls != DefaultAlertMinCalls {
		t.Fatalf("defaults %+v", d)
	}
	for _, c := range []struct{ yaml, want string }{
		{"alerts:\n  error_rate: 1.5\n", "alerts.error_rate"},
		{"alerts:\n  p95: 2h\n", "alerts.p95"},
		{"alerts:\n  min_calls: -1\n", "alerts.min_calls"},
		{"alerts:\n  window: 10s\n", "alerts.window"},
		{"alerts:\n  errors: 0.1\n", "errors"},
	} {
		_, err := Parse("gantry.yaml", append(base[:len(base):len(base)], []byte(c.yaml)...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one naming %s", c.yaml, err, c.want)
		}
	}
}
