package provider

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"gantry/config"
)

// Keys reads providers' API keys from the agent's environment, only from
// variables whose names match Pattern and are none of the agent's own
// secrets (config.ForbiddenEnv): a configuration, which an admin token can
// change, cannot name GANTRY_CLUSTER_SECRET or the cloud's credentials and
// have them sent to an upstream of its choosing.
type Keys struct {
	Getenv func(string) string
	// Pattern is what a variable's name must match; nil means
	// config.DefaultKeyEnvPattern (names ending in _API_KEY).
	Pattern *regexp.Regexp
}

// NewKeys returns Keys reading getenv with the given pattern, "" for the
// default; the agent passes what its operator configured.
func NewKeys(getenv func(string) string, pattern string) (Keys, error) {
	if pattern == "" {
		pattern = config.DefaultKeyEnvPattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return Keys{}, fmt.Errorf("provider key variable pattern %q: %w", pattern, err)
	}
	return Keys{Getenv: getenv, Pattern: re}, nil
}

var defaultKeyPattern = regexp.MustCompile(config.DefaultKeyEnvPattern)

// Check says why the variable name may not be read, or nil when it may.
func (k Keys) Check(name string) error {
	pattern := k.Pattern
	if pattern == nil {
		pattern = defaultKeyPattern
	}
	return config.CheckKeyEnv(name, pattern)
}

// Key returns the value of the variable name, or why it may not be read.
func (k Keys) Key(name string) (string, error) {
	if err := k.Check(name); err != nil {
		return "", err
	}
	if k.Getenv == nil {
		return "", fmt.Errorf("api_key_env names %s but no environment was given", name)
	}
	key := strings.TrimSpace(k.Getenv(name))
	if key == "" {
		// Name the variable, never a value.
		return "", fmt.Errorf("environment variable %s (api_key_env) is empty or unset", name)
	}
	return key, nil
}

// New builds the provider a configuration entry describes, reading its key
// through getenv under the default rules of Keys. hc carries the calls;
// nil means DefaultClient, whose transport is Transport.
func New(p config.Provider, getenv func(string) string, hc *http.Client) (Provider, error) {
	return NewWith(p, Keys{Getenv: getenv}, hc)
}

// NewWith builds the provider a configuration entry describes. Only the
// configuration chooses the upstream URL and the credentials: the key is
// read here, from the environment variable that APIKeyEnv names, through
// keys. hc carries the calls; nil means DefaultClient. A client of the
// agent's own must use Transport, which refuses metadata addresses.
func NewWith(p config.Provider, keys Keys, hc *http.Client) (Provider, error) {
	key := ""
	if p.APIKeyEnv != "" {
		var err error
		if key, err = keys.Key(p.APIKeyEnv); err != nil {
			return nil, fmt.Errorf("provider %q: %w", p.Name, err)
		}
	}
	if name := p.PresetName(); name != "" {
		preset, ok := LookupPreset(name)
		if !ok {
			return nil, fmt.Errorf("provider %q: unknown preset %q", p.Name, name)
		}
		base, err := checkBaseURL(p)
		if err != nil {
			return nil, err
		}
		if base == "" && preset.BaseURL == "" {
			return nil, fmt.Errorf("provider %q: %s has no default address; set base_url", p.Name, name)
		}
		if key == "" && preset.NeedsKey {
			return nil, fmt.Errorf("provider %q: %s needs a key; set api_key_env to the variable that holds it", p.Name, name)
		}
		return NewPreset(preset, base, key, hc), nil
	}
	switch p.Kind {
	case config.KindOpenAI:
		base, err := checkBaseURL(p)
		if err != nil {
			return nil, err
		}
		return NewOpenAI(base, key, hc), nil
	case config.KindGemini:
		base, err := checkBaseURL(p)
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, fmt.Errorf("provider %q: Gemini needs a key; set api_key_env to the variable that holds it", p.Name)
		}
		return NewGemini(base, key, hc), nil
	case config.KindAzure:
		base, err := checkBaseURL(p)
		if err != nil {
			return nil, err
		}
		if base == "" || key == "" {
			return nil, fmt.Errorf("provider %q: Azure needs base_url (the resource endpoint) and api_key_env", p.Name)
		}
		auth := AzureAuth{Key: key}
		if p.Auth == config.AzureAuthEntra {
			auth = AzureAuth{Token: entraToken(keys.Getenv, p.APIKeyEnv)}
		}
		return NewAzure(base, p.APIVersion, auth, hc), nil
	case config.KindBedrock:
		base, err := checkBaseURL(p)
		if err != nil {
			return nil, err
		}
		if p.Region == "" {
			return nil, fmt.Errorf("provider %q: Bedrock needs a region", p.Name)
		}
		if key != "" {
			return NewBedrock(base, p.Region, BedrockAuth{APIKey: key}, hc), nil
		}
		creds, err := awsCredentials(p, keys.Getenv)
		if err != nil {
			return nil, err
		}
		return NewBedrock(base, p.Region, BedrockAuth{Credentials: creds}, hc), nil
	case config.KindAnthropic:
		base, err := checkBaseURL(p)
		if err != nil {
			return nil, err
		}
		return NewAnthropic(base, key, hc), nil
	case config.KindSim:
		// The simulator is no upstream: package sim builds it, and the
		// pipeline's provider set calls it for this kind.
		return nil, fmt.Errorf("provider %q: kind %q is the simulator, built by package sim, not by provider.New", p.Name, p.Kind)
	}
	return nil, fmt.Errorf("provider %q: unknown kind %q (want one of %v)", p.Name, p.Kind, config.Kinds)
}

// awsCredentials checks that the variables a Bedrock provider names hold
// credentials, and returns a function that reads them at each call.
func awsCredentials(p config.Provider, getenv func(string) string) (func() (aws.Credentials, error), error) {
	names := config.AWS{AccessKeyIDEnv: "AWS_ACCESS_KEY_ID", SecretAccessKeyEnv: "AWS_SECRET_ACCESS_KEY", SessionTokenEnv: "AWS_SESSION_TOKEN"}
	if a := p.AWS; a != nil {
		names.AccessKeyIDEnv = cmp.Or(a.AccessKeyIDEnv, names.AccessKeyIDEnv)
		names.SecretAccessKeyEnv = cmp.Or(a.SecretAccessKeyEnv, names.SecretAccessKeyEnv)
		names.SessionTokenEnv = cmp.Or(a.SessionTokenEnv, names.SessionTokenEnv)
	}
	if getenv == nil {
		return nil, fmt.Errorf("provider %q: Bedrock reads AWS credentials from the environment but no environment was given", p.Name)
	}
	read := func() (aws.Credentials, error) {
		c := aws.Credentials{
			AccessKeyID:     strings.TrimSpace(getenv(names.AccessKeyIDEnv)),
			SecretAccessKey: strings.TrimSpace(getenv(names.SecretAccessKeyEnv)),
			SessionToken:    strings.TrimSpace(getenv(names.SessionTokenEnv)),
			Source:          "environment",
		}
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			// Name the variables, never a value.
			return c, fmt.Errorf("environment variables %s and %s must hold AWS credentials (or set api_key_env to a Bedrock API key)", names.AccessKeyIDEnv, names.SecretAccessKeyEnv)
		}
		return c, nil
	}
	if _, err := read(); err != nil {
		return nil, fmt.Errorf("provider %q: %w", p.Name, err)
	}
	return read, nil
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
	if why := config.ForbiddenHost(u.Hostname()); why != "" {
		return "", fmt.Errorf("provider %q: an upstream may not be at %s: %s", p.Name, u.Host, why)
	}
	return p.BaseURL, nil
}
