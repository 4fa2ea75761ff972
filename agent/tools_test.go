package agent

import (
	"encoding/json"
	"strings"
	"testing"

	"gantry/config"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider/fake"
)

const toolsBody = `{"model":"r",%s"messages":[{"role":"user","content":"Where is order 42?"}],
 "tools":[{"type":"function","function":{"name":"lookup_order","parameters":{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}}}]}`

func TestToolCallsPassThrough(t *testing.T) {
	u := startWithUpstreams(t, fake.Options{ToolArguments: `{"order_id":"42"}`, Record: true}, fake.Options{}, config.Route{})
	resp, body := u.call(t, strings.Replace(toolsBody, "%s", "", 1))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var out chat.Response
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	calls := out.Choices[0].Message.ToolCalls
	if len(calls) != 1 || calls[0].Function.Name != "lookup_order" || calls[0].Function.Arguments != `{"order_id":"42"}` || out.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("tool call not passed back: %+v finish %q", calls, out.Choices[0].FinishReason)
	}
	sent := u.primary.Requests()[0].Body
	if !strings.Contains(string(sent), `"lookup_order"`) {
		t.Fatalf("the upstream never saw the tools: %s", sent)
	}

	// Streamed, the call arrives in pieces that add up to the same arguments.
	resp, body = u.call(t, strings.Replace(toolsBody, "%s", `"stream":true,`, 1))
	var args strings.Builder
	name := ""
	for _, e := range readSSE(t, strings.NewReader(body)) {
		if e == "[DONE]" {
			continue
		}
		var ch chat.Chunk
		if err := json.Unmarshal([]byte(e), &ch); err != nil {
			t.Fatalf("chunk %q: %v", e, err)
		}
		for _, c := range ch.Choices {
			for _, tc := range c.Delta.ToolCalls {
				name += tc.Function.Name
				args.WriteString(tc.Function.Arguments)
			}
		}
	}
	if name != "lookup_order" || args.String() != `{"order_id":"42"}` {
		t.Fatalf("streamed tool call %q(%s)", name, args.String())
	}
}
