package provider

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"gantry/config"
)

// New builds the provider a configuration entry describes. Only the
// configuration chooses the upstream URL and the credentials: the key is
// read here, from the environment variable that APIKeyEnv names, through
// getenv. hc carries the calls; nil means DefaultClient.
func New(p config.Provider, getenv func(string) string, hc *http.Client) (Provider, error) {
	key := ""
	if p.APIKeyEnv != "" {
		if getenv == nil {
			return nil, fmt.Errorf("provider %q: api_key_env names %s but no environment was given", p.Name, p.APIKeyEnv)
		}
		key = strings.TrimSpace(getenv(p.APIKeyEnv))
		if key == "" {
			// Name the variable, never a value.
			return nil, fmt.Errorf("provider %q: environment variable %s (api_key_env) is empty or unset", p.Name, p.APIKeyEnv)
		}
	}
	switch p.Kind {
	case config.KindOpenAI:
		base, err := checkBaseURL(p)
		if err != nil {
			return nil, err
		}
		return NewOpenAI(base, key, hc), nil
	case config.KindAnthropic:
		base, err := checkBaseURL(p)
		if err != nil {
			return nil, err
		}
		return NewAnthropic(base, key, hc), nil
	case config.KindSim:
		var s config.SimSettings
		if p.Sim != nil {
			s = *p.Sim
		}
		return NewSim(s), nil
	}
	return nil, fmt.Errorf("provider %q: unknown kind %q (want %s, %s or %s)", p.Name, p.Kind, config.KindOpenAI, config.KindAnthropic, config.KindSim)
}

// checkBaseURL refuses base URLs that could smuggle credentials or change
// the path of the call; empty stays empty and means the kind's default.
func checkBaseURL(p config.Provider) (string, error) {
	if p.BaseURL == "" {
		return "", nil
	}
	u, err := url.Parse(p.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("provider %q: base_url %q is not an http or https URL", p.Name, p.BaseURL)
	}
	if u.User != nil {
		return "", fmt.Errorf("provider %q: base_url must not hold credentials; use api_key_env", p.Name)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("provider %q: base_url %q must not have a query or fragment", p.Name, p.BaseURL)
	}
	return p.BaseURL, nil
}
