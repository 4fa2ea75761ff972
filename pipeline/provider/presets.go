package provider

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"

	"gantry/config"
	"gantry/pipeline/chat"
)

// Preset is an OpenAI-compatible service: where it lives and where its API
// differs from OpenAI's. A difference is handled in one of three ways: a
// parameter is renamed, dropped when its absence changes nothing a caller
// relies on, or refused with a 400 naming it when the answer would differ
// from what the caller asked for.
type Preset struct {
	Name string
	// BaseURL is the default; "" means the configuration must give one.
	BaseURL string
	// NeedsKey: the service refuses calls without a key. Local servers
	// take none.
	NeedsKey bool
	// StreamUsage: the server takes stream_options.include_usage. Servers
	// that reject it report usage in their last chunk unasked.
	StreamUsage bool
	// MaxTokensOnly: the server knows max_tokens, not
	// max_completion_tokens.
	MaxTokensOnly bool
	// NoForcedTool: the server ignores tool_choice, so a request that
	// forces a tool call ("required" or a named function) is refused.
	NoForcedTool bool
	// NoMessageName: the server rejects the name field of messages.
	NoMessageName bool
	// JSONObjectOnly: the server has JSON mode but no JSON Schema; a
	// json_schema format becomes json_object with the schema as an
	// instruction, and the release's validation checks the answer.
	JSONObjectOnly bool
	// NoDimensions: the server's embeddings have a fixed size, so a
	// request for shorter ones is refused.
	NoDimensions bool
	// Mistral: tool_choice "required" is "any", seed is random_seed, user
	// is unknown, and tool call ids are nine letters or digits.
	Mistral bool
	// Usage reads a service's own usage fields from an answer or a chunk
	// into u, which may be nil.
	Usage func(raw []byte, u *chat.Usage) *chat.Usage
}

// presets by name; config.Presets lists the same names.
var presets = map[string]*Preset{
	config.KindMistral:    {Name: config.KindMistral, BaseURL: "https://api.mistral.ai/v1", NeedsKey: true, MaxTokensOnly: true, Mistral: true, NoDimensions: true},
	config.KindGroq:       {Name: config.KindGroq, BaseURL: "https://api.groq.com/openai/v1", NeedsKey: true, StreamUsage: true, NoMessageName: true, Usage: groqUsage},
	config.KindTogether:   {Name: config.KindTogether, BaseURL: "https://api.together.xyz/v1", NeedsKey: true, MaxTokensOnly: true},
	config.KindFireworks:  {Name: config.KindFireworks, BaseURL: "https://api.fireworks.ai/inference/v1", NeedsKey: true, MaxTokensOnly: true},
	config.KindDeepSeek:   {Name: config.KindDeepSeek, BaseURL: "https://api.deepseek.com/v1", NeedsKey: true, StreamUsage: true, MaxTokensOnly: true, JSONObjectOnly: true, Usage: deepSeekUsage},
	config.KindOpenRouter: {Name: config.KindOpenRouter, BaseURL: "https://openrouter.ai/api/v1", NeedsKey: true, StreamUsage: true},
	config.KindVLLM:       {Name: config.KindVLLM, StreamUsage: true},
	config.KindOllama:     {Name: config.KindOllama, BaseURL: "http://localhost:11434/v1", StreamUsage: true, MaxTokensOnly: true, NoForcedTool: true, NoDimensions: true},
	config.KindLlamaCpp:   {Name: config.KindLlamaCpp, BaseURL: "http://localhost:8080/v1", StreamUsage: true, MaxTokensOnly: true, NoDimensions: true},
}

// LookupPreset returns the named preset.
func LookupPreset(name string) (*Preset, bool) {
	p, ok := presets[name]
	return p, ok
}

// NewPreset returns a provider for an OpenAI-compatible service. An empty
// baseURL means the preset's default.
func NewPreset(p *Preset, baseURL, apiKey string, client *http.Client) *OpenAI {
	if baseURL == "" {
		baseURL = p.BaseURL
	}
	o := NewOpenAI(baseURL, apiKey, client)
	o.preset = p
	return o
}

