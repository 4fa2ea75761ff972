package responses_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"gantry/pipeline"
	"gantry/pipeline/chat"
	inbound "gantry/pipeline/inbound/responses"
	"gantry/pipeline/internal/gwtest"
	"gantry/pipeline/trace"
)

// handler is what the agent's /v1/responses handler does: decode, run
// the pipeline, write the response or its events. Errors keep OpenAI's
// shape.
func handler(g *gwtest.Gateway) http.Handler {
	var seq atomic.Int64
	fail := func(w http.ResponseWriter, err error) {
		var ce *chat.Error
		if !errors.As(err, &ce) {
			ce = &chat.Error{Status: 500, Type: chat.TypeServer, Message: err.Error()}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ce.Status)
		json.NewEncoder(w).Encode(ce.Body())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		areq, req, err := inbound.Decode(body)
		if err != nil {
			fail(w, err)
			return
		}
		c := &pipeline.Call{ID: strconv.FormatInt(seq.Add(1), 10), TraceID: trace.NewTraceID(), Received: time.Now(),
			Entry: pipeline.EntryResponses, Secret: gwtest.Secret(r), Req: req}
		created := c.Received.Unix()
		if !req.Stream {
			if err := g.Serve(r.Context(), c); err != nil {
				fail(w, err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(inbound.FromChat(c.ID, created, areq, c.Resp, c.Usage))
			return
		}
		st := inbound.NewStream(c.ID, created, areq)
		started := false
		write := func(evs []inbound.Event) error {
			for _, e := range evs {
				if _, err := w.Write(e.Bytes()); err != nil {
					return err
				}
			}
			w.(http.Flusher).Flush()
			return nil
		}
		c.Emit = func(ch *chat.Chunk) error {
			if !started {
				started = true
				w.Header().Set("Content-Type", "text/event-stream")
				if err := write(st.Start()); err != nil {
					return err
				}
			}
			return write(st.Chunk(ch))
		}
		if err := g.Serve(r.Context(), c); err != nil {
			if !started {
				fail(w, err)
				return
			}
			var ce *chat.Error
			errors.As(err, &ce)
			write(st.Fail(ce))
			return
		}
		write(st.Finish(c.Resp.Choices[0].FinishReason, c.Usage))
	})
}

func client(t *testing.T) (openai.Client, *gwtest.Gateway) {
	t.Helper()
	g := gwtest.New(t)
	mux := http.NewServeMux()
	mux.Handle("POST /v1/responses", handler(g))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return openai.NewClient(option.WithBaseURL(srv.URL+"/v1"), option.WithAPIKey(gwtest.Key), option.WithMaxRetries(0)), g
}

func ask() responses.ResponseNewParams {
	return responses.ResponseNewParams{Model: "sim-small", Instructions: openai.String("Answer briefly."),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Where is my order?")}, MaxOutputTokens: openai.Int(200)}
}

func TestSDKText(t *testing.T) {
	c, g := client(t)
	resp, err := c.Responses.New(context.Background(), ask())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if resp.Status != "completed" || resp.OutputText() == "" || resp.Usage.InputTokens <= 0 || resp.Usage.OutputTokens <= 0 || !strings.HasPrefix(resp.ID, "resp_") {
		t.Fatalf("response: status %s text %q usage %+v id %s", resp.Status, resp.OutputText(), resp.Usage, resp.ID)
	}
	tr := g.Traces()[0]
	if tr.Entry != pipeline.EntryResponses || tr.Output != resp.OutputText() || tr.InputTokens != int(resp.Usage.InputTokens) || tr.CostUSD <= 0 {
		t.Fatalf("trace: %+v", tr)
	}
}

func TestSDKStreaming(t *testing.T) {
	c, _ := client(t)
	s := c.Responses.NewStreaming(context.Background(), ask())
	var kinds []string
	var deltas strings.Builder
	var final responses.Response
	for s.Next() {
		ev := s.Current()
		kinds = append(kinds, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			deltas.WriteString(ev.Delta)
		case "response.completed":
			final = ev.AsResponseCompleted().Response
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added", "response.output_text.delta"}
	for i, k := range want {
		if kinds[i] != k {
			t.Fatalf("events: %v, want them to start %v", kinds, want)
		}
	}
	if kinds[len(kinds)-1] != "response.completed" || final.OutputText() != deltas.String() || deltas.Len() == 0 || final.Usage.OutputTokens <= 0 {
		t.Fatalf("events %v; completed text %q, deltas %q, usage %+v", kinds, final.OutputText(), deltas.String(), final.Usage)
	}
}

func TestSDKToolsAndStructuredOutput(t *testing.T) {
	c, _ := client(t)
	p := ask()
	p.Tools = []responses.ToolUnionParam{responses.ToolParamOfFunction("track_order",
		map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}, "required": []string{"id"}}, false)}
	p.ToolChoice = responses.ResponseNewParamsToolChoiceUnion{OfToolChoiceMode: openai.Opt(responses.ToolChoiceOptionsRequired)}
	resp, err := c.Responses.New(context.Background(), p)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var call responses.ResponseOutputItemUnion
	for _, it := range resp.Output {
		if it.Type == "function_call" {
			call = it
		}
	}
	if call.Name != "track_order" || call.CallID == "" || !json.Valid([]byte(call.Arguments.OfString)) {
		t.Fatalf("want a track_order call, got %+v", resp.Output)
	}
	// Send the call and its output back, statelessly, and ask for JSON.
	out := responses.ResponseInputItemParamOfFunctionCallOutput(`{"status":"shipped"}`)
	out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
	p.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
		responses.ResponseInputItemParamOfMessage("Where is my order?", responses.EasyInputMessageRoleUser),
		responses.ResponseInputItemParamOfFunctionCall(call.Arguments.OfString, call.CallID, call.Name),
		out,
	}}
	p.ToolChoice = responses.ResponseNewParamsToolChoiceUnion{OfToolChoiceMode: openai.Opt(responses.ToolChoiceOptionsNone)}
	p.Text = responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigUnionParam{OfJSONSchema: &responses.ResponseFormatTextJSONSchemaConfigParam{
		Name: "status", Schema: map[string]any{"type": "object", "required": []string{"status"}, "properties": map[string]any{"status": map[string]any{"type": "string"}}}}}}
	next, err := c.Responses.New(context.Background(), p)
	if err != nil {
		t.Fatalf("after the function output: %v", err)
	}
	var v struct {
		Status *string `json:"status"`
	}
	if err := json.Unmarshal([]byte(next.OutputText()), &v); err != nil || v.Status == nil {
		t.Fatalf("structured output %q: %v", next.OutputText(), err)
	}
}

func TestSDKRefusesState(t *testing.T) {
	c, g := client(t)
	for name, edit := range map[string]func(p *responses.ResponseNewParams){
		"previous_response_id": func(p *responses.ResponseNewParams) { p.PreviousResponseID = openai.String("resp_123") },
		"store":                func(p *responses.ResponseNewParams) { p.Store = openai.Bool(true) },
	} {
		p := ask()
		edit(&p)
		_, err := c.Responses.New(context.Background(), p)
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Param != name || !strings.Contains(ae.Message, "Gantry keeps no") {
			t.Fatalf("%s: got %v, want a 400 naming it", name, err)
		}
	}
	if n := len(g.Traces()); n != 0 {
		t.Fatalf("%d calls reached the pipeline", n)
	}
}
