package chat

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Limits of an embeddings request, as OpenAI's API sets them where it has
// one: 2048 inputs a call, dimensions up to a few thousand.
const (
	MaxEmbeddingInputs     = 2048
	MaxEmbeddingInputBytes = 64 << 10
	MaxEmbeddingDimensions = 8192
)

// EmbeddingRequest is a POST /v1/embeddings body.
type EmbeddingRequest struct {
	Model string         `json:"model"`
	Input EmbeddingInput `json:"input"`
	// EncodingFormat is float (the default) or base64, which the gateway
	// applies to its own answer; upstreams are always asked for floats.
	EncodingFormat string `json:"encoding_format,omitempty"`
	Dimensions     int    `json:"dimensions,omitempty"`
	User           string `json:"user,omitempty"`
}

// EmbeddingInput is one text or a list of texts. Lists of token ids, which
// OpenAI also takes, are refused: their meaning depends on one
// tokenizer, and a route may reach another provider.
type EmbeddingInput []string

func (in *EmbeddingInput) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*in = EmbeddingInput{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err == nil {
		*in = many
		return nil
	}
	return &FieldError{Field: "input", Reason: "input must be a string or a list of strings (token ids are not accepted)"}
}

// DecodeEmbeddingRequest parses and checks an embeddings body. Every
// failure is a 400 *Error naming the parameter at fault.
func DecodeEmbeddingRequest(body []byte) (*EmbeddingRequest, error) {
	var r EmbeddingRequest
	if err := decodeStrictJSON(body, &r); err != nil {
		return nil, err
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Check validates a decoded request.
func (r *EmbeddingRequest) Check() error {
	switch {
	case r.Model == "":
		return BadRequest("model", "model is required")
	case len(r.Model) > MaxModelLen:
		return BadRequest("model", "model is longer than %d characters", MaxModelLen)
	case len(r.Input) == 0:
		return BadRequest("input", "input is required: a string or a list of strings")
	case len(r.Input) > MaxEmbeddingInputs:
		return BadRequest("input", "input has %d entries, more than the limit of %d", len(r.Input), MaxEmbeddingInputs)
	case r.Dimensions < 0 || r.Dimensions > MaxEmbeddingDimensions:
		return BadRequest("dimensions", "dimensions %d is outside 1..%d", r.Dimensions, MaxEmbeddingDimensions)
	case r.EncodingFormat != "" && r.EncodingFormat != "float" && r.EncodingFormat != "base64":
		return BadRequest("encoding_format", "encoding_format %q is not float or base64", r.EncodingFormat)
	case len(r.User) > 256:
		return BadRequest("user", "user is longer than 256 characters")
	}
	for i, s := range r.Input {
		p := fmt.Sprintf("input[%d]", i)
		switch {
		case s == "":
			return BadRequest(p, "%s is empty", p)
		case len(s) > MaxEmbeddingInputBytes:
			return BadRequest(p, "%s is %d bytes, more than the limit of %d", p, len(s), MaxEmbeddingInputBytes)
		case !utf8.ValidString(s):
			return BadRequest(p, "%s is not valid UTF-8", p)
		}
	}
	return nil
}

// EmbeddingResponse is the answer to an embeddings request.
type EmbeddingResponse struct {
	Object string          `json:"object"` // list
	Data   []Embedding     `json:"data"`
	Model  string          `json:"model"`
	Usage  *EmbeddingUsage `json:"usage,omitempty"`
}

// EmbeddingUsage counts the input tokens of an embeddings call.
type EmbeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// Embedding is one vector. Base64, when set, writes it as OpenAI's base64
// format: the little-endian float32 values, base64-encoded.
type Embedding struct {
	Index  int
	Vector []float32
	Base64 bool
}

func (e Embedding) MarshalJSON() ([]byte, error) {
	var vec any = e.Vector
	if e.Vector == nil {
		vec = []float32{}
	}
	if e.Base64 {
		buf := make([]byte, 4*len(e.Vector))
		for i, v := range e.Vector {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		vec = base64.StdEncoding.EncodeToString(buf)
	}
	return json.Marshal(struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
	}{"embedding", e.Index, vec})
}

func (e *Embedding) UnmarshalJSON(b []byte) error {
	var w struct {
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	e.Index = w.Index
	var s string
	if json.Unmarshal(w.Embedding, &s) == nil {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw)%4 != 0 {
			return errors.New("embedding is neither a list of numbers nor base64 float32 values")
		}
		e.Vector, e.Base64 = make([]float32, len(raw)/4), true
		for i := range e.Vector {
			e.Vector[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return nil
	}
	return json.Unmarshal(w.Embedding, &e.Vector)
}

// ObjectList names a list answer on the wire.
const ObjectList = "list"
