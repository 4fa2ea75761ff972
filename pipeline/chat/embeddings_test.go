package chat

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeEmbeddingRequest(t *testing.T) {
	many := `["` + strings.Repeat(`a","`, MaxEmbeddingInputs) + `a"]`
	tests := []struct {
		name   string
		body   string
		inputs int
		param  string // of the 400, "" for success
		text   string // in the message
	}{
		{"one text", `{"model":"e","input":"hello"}`, 1, "", ""},
		{"texts", `{"model":"e","input":["a","b"],"encoding_format":"base64","dimensions":256}`, 2, "", ""},
		{"token ids", `{"model":"e","input":[1,2,3]}`, 0, "input", "token ids"},
		{"no input", `{"model":"e"}`, 0, "input", "required"},
		{"empty text", `{"model":"e","input":["a",""]}`, 0, "input[1]", "empty"},
		{"too many", `{"model":"e","input":` + many + `}`, 0, "input", "limit"},
		{"too long", `{"model":"e","input":"` + strings.Repeat("x", MaxEmbeddingInputBytes+1) + `"}`, 0, "input[0]", "bytes"},
		{"dimensions", `{"model":"e","input":"a","dimensions":100000}`, 0, "dimensions", "outside"},
		{"format", `{"model":"e","input":"a","encoding_format":"int8"}`, 0, "encoding_format", "float or base64"},
		{"no model", `{"input":"a"}`, 0, "model", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeEmbeddingRequest([]byte(tt.body))
			if tt.param == "" && tt.text == "" {
				if err != nil || len(r.Input) != tt.inputs {
					t.Fatalf("got %v, %v; want %d inputs", r, err, tt.inputs)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Status != 400 || ce.Param != tt.param || !strings.Contains(ce.Message, tt.text) {
				t.Fatalf("got %v, want a 400 on %q saying %q", err, tt.param, tt.text)
			}
		})
	}
}

func TestEmbeddingEncodings(t *testing.T) {
	for _, b64 := range []bool{false, true} {
		in := Embedding{Index: 2, Vector: []float32{0.5, -1.25, 3e-7}, Base64: b64}
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out Embedding
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if out.Index != 2 || out.Base64 != b64 || len(out.Vector) != 3 || out.Vector[1] != -1.25 || out.Vector[2] != 3e-7 {
			t.Fatalf("round trip of %s: got %+v", data, out)
		}
	}
	// OpenAI's base64 for [1.0]: the little-endian float32 0x3f800000.
	data, _ := json.Marshal(Embedding{Vector: []float32{1}, Base64: true})
	if !strings.Contains(string(data), `"embedding":"AACAPw=="`) {
		t.Fatalf("got %s", data)
	}
}

func FuzzDecodeEmbeddingRequest(f *testing.F) {
	f.Add([]byte(`{"model":"e","input":["a","b"],"dimensions":3}`))
	f.Add([]byte(`{"model":"e","input":"x","encoding_format":"base64"}`))
	f.Add([]byte(`{"model":"e","input":[[1,2]]}`))
	f.Add([]byte(`{"model":5,"input":{"a":1},"dimensions":"x","encoding_format":7}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeEmbeddingRequest(body)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.Status != 400 {
				t.Fatalf("error %v is not a 400", err)
			}
			if strings.HasPrefix(ce.Message, "the request body is not valid: ") {
				t.Fatalf("a refusal names no field: %v", ce.Message)
			}
			return
		}
		if len(r.Input) == 0 || len(r.Input) > MaxEmbeddingInputs || r.Model == "" {
			t.Fatalf("accepted %+v", r)
		}
	})
}
