package responses

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"gantry/pipeline/chat"
)

func answer() (*chat.Response, chat.Usage) {
	return &chat.Response{Choices: []chat.Choice{{Message: chat.Message{Role: "assistant", Content: chat.Text("Looking it up."),
			ToolCalls: []chat.ToolCall{
				{ID: "call_1", Type: "function", Function: chat.FunctionCall{Name: "track_order", Arguments: `{"id":"A-1001"}`}},
				{ID: "call_2", Type: "function", Function: chat.FunctionCall{Name: "refund", Arguments: `{}`}},
			}}, FinishReason: "tool_calls"}}},
		chat.Usage{PromptTokens: 30, CompletionTokens: 12, TotalTokens: 42, CompletionTokensDetails: &chat.CompletionTokensDetails{ReasoningTokens: 4}}
}

// TestOutputAsInput goes round as a stateless client does: the output
// items of one response, sent back as input, are the assistant turn the
// gateway answered.
func TestOutputAsInput(t *testing.T) {
	resp, usage := answer()
	r := &Request{Model: "m"}
	out := FromChat("c1", 0, r, resp, usage)
	if out.Usage.OutputTokensDetails.ReasoningTokens != 4 || out.Status != "completed" {
		t.Fatalf("response: %+v", out)
	}
	items, _ := json.Marshal(out.Output)
	body := `{"model":"m","input":[{"role":"user","content":"Where is A-1001?"}` + "," + string(items[1:]) + "}"
	_, req, err := Decode([]byte(body))
	if err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	got := req.Messages[1:]
	want := []chat.Message{resp.Choices[0].Message}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

// TestStreamMatchesAnswer: the events of a stream rebuild, in their
// response.completed, the same response FromChat makes of the whole
// answer, and the deltas add up to it.
func TestStreamMatchesAnswer(t *testing.T) {
	resp, usage := answer()
	zero, one := 0, 1
	text, finish := "Looking it up.", "tool_calls"
	args := []string{`{"id":`, `"A-1001"}`}
	chunks := []chat.Chunk{
		{Choices: []chat.ChunkChoice{{Delta: chat.Delta{Role: "assistant", Content: &text}}}},
		{Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{{Index: &zero, ID: "call_1", Function: chat.FunctionCall{Name: "track_order", Arguments: args[0]}}}}}}},
		{Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{{Index: &zero, Function: chat.FunctionCall{Arguments: args[1]}}}}}}},
		{Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{{Index: &one, ID: "call_2", Function: chat.FunctionCall{Name: "refund", Arguments: "{}"}}}}}}},
		{Choices: []chat.ChunkChoice{{FinishReason: &finish}}},
	}
	r := &Request{Model: "m"}
	st := NewStream("c1", 0, r)
	var events []Event
	for i := range chunks {
		events = append(events, st.Chunk(&chunks[i])...)
	}
	events = append(events, st.Finish(finish, usage)...)
	var deltaText, deltaArgs strings.Builder
	var completed struct {
		Response json.RawMessage `json:"response"`
	}
	seq := -1
	for _, e := range events {
		var v struct {
			Type  string `json:"type"`
			Seq   int    `json:"sequence_number"`
			Delta string `json:"delta"`
		}
		if err := json.Unmarshal(e.Data, &v); err != nil || v.Type != e.Name || v.Seq != seq+1 {
			t.Fatalf("event %s %s: type %q seq %d after %d, %v", e.Name, e.Data, v.Type, v.Seq, seq, err)
		}
		seq = v.Seq
		switch e.Name {
		case "response.output_text.delta":
			deltaText.WriteString(v.Delta)
		case "response.function_call_arguments.delta":
			deltaArgs.WriteString(v.Delta)
		case "response.completed":
			json.Unmarshal(e.Data, &completed)
		}
	}
	want, _ := json.Marshal(FromChat("c1", 0, r, resp, usage))
	var a, b any
	json.Unmarshal(completed.Response, &a)
	json.Unmarshal(want, &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("response.completed:\n got %s\nwant %s", completed.Response, want)
	}
	if deltaText.String() != text || deltaArgs.String() != args[0]+args[1]+"{}" {
		t.Fatalf("deltas: text %q args %q", deltaText.String(), deltaArgs.String())
	}
}

func TestDecodeRefusals(t *testing.T) {
	for _, tc := range []struct{ body, param string }{
		{`{"model":"m","input":"hi","previous_response_id":"resp_1"}`, "previous_response_id"},
		{`{"model":"m","input":"hi","store":true}`, "store"},
		{`{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}`, "input[0].type"},
		{`{"model":"m","input":"hi","tools":[{"type":"web_search"}]}`, "tools[0].type"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}`, "input[0].content[0].type"},
		{`{"model":"m","input":"hi","text":{"format":{"type":"json_schema"}}}`, "text.format"},
		{`{"model":"m"}`, "input"},
		{`{"input":"hi"}`, "model"},
	} {
		_, _, err := Decode([]byte(tc.body))
		var ce *chat.Error
		if !errors.As(err, &ce) || ce.Status != 400 || ce.Param != tc.param {
			t.Fatalf("%s: got %v, want a 400 naming %s", tc.body, err, tc.param)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"model":"m","input":"hi","instructions":"be brief","text":{"format":{"type":"json_schema","name":"x","schema":{}}}}`))
	f.Add([]byte(`{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"ok"}]}]}`))
	f.Add([]byte(`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,AA=="}]}],"tool_choice":{"type":"function","name":"f"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, req, err := Decode(body)
		if err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Status != 400 {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if len(req.Messages) == 0 || req.Model == "" {
			t.Fatalf("accepted a request with nothing to send: %+v", req)
		}
		// Whatever was accepted can be answered and streamed.
		var buf bytes.Buffer
		st := NewStream("c", 0, r)
		text := "x"
		for _, e := range append(st.Chunk(&chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &text}}}}), st.Finish("stop", chat.Usage{})...) {
			buf.Write(e.Bytes())
		}
		if _, err := json.Marshal(FromChat("c", 0, r, &chat.Response{Choices: []chat.Choice{{Message: chat.Message{Content: chat.Text("x")}}}}, chat.Usage{})); err != nil {
			t.Fatalf("answer: %v", err)
		}
	})
}
