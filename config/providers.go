package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// More provider kinds. The OpenAI-compatible family shares one translation
// and differs in defaults and quirks, which package provider knows; a kind
// of that family may also be written as kind openai with a preset.
const (
	KindGemini  = "gemini"  // Google's native generateContent API
	KindAzure   = "azure"   // Azure OpenAI deployments
	KindBedrock = "bedrock" // AWS Bedrock's Converse API

	KindMistral    = "mistral"
	KindGroq       = "groq"
	KindTogether   = "together"
	KindFireworks  = "fireworks"
	KindDeepSeek   = "deepseek"
	KindOpenRouter = "openrouter"
	KindVLLM       = "vllm"
	KindOllama     = "ollama"
	KindLlamaCpp   = "llamacpp"
)

// Presets are the kinds of the OpenAI-compatible family, which kind openai
// may also name as a preset.
var Presets = []string{KindMistral, KindGroq, KindTogether, KindFireworks, KindDeepSeek, KindOpenRouter, KindVLLM, KindOllama, KindLlamaCpp}

// Kinds lists every provider kind.
var Kinds = append([]string{KindOpenAI, KindAnthropic, KindSim, KindGemini, KindAzure, KindBedrock}, Presets...)

// Azure authentication modes.
const (
	AzureAuthKey   = "api-key" // the key in the api-key header
	AzureAuthEntra = "entra"   // a Microsoft Entra ID bearer token
)

// AWS holds the names of the environment variables with a Bedrock
// provider's AWS credentials; empty names mean the SDK's usual ones
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). The
// credentials themselves never go in the configuration.
type AWS struct {
	AccessKeyIDEnv     string `yaml:"access_key_id_env" json:"access_key_id_env,omitempty"`
	SecretAccessKeyEnv string `yaml:"secret_access_key_env" json:"secret_access_key_env,omitempty"`
	SessionTokenEnv    string `yaml:"session_token_env" json:"session_token_env,omitempty"`
}

// PresetName is the OpenAI-compatible preset the provider uses, "" for OpenAI
// itself, or the kind when the kind is a preset.
func (p Provider) PresetName() string {
	if slices.Contains(Presets, p.Kind) {
		return p.Kind
	}
	if p.Kind == KindOpenAI {
		return p.Preset
	}
	return ""
}

var (
	regionRE     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	apiVersionRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$`)
)

// providerSettings checks the settings that belong to one kind only.
func (c *checker) providerSettings(path string, p Provider) {
	if p.Preset != "" && (p.Kind != KindOpenAI || !slices.Contains(Presets, p.Preset)) {
		c.add(path+".preset", "preset %q applies to kind %s and must be one of %v", p.Preset, KindOpenAI, Presets)
	}
	if p.APIVersion != "" && p.Kind != KindAzure {
		c.add(path+".api_version", "api_version applies only to kind %s", KindAzure)
	}
	if p.APIVersion != "" && !apiVersionRE.MatchString(p.APIVersion) {
		c.add(path+".api_version", "%q is not an Azure API version such as 2024-10-21", p.APIVersion)
	}
	switch p.Auth {
	case "":
	case AzureAuthKey, AzureAuthEntra:
		if p.Kind != KindAzure {
			c.add(path+".auth", "auth applies only to kind %s", KindAzure)
		}
	default:
		c.add(path+".auth", "unknown auth %q (want %s or %s)", p.Auth, AzureAuthKey, AzureAuthEntra)
	}
	switch p.Kind {
	case KindAzure:
		if p.BaseURL == "" {
			c.add(path+".base_url", "an Azure provider needs its resource endpoint, such as https://NAME.openai.azure.com")
		}
		if p.APIKeyEnv == "" {
			c.add(path+".api_key_env", "an Azure provider needs the variable holding its key or Entra token")
		}
	case KindBedrock:
		if !regionRE.MatchString(p.Region) {
			c.add(path+".region", "a Bedrock provider needs an AWS region such as us-east-1, got %q", p.Region)
		}

	case KindVLLM:
		if p.BaseURL == "" {
			c.add(path+".base_url", "a vLLM provider needs the base URL of its server, such as http://vllm:8000/v1")
		}
	}
	if p.Region != "" && p.Kind != KindBedrock {
		c.add(path+".region", "region applies only to kind %s", KindBedrock)
	}
	if p.AWS != nil {
		if p.Kind != KindBedrock {
			c.add(path+".aws", "aws applies only to kind %s", KindBedrock)
		}
		for field, v := range map[string]string{"access_key_id_env": p.AWS.AccessKeyIDEnv, "secret_access_key_env": p.AWS.SecretAccessKeyEnv, "session_token_env": p.AWS.SessionTokenEnv} {
			if v != "" && !envNameRE.MatchString(v) {
				c.add(fmt.Sprintf("%s.aws.%s", path, field), "%q is not an environment variable name (credentials never go in the config)", v)
			} else if strings.HasPrefix(strings.ToUpper(v), "GANTRY_") {
				c.add(fmt.Sprintf("%s.aws.%s", path, field), "%s holds the agent's own secrets", v)
			}
		}
	}
}
