package provider

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"gantry/pipeline/chat"
)

func TestPresetQuirks(t *testing.T) {
	seed := int64(7)
	base := func() *chat.Request {
		r := orderQuestion("m")
		r.Seed, r.User = &seed, "user-42"
		r.Messages[1].Name = "alice"
		return r
	}
	tests := []struct {
		name   string
		preset string
		edit   func(r *chat.Request)
		check  func(t *testing.T, body map[string]any)
		refuse string // the parameter a 400 must name
	}{
		{name: "mistral", preset: "mistral", edit: func(r *chat.Request) {
			r.Tools, r.ToolChoice = trackTool(), json.RawMessage(`"required"`)
		}, check: func(t *testing.T, body map[string]any) {
			if body["random_seed"] != 7.0 || body["seed"] != nil {
				t.Fatalf("seed: got random_seed %v seed %v, want random_seed 7", body["random_seed"], body["seed"])
			}
			if body["user"] != nil || body["tool_choice"] != "any" || body["max_tokens"] != 200.0 {
				t.Fatalf("got user %v tool_choice %v max_tokens %v, want no user, any, 200", body["user"], body["tool_choice"], body["max_tokens"])
			}
		}},
		{name: "groq drops message names", preset: "groq", check: func(t *testing.T, body map[string]any) {
			if jsonAt(body, "messages", 1, "name") != nil || body["max_completion_tokens"] != 200.0 {
				t.Fatalf("got %v", body)
			}
		}},
		{name: "deepseek has JSON mode only", preset: "deepseek", edit: func(r *chat.Request) {
			r.ResponseFormat = &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Name: "t", Schema: json.RawMessage(`{"type":"object"}`)}}
		}, check: func(t *testing.T, body map[string]any) {
			if jsonAt(body, "response_format", "type") != "json_object" {
				t.Fatalf("response_format: got %v", body["response_format"])
			}
			if s, _ := jsonAt(body, "messages", 0, "content").(string); !strings.Contains(s, `{"type":"object"}`) {
				t.Fatalf("the schema must become an instruction, got first message %v", jsonAt(body, "messages", 0))
			}
		}},
		{name: "ollama cannot force a tool", preset: "ollama", edit: func(r *chat.Request) {
			r.Tools, r.ToolChoice = trackTool(), json.RawMessage(`{"type":"function","function":{"name":"track_order"}}`)
		}, refuse: "tool_choice"},
		{name: "ollama may offer tools", preset: "ollama", edit: func(r *chat.Request) {
			r.Tools, r.ToolChoice = trackTool(), json.RawMessage(`"auto"`)
		}, check: func(t *testing.T, body map[string]any) {
			if body["tool_choice"] != "auto" || body["max_tokens"] != 200.0 {
				t.Fatalf("got tool_choice %v max_tokens %v", body["tool_choice"], body["max_tokens"])
			}
		}},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tt.name, func(t *testing.T) {
				rp, url := serve(t, recording(t, "mistral/stream.http"))
				r := base()
				if tt.edit != nil {
					tt.edit(r)
				}
				p := NewPreset(presets[tt.preset], url, "k", nil)
				var err error
				if stream {
					var s Stream
					if s, err = p.Stream(context.Background(), r); err == nil {
						s.Close()
					}
				} else {
					_, err = p.Complete(context.Background(), r)
				}
				if tt.refuse != "" {
					var ce *chat.Error
					if !errors.As(err, &ce) || ce.Status != 400 || ce.Param != tt.refuse || len(rp.Requests()) != 0 {
						t.Fatalf("got %v after %d upstream calls, want a 400 naming %s and no call", err, len(rp.Requests()), tt.refuse)
					}
					return
				}
				// The recording is a stream; a complete call fails to read
				// it, which does not matter here: the request is checked.
				tt.check(t, sentBody(t, rp, 0))
				if r.Messages[1].Name != "alice" || r.User != "user-42" {
					t.Fatal("the caller's request was changed")
				}
			})
		}
	}
}

func TestMistralToolID(t *testing.T) {
	a, b := mistralToolID("call_abc123"), mistralToolID("toolu_01A09q90qw90lq917835lq9")
	if !mistralIDRE.MatchString(a) || !mistralIDRE.MatchString(b) || a == b {
		t.Fatalf("got %q and %q, want two different nine-character ids", a, b)
	}
	if mistralToolID("call_abc123") != a || mistralToolID("D681PevKs") != "D681PevKs" {
		t.Fatal("ids must map the same way every time, and Mistral's own pass unchanged")
	}
}