// adapt rewrites a request for the preset: r is a copy the caller owns,
// and its slices are copied before they are changed.
func (p *Preset) adapt(r *chat.Request) error {
	if p.MaxTokensOnly && r.MaxCompletionTokens > 0 {
		r.MaxTokens, r.MaxCompletionTokens = r.MaxCompletionTokens, 0
	}
	if !p.StreamUsage {
		r.StreamOptions = nil
	}
	if p.NoForcedTool && forcesTool(r.ToolChoice) {
		return chat.BadRequest("tool_choice", "%s cannot force a tool call; send tool_choice auto or none, or route to another provider", p.Name)
	}
	if p.NoMessageName || p.Mistral {
		msgs := append([]chat.Message(nil), r.Messages...)
		for i := range msgs {
			if p.NoMessageName {
				msgs[i].Name = ""
			}
			if p.Mistral {
				msgs[i].ToolCallID = mistralToolID(msgs[i].ToolCallID)
				if len(msgs[i].ToolCalls) > 0 {
					calls := append([]chat.ToolCall(nil), msgs[i].ToolCalls...)
					for j := range calls {
						calls[j].ID = mistralToolID(calls[j].ID)
					}
					msgs[i].ToolCalls = calls
				}
			}
		}
		r.Messages = msgs
	}
	if p.Mistral {
		r.User = ""
		if bytes.Equal(bytes.TrimSpace(r.ToolChoice), []byte(`"required"`)) {
			r.ToolChoice = json.RawMessage(`"any"`)
		}
	}
	if f := r.ResponseFormat; p.JSONObjectOnly && f != nil && f.Type == "json_schema" {
		instr := "Reply with one JSON object and nothing else."
		if f.JSONSchema != nil && len(f.JSONSchema.Schema) > 0 {
			var schema bytes.Buffer
			if err := json.Compact(&schema, f.JSONSchema.Schema); err != nil {
				return chat.BadRequest("response_format.json_schema.schema", "the schema is not JSON: %v", err)
			}
			instr = "Reply with one JSON object and nothing else. It must satisfy this JSON Schema: " + schema.String()
		}
		r.ResponseFormat = &chat.ResponseFormat{Type: "json_object"}
		r.Messages = append([]chat.Message{{Role: "system", Content: chat.Text(instr)}}, r.Messages...)
	}
	return nil
}

// encode writes the adapted request; Mistral's seed travels as random_seed.
func (p *Preset) encode(r *chat.Request) ([]byte, error) {
	seed := r.Seed
	if p.Mistral {
		r.Seed = nil
	}
	body, err := json.Marshal(r)
	if err != nil || !p.Mistral || seed == nil {
		return body, err
	}
	return append(append(body[:len(body)-1], fmt.Sprintf(`,"random_seed":%d`, *seed)...), '}'), nil
}

// forcesTool reports whether a tool_choice makes a tool call compulsory.
func forcesTool(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return false
	}
	var word string
	if json.Unmarshal(raw, &word) == nil {
		return word == "required"
	}
	return true // {"type":"function",...}
}

var mistralIDRE = regexp.MustCompile(`^[A-Za-z0-9]{9}$`)

// mistralToolID maps a tool call id to the nine letters and digits Mistral
// requires, the same way every time, so a call and its result still match.
// Ids Mistral made pass unchanged.
func mistralToolID(id string) string {
	if id == "" || mistralIDRE.MatchString(id) {
		return id
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	sum := sha256.Sum256([]byte(id))
	out := make([]byte, 9)
	for i := range out {
		out[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return string(out)
}

// groqUsage reads the usage Groq reports in x_groq of the last chunk.
func groqUsage(raw []byte, u *chat.Usage) *chat.Usage {
	if u != nil {
		return u
	}
	var x struct {
		XGroq struct {
			Usage *chat.Usage `json:"usage"`
		} `json:"x_groq"`
	}
	if json.Unmarshal(raw, &x) != nil {
		return nil
	}
	return x.XGroq.Usage
}

// deepSeekUsage reads DeepSeek's prompt cache hits as cached tokens.
func deepSeekUsage(raw []byte, u *chat.Usage) *chat.Usage {
	if u == nil || u.CachedTokens() > 0 {
		return u
	}
	var x struct {
		Usage struct {
			Hit int `json:"prompt_cache_hit_tokens"`
		} `json:"usage"`
	}
	if json.Unmarshal(raw, &x) == nil && x.Usage.Hit > 0 {
		u.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: x.Usage.Hit}
	}
	return u
}
