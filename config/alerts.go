package config

import "time"

// Alerts are the thresholds at which agents raise alerts on traffic. Zero
// fields take the defaults below, so an absent section alerts sensibly.
type Alerts struct {
	// ErrorRate is the error rate of a feature, model or provider above
	// which it alerts: (0,1], default 0.05.
	ErrorRate float64 `yaml:"error_rate" json:"error_rate,omitempty"`
	// P95 is the 95th percentile latency above which it alerts; default
	// 10s.
	P95 Duration `yaml:"p95" json:"p95,omitempty"`
	// MinCalls is the fewest calls in the window before rates and
	// percentiles alert, so three calls do not page anyone; default 20.
	MinCalls int `yaml:"min_calls" json:"min_calls,omitempty"`
	// Window is the span of traffic the rates are over: 1m..1h, default 5m.
	Window Duration `yaml:"window" json:"window,omitempty"`
}

// Defaults of Alerts.
const (
	DefaultAlertErrorRate = 0.05
	DefaultAlertP95       = 10 * time.Second
	DefaultAlertMinCalls  = 20
	DefaultAlertWindow    = 5 * time.Minute
	maxAlertMinCalls      = 1_000_000
)

// WithDefaults returns a with every zero field set to its default.
func (a Alerts) WithDefaults() Alerts {
	if a.ErrorRate == 0 {
		a.ErrorRate = DefaultAlertErrorRate
	}
	if a.P95 == 0 {
		a.P95 = Duration(DefaultAlertP95)
	}
	if a.MinCalls == 0 {
		a.MinCalls = DefaultAlertMinCalls
	}
	if a.Window == 0 {
		a.Window = Duration(DefaultAlertWindow)
	}
	return a
}

func (c *checker) alerts(a Alerts) {
	if a.ErrorRate != 0 && !(a.ErrorRate > 0 && a.ErrorRate <= 1) {
		c.add("alerts.error_rate", "%v is outside (0,1]", a.ErrorRate)
	}
	if a.P95 < 0 || a.P95.D() > time.Hour {
		c.add("alerts.p95", "%s is outside 0..1h", a.P95.D())
	}
	if a.MinCalls < 0 || a.MinCalls > maxAlertMinCalls {
		c.add("alerts.min_calls", "%d is outside 0..%d", a.MinCalls, maxAlertMinCalls)
	}
	if a.Window != 0 && (a.Window.D() < time.Minute || a.Window.D() > time.Hour) {
		c.add("alerts.window", "%s is outside 1m..1h", a.Window.D())
	}
}
