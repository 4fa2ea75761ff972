package state

import (
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"strings"

	"gantry/config"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

func validName(s string) bool {
	return s != "" && len(s) <= config.MaxNameLen && nameRE.MatchString(s)
}

func validHash(h string) bool {
	rest, ok := strings.CutPrefix(h, "sha256:")
	if !ok || len(rest) != 64 {
		return false
	}
	for _, c := range rest {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// secretRE matches strings shaped like credentials: Gantry's virtual keys,
// OpenAI- and Anthropic-style API keys, AWS access keys, Slack tokens and
// bearer headers. A provider's key lives in an environment variable that the
// configuration names; it never travels through the log.
var secretRE = regexp.MustCompile(`(gk_[A-Za-z0-9_-]{43}|sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,}|(?i:bearer\s+[A-Za-z0-9._~+/-]{16,}))`)

// secretParams are query parameter names that carry credentials.
var secretParams = []string{"key", "token", "secret", "password", "passwd", "signature", "sig", "auth"}

// checkProvider enforces that a provider's credentials stay out of the
// configuration: no user info or credential parameters in its URL, and an
// environment variable name that is a name, not a pasted key.
func checkProvider(p config.Provider) error {
	if p.BaseURL != "" {
		u, err := url.Parse(p.BaseURL)
		if err != nil {
			return fmt.Errorf("%w: provider %s: base_url: %w", ErrInvalid, p.Name, err)
		}
		if u.User != nil {
			return fmt.Errorf("%w: provider %s: base_url carries credentials; name an environment variable in api_key_env instead", ErrInvalid, p.Name)
		}
		for param := range u.Query() {
			lp := strings.ToLower(param)
			for _, s := range secretParams {
				if strings.Contains(lp, s) {
					return fmt.Errorf("%w: provider %s: base_url parameter %q looks like a credential; name an environment variable in api_key_env instead", ErrInvalid, p.Name, param)
				}
			}
		}
	}
	if len(p.APIKeyEnv) > 128 {
		return fmt.Errorf("%w: provider %s: api_key_env is longer than 128 characters; it names a variable, it is not the key", ErrInvalid, p.Name)
	}
	lower := strings.ToLower(p.APIKeyEnv)
	for _, prefix := range []string{"sk_", "gk_", "rk_", "pk_"} {
		if strings.HasPrefix(lower, prefix) {
			return fmt.Errorf("%w: provider %s: api_key_env %q looks like a key, not the name of the variable that holds it", ErrInvalid, p.Name, p.APIKeyEnv)
		}
	}
	return nil
}

// checkNoSecrets walks every string a command carries and rejects the
// command if one looks like a credential, so a key pasted into the wrong
// field is refused before it reaches the log of every replica.
func checkNoSecrets(v any) error {
	var found string
	walkStrings(reflect.ValueOf(v), func(s string) bool {
		if m := secretRE.FindString(s); m != "" {
			found = m
			return false
		}
		return true
	})
	if found != "" {
		shown := found
		if len(shown) > 6 {
			shown = shown[:6] + "…"
		}
		return fmt.Errorf("%w: a value looks like a credential (%s); secrets never enter the cluster log, name an environment variable instead", ErrInvalid, shown)
	}
	return nil
}

// walkStrings calls fn with every string reachable from v until fn returns
// false. Depth is bounded because payloads decoded from JSON cannot be
// cyclic but can be deep.
func walkStrings(v reflect.Value, fn func(string) bool) bool {
	return walk(v, fn, 0)
}

func walk(v reflect.Value, fn func(string) bool, depth int) bool {
	if depth > 64 || !v.IsValid() {
		return true
	}
	switch v.Kind() {
	case reflect.String:
		return fn(v.String())
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return true
		}
		return walk(v.Elem(), fn, depth+1)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() && !walk(v.Field(i), fn, depth+1) {
				return false
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if !walk(v.Index(i), fn, depth+1) {
				return false
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if !walk(it.Key(), fn, depth+1) || !walk(it.Value(), fn, depth+1) {
				return false
			}
		}
	}
	return true
}

func checkMember(m Member) error {
	if !validName(m.ID) {
		return fmt.Errorf("%w: member id %q: want 1..%d letters, digits and . _ : -", ErrInvalid, m.ID, config.MaxNameLen)
	}
	if _, _, err := net.SplitHostPort(m.RaftAddr); err != nil {
		return fmt.Errorf("%w: member %s: raft address %q: %w", ErrInvalid, m.ID, m.RaftAddr, err)
	}
	if m.HTTPAddr != "" {
		u, err := url.Parse(m.HTTPAddr)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return fmt.Errorf("%w: member %s: http address %q is not an http or https URL", ErrInvalid, m.ID, m.HTTPAddr)
		}
	}
	return nil
}
