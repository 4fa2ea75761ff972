package main

import (
	"fmt"
	"strings"
)

// hostileCases is the corpus of TestHostileInput: other is a virtual key
// of another team, viewer an admin token with the viewer role.
func hostileCases(other, viewer string) []hostileCase {
	var cs []hostileCase
	add := func(c ...hostileCase) { cs = append(cs, c...) }
	const hi = `"messages":[{"role":"user","content":"hi"}]`
	// chat is a chat completion with the dev key: body is the JSON after
	// {"model":"sim-small", when it does not start with {.
	chat := func(name, body string, status int, code, param, why string) hostileCase {
		if !strings.HasPrefix(body, "{") && !strings.HasPrefix(body, "[") && body != "" {
			body = `{"model":"sim-small",` + body + `}`
		}
		return hostileCase{name: "chat/" + name, method: "POST", path: "/v1/chat/completions", token: e2eKey, body: body,
			status: status, code: code, param: param, why: why}
	}
	bad := func(name, body, param, why string) hostileCase { return chat(name, body, 400, "", param, why) }
	ok := func(name, body, why string) hostileCase { return chat(name, body, 200, "", "", why) }
	card := "card 4111 1111 1111 1111"

	// Bodies: what is not a request at all.
	add(
		bad("empty body", ``, "", "nothing to decode"),
		bad("whitespace body", "  \n\t ", "", "nothing to decode"),
		bad("null body", `null`, "", "not an object"),
		bad("array body", `[{"model":"sim-small"}]`, "", "not an object"),
		bad("string body", `"hello"`, "", "not an object"),
		bad("number body", `12`, "", "not an object"),
		bad("truncated JSON", `{"model":"sim-small","messages":[`, "", "ends early"),
		bad("trailing object", `{"model":"sim-small",`+hi+`} {}`, "", "data after the object"),
		bad("trailing garbage", `{"model":"sim-small",`+hi+`}xyz`, "", "data after the object"),
		bad("single quotes", `{'model':'sim-small'}`, "", "not JSON"),
		bad("comments", `{"model":"sim-small", /* hi */ `+hi+`}`, "", "JSON has no comments"),
		bad("NaN", `"temperature":NaN,`+hi, "", "not JSON"),
		bad("Infinity", `"temperature":Infinity,`+hi, "", "not JSON"),
		bad("invalid UTF-8", "{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", "", "refused, not replaced"),
		bad("overlong UTF-8", "{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\"\xc0\xaf\"}]}", "", "an overlong slash"),
		bad("nesting 10,000 deep", `{"model":"sim-small","messages":`+strings.Repeat("[", 10001)+strings.Repeat("]", 10001)+`}`, "", "past the decoder's depth"),
		bad("nesting in metadata", `"metadata":{"a":`+strings.Repeat(`{"a":`, 5000)+`1`+strings.Repeat("}", 5001)+`,`+hi, "metadata", "metadata values are strings"),
		chat("body over 4 MiB", `"messages":[{"role":"user","content":"`+strings.Repeat("a", 4<<20)+`"}]`, 413, "request_too_large", "", "past limits.max_body_bytes"),
		hostileCase{name: "chat/gzip body", method: "POST", path: "/v1/chat/completions", token: e2eKey, header: []string{"Content-Encoding", "gzip"},
			body: "\x1f\x8b\x08\x00\x00\x00\x00\x00", status: 415, code: "unsupported_content_encoding", why: "compressed bodies are not read"},
		hostileCase{name: "chat/deflate body", method: "POST", path: "/v1/chat/completions", token: e2eKey, header: []string{"Content-Encoding", "deflate"},
			body: `{"model":"sim-small",` + hi + `}`, status: 415, code: "unsupported_content_encoding", why: "compressed bodies are not read"},
		hostileCase{name: "chat/two encodings", method: "POST", path: "/v1/chat/completions", token: e2eKey, header: []string{"Content-Encoding", "identity, br"},
			body: `{"model":"sim-small",` + hi + `}`, status: 415, code: "unsupported_content_encoding", why: "any encoding but identity"},
		hostileCase{name: "chat/identity encoding", method: "POST", path: "/v1/chat/completions", token: e2eKey, header: []string{"Content-Encoding", "identity"},
			body: `{"model":"sim-small",` + hi + `}`, status: 200, why: "identity is no encoding"},
		hostileCase{name: "chat/text/plain body", method: "POST", path: "/v1/chat/completions", token: e2eKey, header: []string{"Content-Type", "text/plain"},
			body: `{"model":"sim-small",` + hi + `}`, status: 200, why: "SDKs and curl differ in content types; the body is what counts"},
		ok("NUL in content", `"messages":[{"role":"user","content":"a\u0000b"}]`, "an escaped NUL is text"),
		ok("lone surrogate", `"messages":[{"role":"user","content":"\ud800"}]`, "JSON allows it; it is replaced"),
		ok("unknown fields", `"frobnicate":{"x":[1,2,3]},`+hi, "OpenAI adds fields; unknown ones are ignored"),
		ok("duplicate model key", `"model":"sim-large",`+hi, "the last one wins, and what is checked is what is sent"),
	)

	// Types: each field of the wrong JSON type, refused naming the field.
	add(
		bad("model a number", `{"model":5,`+hi+`}`, "model", "a string"),
		bad("model an object", `{"model":{"name":"sim-small"},`+hi+`}`, "model", "a string"),
		bad("model null", `{"model":null,`+hi+`}`, "model", "required"),
		bad("model missing", `{`+hi+`}`, "model", "required"),
		bad("messages a string", `"messages":"hi"`, "messages", "a list"),
		bad("messages an object", `"messages":{"role":"user"}`, "messages", "a list"),
		bad("messages empty", `"messages":[]`, "messages", "at least one"),
		bad("message a string", `"messages":["hi"]`, "messages", "an object"),
		bad("role a number", `"messages":[{"role":1,"content":"hi"}]`, "messages.role", "a string"),
		bad("role unknown", `"messages":[{"role":"root","content":"hi"}]`, "messages[0].role", "no such role"),
		bad("content a number", `"messages":[{"role":"user","content":5}]`, "messages[0].content", "a string or parts"),
		bad("content true", `"messages":[{"role":"user","content":true}]`, "messages[0].content", "a string or parts"),
		bad("content an object", `"messages":[{"role":"user","content":{"text":"hi"}}]`, "messages[0].content", "a string or parts"),
		bad("second content a number", `"messages":[{"role":"user","content":"a"},{"role":"user","content":7}]`, "messages[1].content", "names the message"),
		bad("content empty", `"messages":[{"role":"user","content":""}]`, "messages[0].content", "no content"),
		bad("part a string", `"messages":[{"role":"user","content":["hi"]}]`, "messages[0].content[0]", "parts are objects"),
		bad("part text a number", `"messages":[{"role":"user","content":[{"type":"text","text":5}]}]`, "messages[0].content[0].text", "a string"),
		bad("part type unknown", `"messages":[{"role":"user","content":[{"type":"video","video":"x"}]}]`, "messages[0].content[0].type", "not passed on"),
		bad("image_url a string", `"messages":[{"role":"user","content":[{"type":"image_url","image_url":"http://x"}]}]`, "messages[0].content[0].image_url", "an object"),
		bad("stop a number", `"stop":5,`+hi, "stop", "string or list"),
		bad("stop of numbers", `"stop":[1,2],`+hi, "stop", "string or list"),
		bad("stop an object", `"stop":{"a":"b"},`+hi, "stop", "string or list"),
		bad("temperature a string", `"temperature":"hot",`+hi, "temperature", "a number"),
		bad("top_p a string", `"top_p":"all",`+hi, "top_p", "a number"),
		bad("max_tokens a string", `"max_tokens":"ten",`+hi, "max_tokens", "a number"),
		bad("max_tokens a fraction", `"max_tokens":10.5,`+hi, "max_tokens", "a whole number"),
		bad("max_tokens 1e30", `"max_tokens":1e30,`+hi, "max_tokens", "past int64"),
		bad("max_tokens 1e400", `"max_tokens":1e400,`+hi, "max_tokens", "past float64"),
		bad("n a string", `"n":"2",`+hi, "n", "a number"),
		bad("seed 1e300", `"seed":1e300,`+hi, "seed", "past int64"),
		bad("stream a string", `"stream":"yes",`+hi, "stream", "true or false"),
		bad("user a number", `"user":5,`+hi, "user", "a string"),
		bad("user an object", `"user":{"id":1},`+hi, "user", "a string"),
		bad("metadata a string", `"metadata":"x",`+hi, "metadata", "an object"),
		bad("metadata value a number", `"metadata":{"a":1},`+hi, "metadata", "values are strings"),
		bad("tools a string", `"tools":"x",`+hi, "tools", "a list"),
		bad("tool function a string", `"tools":[{"type":"function","function":"f"}],`+hi, "tools.function", "an object"),
		bad("response_format a string", `"response_format":"json",`+hi, "response_format", "an object"),
		bad("response_format type unknown", `"response_format":{"type":"yaml"},`+hi, "response_format.type", "unknown"),
		bad("stream_options without stream", `"stream_options":{"include_usage":true},`+hi, "stream_options", "only with stream"),
		bad("temperature 3", `"temperature":3,`+hi, "temperature", "0 to 2"),
		bad("temperature negative", `"temperature":-1,`+hi, "temperature", "0 to 2"),
		bad("top_p 2", `"top_p":2,`+hi, "top_p", "0 to 1"),
		bad("tool message without id", `"messages":[{"role":"tool","content":"42"}]`, "messages[0].tool_call_id", "a tool answer names its call"),
	)

	// Numbers and sizes past their limits: a 400 naming the field, never
	// a 500 and never work spent.
	many := func(n int, item string) string {
		return strings.TrimSuffix(strings.Repeat(item+",", n), ",")
	}
	keys := func(n int) string {
		ks := make([]string, n)
		for i := range ks {
			ks[i] = fmt.Sprintf(`"k%d":"v"`, i)
		}
		return strings.Join(ks, ",")
	}
	add(
		bad("max_tokens 10^15", `"max_tokens":1000000000000000,`+hi, "max_tokens", "the ledger's sanity bound once gave a 500"),
		bad("max_tokens 2^63-1", `"max_tokens":9223372036854775807,`+hi, "max_tokens", "the ledger's sanity bound once gave a 500"),
		bad("max_tokens negative", `"max_tokens":-1,`+hi, "max_tokens", "negative"),
		bad("max_tokens past the limit", `"max_tokens":131073,`+hi, "max_tokens", "limits.max_output_tokens"),
		bad("max_completion_tokens 2M", `"max_completion_tokens":2000000,`+hi, "max_completion_tokens", "limits.max_output_tokens"),
		chat("max_tokens past the model's", `{"model":"default","max_tokens":16385,`+hi+`}`, 400, "", "max_tokens", "sim-large produces 16,384"),
		ok("max_tokens at the model's", `{"model":"sim-large","max_tokens":16384,`+hi+`}`, "exactly the model's cap"),
		bad("n zero", `"n":0,`+hi, "n", "1 to 8"),
		bad("n 1000", `"n":1000,`+hi, "n", "1 to 8"),
		bad("n negative", `"n":-5,`+hi, "n", "1 to 8"),
		chat("n on a simulator", `"n":2,`+hi, 400, "n_unsupported", "n", "the route answers with one choice"),
		chat("n on a feature", `{"model":"feature/ticket-triage","n":2,"metadata":{"ticket":"x"},`+hi+`}`, 400, "n_unsupported", "n", "a feature answers once"),
		ok("n of one", `"n":1,`+hi, "one choice is always fine"),
		bad("user of 257 bytes", `"user":"`+strings.Repeat("u", 257)+`",`+hi, "user", "256 bytes"),
		ok("user of 256 bytes", `"user":"`+strings.Repeat("u", 256)+`",`+hi, "at the limit"),
		bad("65 metadata keys", `"metadata":{`+keys(65)+`},`+hi, "metadata", "64 keys"),
		bad("metadata key of 65 bytes", `"metadata":{"`+strings.Repeat("k", 65)+`":"v"},`+hi, "metadata", "64 bytes"),
		bad("metadata value over 256 KiB", `"metadata":{"k":"`+strings.Repeat("v", 256<<10+1)+`"},`+hi, "metadata.k", "256 KiB"),
		bad("five stops", `"stop":["a","b","c","d","e"],`+hi, "stop", "4"),
		bad("empty stop", `"stop":[""],`+hi, "stop[0]", "empty"),
		bad("stop of 257 bytes", `"stop":["`+strings.Repeat("s", 257)+`"],`+hi, "stop[0]", "256 bytes"),
		bad("name of 257 bytes", `"messages":[{"role":"user","name":"`+strings.Repeat("n", 257)+`","content":"hi"}]`, "messages[0].name", "256 bytes"),
		bad("tool_call_id of 257 bytes", `"messages":[{"role":"tool","tool_call_id":"`+strings.Repeat("i", 257)+`","content":"x"}]`, "messages[0].tool_call_id", "256 bytes"),
		bad("257 parts", `"messages":[{"role":"user","content":[`+many(257, `{"type":"text","text":"x"}`)+`]}]`, "messages[0].content", "256 parts"),
		bad("257 messages", `"messages":[`+many(257, `{"role":"user","content":"x"}`)+`]`, "messages", "limits.max_messages"),
		bad("129 tool calls", `"messages":[{"role":"assistant","tool_calls":[`+many(129, `{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}`)+`]}]`, "messages[0].tool_calls", "128"),
		bad("129 tools", `"tools":[`+many(129, `{"type":"function","function":{"name":"f"}}`)+`],`+hi, "tools", "128"),
		bad("tool name of 65 bytes", `"tools":[{"type":"function","function":{"name":"`+strings.Repeat("f", 65)+`"}}],`+hi, "tools[0].function.name", "64 bytes"),
		bad("tool over 64 KiB", `"tools":[{"type":"function","function":{"name":"f","description":"`+strings.Repeat("d", 64<<10+1)+`"}}],`+hi, "tools[0].function", "64 KiB"),
		bad("tool_choice over 4 KiB", `"tool_choice":"`+strings.Repeat("c", 4<<10)+`",`+hi, "tool_choice", "4 KiB"),
		bad("model of 257 bytes", `{"model":"`+strings.Repeat("m", 257)+`",`+hi+`}`, "model", "256 bytes"),
		bad("duplicate keys in tool parameters", `"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","type":"string"}}}],`+hi, "tools[0].function.parameters", "a key twice hides one from the checks"),
	)
	for i := range 10 {
		add(bad(fmt.Sprintf("max_tokens 10^%d", 16+i), fmt.Sprintf(`"max_tokens":1%s,`, strings.Repeat("0", 16+i))+hi, "max_tokens", "every large number is a 400"))
	}

	// Streams: a request refused before the first byte is an ordinary
	// JSON error, not a broken stream.
	add(
		bad("stream with max_tokens 10^15", `"stream":true,"max_tokens":1000000000000000,`+hi, "max_tokens", "refused before the stream starts"),
		chat("stream with a bad schema", `"stream":true,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"minProperties":"x"}}},`+hi,
			400, "invalid_schema", "response_format.json_schema.schema", "refused before the stream starts"),
		chat("stream with n", `"stream":true,"n":2,`+hi, 400, "n_unsupported", "n", "refused before the stream starts"),
		ok("stream with usage", `"stream":true,"stream_options":{"include_usage":true},`+hi, "a good stream"),
		hostileCase{name: "messages/stream with max_tokens 10^15", method: "POST", path: "/v1/messages", token: e2eKey,
			body: `{"model":"sim-small","stream":true,"max_tokens":1000000000000000,` + hi + `}`, status: 400, code: "invalid_request_error", why: "refused before the stream starts"},
	)

	// Safety: a key in another case must not slip past the checks.
	add(
		chat("card in a part spelled TEXT", `{"model":"feature/support-answer","metadata":{"customer":"a","question":"b"},"messages":[{"role":"user","content":[{"type":"text","TEXT":"`+card+`"}]}]}`,
			400, "", "messages[0].content[0].TEXT", "field names of parts are exact"),
		chat("card in a part spelled TYPE", `{"model":"feature/support-answer","metadata":{"customer":"a","question":"b"},"messages":[{"role":"user","content":[{"TYPE":"text","text":"`+card+`"}]}]}`,
			400, "", "messages[0].content[0].type", "a part without its type"),
		chat("card in a part", `{"model":"feature/support-answer","metadata":{"customer":"a","question":"b"},"messages":[{"role":"user","content":[{"type":"text","text":"`+card+`"}]}]}`,
			400, "policy_blocked", "", "card numbers are blocked"),
		chat("card in a template variable", `{"model":"feature/support-answer","metadata":{"customer":"`+card+`","question":"b"},`+hi+`}`,
			400, "policy_blocked", "", "the rendered prompt is scanned"),
		chat("card in a message spelled CONTENT", `{"model":"feature/support-answer","metadata":{"customer":"a","question":"b"},"messages":[{"role":"user","CONTENT":"`+card+`"}]}`,
			400, "policy_blocked", "", "what Go decodes is what is checked"),
		chat("card in a tool's parameters", `{"model":"feature/support-answer","metadata":{"customer":"a","question":"b"},"tools":[{"type":"function","function":{"name":"f","parameters":{"description":"`+card+`"}}}],`+hi+`}`,
			400, "policy_blocked", "", "forwarded JSON is scanned too"),
		chat("deny-listed word", `{"model":"feature/support-answer","metadata":{"customer":"a","question":"internal-only"},`+hi+`}`,
			400, "policy_blocked", "", "the feature's deny list"),
		hostileCase{name: "invoke/card in a variable", method: "POST", path: "/v1/features/support-answer/invoke", token: e2eKey,
			body: `{"vars":{"customer":"` + card + `","question":"q"}}`, status: 400, code: "policy_blocked", why: "the invoke API is scanned the same"},
		hostileCase{name: "messages/card in a block spelled TEXT", method: "POST", path: "/v1/messages", token: e2eKey,
			body:   `{"model":"feature/support-answer","max_tokens":10,"metadata":{"customer":"a","question":"b"},"messages":[{"role":"user","content":[{"type":"text","TEXT":"` + card + `"}]}]}`,
			status: 400, code: "invalid_request_error", why: "the Messages API is checked on what it translates to"},
	)

	// Auth: keys, schemes and the admin API's roles.
	body := `{"model":"sim-small",` + hi + `}`
	gw := func(name string, header []string, status int, code, why string) hostileCase {
		return hostileCase{name: "auth/" + name, method: "POST", path: "/v1/chat/completions", header: header, body: body, status: status, code: code, why: why}
	}
	add(
		gw("no key", nil, 401, "missing_api_key", "a key is required"),
		gw("empty bearer", []string{"Authorization", "Bearer "}, 401, "missing_api_key", "an empty key is none"),
		gw("bearer in lower case", []string{"Authorization", "bearer " + e2eKey}, 200, "", "auth schemes are case-insensitive"),
		gw("BEARER in capitals", []string{"Authorization", "BEARER " + e2eKey}, 200, "", "auth schemes are case-insensitive"),
		gw("X-Api-Key", []string{"X-Api-Key", e2eKey}, 200, "", "the header Anthropic's SDK sends"),
		gw("Basic scheme", []string{"Authorization", "Basic " + e2eKey}, 401, "missing_api_key", "only bearer keys"),
		gw("wrong key", []string{"Authorization", "Bearer gk_wrong-key-0000000000"}, 401, "invalid_api_key", "unknown keys"),
		gw("key with a suffix", []string{"Authorization", "Bearer " + e2eKey + "x"}, 401, "invalid_api_key", "no prefix match"),
		gw("key prefix", []string{"Authorization", "Bearer " + e2eKey[:len(e2eKey)-1]}, 401, "invalid_api_key", "no prefix match"),
		gw("key in other case", []string{"Authorization", "Bearer " + strings.ToUpper(e2eKey)}, 401, "invalid_api_key", "keys are exact"),
		gw("admin token as a key", []string{"Authorization", "Bearer " + hostileAdmin}, 401, "invalid_api_key", "the planes do not share secrets"),
		gw("key of 8 KiB", []string{"Authorization", "Bearer " + strings.Repeat("k", 8<<10)}, 401, "invalid_api_key", "hashed like any other"),
		gw("key with unicode", []string{"Authorization", "Bearer gk_ключ"}, 401, "invalid_api_key", "unknown keys"),
		hostileCase{name: "auth/key in the query", method: "POST", path: "/v1/chat/completions?api_key=" + e2eKey, body: body, status: 401, code: "missing_api_key", why: "keys never travel in URLs"},
		hostileCase{name: "auth/header over 64 KiB", method: "POST", path: "/v1/chat/completions", token: e2eKey, header: []string{"X-Pad", strings.Repeat("p", 256<<10)}, body: body,
			status: 431, why: "http.Server.MaxHeaderBytes of 64 KiB (net/http allows some slack on a reused connection)"},
		hostileCase{name: "auth/admin without a token", method: "GET", path: "/admin/v1/traces", status: 401, code: "unauthorized", why: "the admin API needs a token"},
		hostileCase{name: "auth/admin with a virtual key", method: "GET", path: "/admin/v1/traces", token: e2eKey, status: 401, code: "unauthorized", why: "the planes do not share secrets"},
		hostileCase{name: "auth/admin with a wrong token", method: "GET", path: "/admin/v1/traces", token: "gat_wrong", status: 401, code: "unauthorized", why: "unknown tokens"},
		hostileCase{name: "auth/admin bearer in lower case", method: "GET", path: "/admin/v1/traces", header: []string{"Authorization", "bearer " + hostileAdmin}, status: 200, why: "auth schemes are case-insensitive"},
		hostileCase{name: "auth/viewer reads traces", method: "GET", path: "/admin/v1/traces", token: viewer, status: 200, why: "viewers read"},
		hostileCase{name: "auth/viewer creates a key", method: "POST", path: "/admin/v1/keys", token: viewer, body: `{"name":"v-key"}`, status: 403, code: "forbidden", why: "operators make keys"},
		hostileCase{name: "auth/viewer creates a token", method: "POST", path: "/admin/v1/tokens", token: viewer, body: `{"name":"v-tok","role":"admin"}`, status: 403, code: "forbidden", why: "no role escalation"},
		hostileCase{name: "auth/viewer lists tokens", method: "GET", path: "/admin/v1/tokens", token: viewer, status: 403, code: "forbidden", why: "admins only"},
		hostileCase{name: "auth/viewer puts a configuration", method: "PUT", path: "/admin/v1/config", token: viewer, body: "providers: []\n", status: 403, code: "forbidden", why: "admins only"},
		hostileCase{name: "auth/viewer profiles", method: "GET", path: "/debug/pprof/heap", token: viewer, status: 403, code: "forbidden", why: "admins only"},
		hostileCase{name: "auth/key profiles", method: "GET", path: "/debug/pprof/heap", token: e2eKey, status: 401, code: "unauthorized", why: "admins only"},
		hostileCase{name: "auth/viewer moves a label", method: "POST", path: "/admin/v1/features/support-answer/labels", token: viewer, body: `{"action":"promote","to":2}`, status: 403, code: "forbidden", why: "operators move labels"},
		hostileCase{name: "auth/token with a role past admin", method: "POST", path: "/admin/v1/tokens", token: hostileAdmin, body: `{"name":"root","role":"superuser"}`, status: 400, code: "bad_request", why: "no such role"},
		hostileCase{name: "auth/key with a role field", method: "POST", path: "/admin/v1/keys", token: hostileAdmin, body: `{"name":"k2","role":"admin"}`, status: 400, code: "bad_request", why: "keys have no role; unknown fields are refused"},
		hostileCase{name: "auth/key with a long name", method: "POST", path: "/admin/v1/keys", token: hostileAdmin, body: `{"name":"` + strings.Repeat("n", 1000) + `"}`, status: 400, code: "bad_request", why: "names are 64 bytes"},
		hostileCase{name: "auth/key with a newline name", method: "POST", path: "/admin/v1/keys", token: hostileAdmin, body: `{"name":"a\nb"}`, status: 400, code: "bad_request", why: "names are plain"},
		hostileCase{name: "auth/key of an unknown feature", method: "POST", path: "/admin/v1/keys", token: hostileAdmin, body: `{"name":"k3","features":["nope"]}`, status: 400, code: "bad_request", why: "a key names what exists"},
		hostileCase{name: "auth/key body a list", method: "POST", path: "/admin/v1/keys", token: hostileAdmin, body: `[]`, status: 400, code: "bad_request", why: "an object"},
		hostileCase{name: "auth/other team's key works", method: "POST", path: "/v1/chat/completions", token: other, body: body, status: 200, why: "the second team's key is real"},
	)

	// Paths and methods.
	path := func(name, method, p, token string, status int, code, why string) hostileCase {
		return hostileCase{name: "path/" + name, method: method, path: p, token: token, status: status, code: code, why: why}
	}
	add(
		path("unknown gateway path", "GET", "/v1/nowhere", e2eKey, 404, "unknown_url", "no such endpoint"),
		path("GET a POST endpoint", "GET", "/v1/chat/completions", e2eKey, 404, "unknown_url", "no such endpoint for GET"),
		path("DELETE a POST endpoint", "DELETE", "/v1/chat/completions", e2eKey, 404, "unknown_url", "no such endpoint for DELETE"),
		path("PUT models", "PUT", "/v1/models", e2eKey, 404, "unknown_url", "read only"),
		path("traversal to the admin API", "GET", "/v1/../admin/v1/tokens", e2eKey, 307, "", "the mux cleans the path and redirects; the target needs a token"),
		path("encoded traversal", "GET", "/v1/%2e%2e/admin/v1/tokens", e2eKey, 404, "unknown_url", "an encoded dot is no traversal"),
		path("double slash", "GET", "//admin/v1/tokens", e2eKey, 307, "", "cleaned and redirected"),
		path("traversal in a trace id", "GET", "/admin/v1/traces/..%2f..%2fetc%2fpasswd", hostileAdmin, 404, "trace_not_found", "an id, not a file name"),
		path("NUL in a trace id", "GET", "/admin/v1/traces/abc%00def", hostileAdmin, 404, "trace_not_found", "an id, not a file name"),
		path("trace id of 5,000 bytes", "GET", "/admin/v1/traces/"+strings.Repeat("a", 5000), hostileAdmin, 404, "trace_not_found", "looked up, not found"),
		path("traversal in a feature", "POST", "/v1/features/..%2f..%2fadmin/invoke", e2eKey, 404, "feature_not_found", "a name, not a path"),
		path("unknown feature", "POST", "/v1/features/nope/invoke", e2eKey, 404, "feature_not_found", "no such feature"),
		path("traversal in a dataset", "GET", "/admin/v1/datasets/..%2f..%2fetc%2fpasswd", hostileAdmin, 404, "not_found", "a name, not a path"),
		path("traversal in a collection", "GET", "/admin/v1/collections/..%2fx/documents", hostileAdmin, 404, "not_found", "a name, not a path"),
		path("unknown admin path", "GET", "/admin/v1/nowhere", hostileAdmin, 404, "", "no such endpoint"),
		path("cluster API without its secret", "POST", "/cluster/v1/apply", "", 403, "forbidden", "peers only"),
		path("cluster status without its secret", "GET", "/cluster/v1/status", hostileAdmin, 403, "forbidden", "peers only, not admins"),
		path("traces limit negative", "GET", "/admin/v1/traces?limit=-1", hostileAdmin, 400, "bad_request", "1 to 1,000"),
		path("traces limit huge", "GET", "/admin/v1/traces?limit=100000000000", hostileAdmin, 400, "bad_request", "1 to 1,000"),
		path("traces limit a word", "GET", "/admin/v1/traces?limit=all", hostileAdmin, 400, "bad_request", "a number"),
		path("traces since a word", "GET", "/admin/v1/traces?since=yesterday", hostileAdmin, 400, "bad_request", "RFC 3339"),
		path("diff of huge versions", "GET", "/admin/v1/features/support-answer/diff?a=1&b=99999999999999999999", hostileAdmin, 400, "bad_request", "versions are numbers"),
		path("diff of missing versions", "GET", "/admin/v1/features/support-answer/diff?a=1&b=999", hostileAdmin, 404, "not_found", "no such release"),
		path("releases of an unknown feature", "GET", "/admin/v1/features/nope/releases", hostileAdmin, 404, "not_found", "no such feature"),
		path("TRACE", "TRACE", "/v1/chat/completions", e2eKey, 404, "unknown_url", "no method echoes the request"),
		path("OPTIONS", "OPTIONS", "/v1/chat/completions", e2eKey, 404, "unknown_url", "no CORS preflight: browsers are not callers"),
		path("URL in the path", "GET", "/v1/http://169.254.169.254/", e2eKey, 307, "", "the double slash is cleaned and redirected on the same host; nothing is proxied"),
		path("metrics", "GET", "/metrics", "", 200, "", "open, like Prometheus expects"),
		path("health", "GET", "/healthz", "", 200, "", "open"),
	)

	// Caller schemas: compiled and bounded before anything is spent.
	schema := func(name, s string, status int, code, why string) hostileCase {
		c := chat("schema/"+name, `"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":`+s+`}},`+hi, status, code, "", why)
		c.name = "schema/" + name
		if status == 400 && code == "invalid_schema" {
			c.param = "response_format.json_schema.schema"
		}
		return c
	}
	nest := func(key string, n int) string {
		return strings.Repeat(`{"`+key+`":`, n) + `{}` + strings.Repeat("}", n)
	}
	add(
		schema("minProperties a string", `{"minProperties":"x"}`, 400, "invalid_schema", "once a 502 after a billed call"),
		schema("type unknown", `{"type":"thing"}`, 400, "invalid_schema", "against the meta-schema"),
		schema("remote $schema", `{"$schema":"http://evil.example/s"}`, 400, "invalid_schema", "never fetched"),
		schema("remote $ref", `{"$ref":"http://169.254.169.254/latest/meta-data/"}`, 400, "invalid_schema", "never fetched"),
		schema("file $ref", `{"$ref":"file:///etc/passwd"}`, 400, "invalid_schema", "never read"),
		schema("missing $ref", `{"$ref":"#/$defs/none"}`, 400, "invalid_schema", "dangling"),
		schema("circular $ref", `{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`, 400, "invalid_schema", "no loops"),
		schema("items 2,000 deep", nest("items", 2000), 400, "invalid_schema", "once seconds of CPU"),
		schema("items 65 deep", nest("items", 65), 400, "invalid_schema", "64 levels"),
		schema("not 1,000 deep", nest("not", 1000), 400, "invalid_schema", "64 levels"),
		schema("items 60 deep", nest("items", 60), 200, "", "within 64 levels"),
		schema("over 64 KiB", `{"description":"`+strings.Repeat("d", 64<<10)+`"}`, 400, "", "64 KiB"),
		schema("number past a double", `{"maximum":1e400}`, 400, "invalid_schema", "numbers a double holds"),
		schema("number of 100 digits", `{"maximum":`+strings.Repeat("9", 100)+`}`, 400, "invalid_schema", "64 characters"),
		schema("invalid pattern", `{"type":"string","pattern":"("}`, 400, "invalid_schema", "regexps compile"),
		schema("backtracking pattern", `{"type":"object","required":["x"],"properties":{"x":{"type":"string","pattern":"^(a+)+$","const":"`+strings.Repeat("a", 64)+`"}}}`, 200, "", "Go's regexps are linear: the answer is matched at once"),
		schema("a number", `5`, 400, "invalid_schema", "a schema is an object or boolean"),
		schema("reference fan-out", `{"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/b"},{"$ref":"#/$defs/b"},{"$ref":"#/$defs/b"},{"$ref":"#/$defs/b"}]},"b":{"anyOf":[{"$ref":"#/$defs/c"},{"$ref":"#/$defs/c"},{"$ref":"#/$defs/c"},{"$ref":"#/$defs/c"}]},"c":{"anyOf":[{"$ref":"#/$defs/d"},{"$ref":"#/$defs/d"},{"$ref":"#/$defs/d"},{"$ref":"#/$defs/d"}]},"d":{"anyOf":[{"$ref":"#/$defs/e"},{"$ref":"#/$defs/e"},{"$ref":"#/$defs/e"},{"$ref":"#/$defs/e"}]},"e":{"anyOf":[{"$ref":"#/$defs/f"},{"$ref":"#/$defs/f"},{"$ref":"#/$defs/f"},{"$ref":"#/$defs/f"}]},"f":{"anyOf":[{"$ref":"#/$defs/g"},{"$ref":"#/$defs/g"},{"$ref":"#/$defs/g"},{"$ref":"#/$defs/g"}]},"g":{"anyOf":[{"$ref":"#/$defs/h"},{"$ref":"#/$defs/h"},{"$ref":"#/$defs/h"},{"$ref":"#/$defs/h"}]},"h":{"anyOf":[{"type":"string"},{"type":"number"},{"type":"null"},{"type":"boolean"}]}},"$ref":"#/$defs/a"}`,
			400, "invalid_schema", "4^8 nodes once references are expanded"),
		schema("draft 4", `{"$schema":"http://json-schema.org/draft-04/schema#","type":"object"}`, 200, "", "a known draft"),
		schema("duplicate keys", `{"type":"object","type":"string"}`, 400, "", "a key twice"),
		chat("schema/name of 65 bytes", `"response_format":{"type":"json_schema","json_schema":{"name":"`+strings.Repeat("n", 65)+`","schema":{}}},`+hi, 400, "", "response_format.json_schema.name", "64 bytes"),
		chat("schema/none", `"response_format":{"type":"json_schema"},`+hi, 400, "", "response_format.json_schema", "a json_schema needs one"),
	)

	// Traces and feedback.
	tp := func(name, value string, status int, why string) hostileCase {
		return hostileCase{name: "trace/" + name, method: "POST", path: "/v1/chat/completions", token: e2eKey, header: []string{"traceparent", value},
			body: body, status: status, why: why}
	}
	fb := func(name, b string, status int, code, param, why string) hostileCase {
		return hostileCase{name: "feedback/" + name, method: "POST", path: "/v1/feedback", token: e2eKey, body: b, status: status, code: code, param: param, why: why}
	}
	add(
		tp("garbage traceparent", strings.Repeat("garbage", 100), 200, "a bad header starts a new trace"),
		tp("all-zero trace id", "00-00000000000000000000000000000000-0000000000000000-01", 200, "invalid ids start a new trace"),
		tp("version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 200, "a forbidden version starts a new trace"),
		tp("upper-case hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", 200, "W3C wants lower case"),
		tp("traceparent of 8 KiB", "00-"+strings.Repeat("a", 8<<10), 200, "a bad header starts a new trace"),
		tp("valid traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 200, "joins the trace"),
		fb("no trace_id", `{"thumbs":"up"}`, 400, "", "trace_id", "required"),
		fb("no signal", `{"trace_id":"abc"}`, 400, "", "score", "a score or thumbs"),
		fb("score 2", `{"trace_id":"abc","score":2}`, 400, "", "score", "0 to 1"),
		fb("score negative", `{"trace_id":"abc","score":-0.1}`, 400, "", "score", "0 to 1"),
		fb("score a string", `{"trace_id":"abc","score":"high"}`, 400, "", "score", "a number"),
		fb("thumbs sideways", `{"trace_id":"abc","thumbs":"sideways"}`, 400, "", "thumbs", "up or down"),
		fb("comment over 16 KiB", `{"trace_id":"abc","thumbs":"up","comment":"`+strings.Repeat("c", 16<<10+1)+`"}`, 400, "", "comment", "16 KiB"),
		fb("unknown trace", `{"trace_id":"0af7651916cd43dd8448eb211c80319d","thumbs":"up"}`, 404, "trace_not_found", "", "no such call"),
		fb("trace_id of 10 KiB", `{"trace_id":"`+strings.Repeat("t", 10<<10)+`","thumbs":"up"}`, 404, "trace_not_found", "", "looked up, not found"),
		fb("body over 64 KiB", `{"trace_id":"abc","thumbs":"up","comment":"`+strings.Repeat("c", 64<<10)+`"}`, 413, "request_too_large", "", "feedback bodies are small"),
		fb("body not JSON", `thumbs up`, 400, "", "", "JSON"),
		hostileCase{name: "feedback/wrong key", method: "POST", path: "/v1/feedback", token: "gk_wrong", body: `{"trace_id":"abc","thumbs":"up"}`, status: 401, code: "invalid_api_key", why: "a key is required"},
	)

	// The other ways in: Messages, Responses, embeddings, invoke.
	msg := func(name, b string, status int, typ, why string) hostileCase {
		return hostileCase{name: "messages/" + name, method: "POST", path: "/v1/messages", token: e2eKey, body: b, status: status, code: typ, why: why}
	}
	resp := func(name, b string, status int, param, why string) hostileCase {
		return hostileCase{name: "responses/" + name, method: "POST", path: "/v1/responses", token: e2eKey, body: b, status: status, param: param, why: why}
	}
	emb := func(name, b string, status int, param, why string) hostileCase {
		return hostileCase{name: "embeddings/" + name, method: "POST", path: "/v1/embeddings", token: e2eKey, body: b, status: status, param: param, why: why}
	}
	inv := func(name, feature, b string, status int, code, param, why string) hostileCase {
		return hostileCase{name: "invoke/" + name, method: "POST", path: "/v1/features/" + feature + "/invoke", token: e2eKey, body: b, status: status, code: code, param: param, why: why}
	}
	const ir = "invalid_request_error"
	add(
		msg("no max_tokens", `{"model":"sim-small",`+hi+`}`, 400, ir, "Anthropic requires it"),
		msg("max_tokens 10^15", `{"model":"sim-small","max_tokens":1000000000000000,`+hi+`}`, 400, ir, "the same limit as chat"),
		msg("max_tokens zero", `{"model":"sim-small","max_tokens":0,`+hi+`}`, 400, ir, "at least 1"),
		msg("content a number", `{"model":"sim-small","max_tokens":10,"messages":[{"role":"user","content":5}]}`, 400, ir, "a string or blocks"),
		msg("system a number", `{"model":"sim-small","max_tokens":10,"system":5,`+hi+`}`, 400, ir, "a string or blocks"),
		msg("stop_sequences a number", `{"model":"sim-small","max_tokens":10,"stop_sequences":5,`+hi+`}`, 400, ir, "a list"),
		msg("role unknown", `{"model":"sim-small","max_tokens":10,"messages":[{"role":"robot","content":"x"}]}`, 400, ir, "user or assistant"),
		msg("not JSON", `{"model":`, 400, ir, "JSON"),
		hostileCase{name: "messages/wrong key", method: "POST", path: "/v1/messages", token: "gk_wrong", body: `{"model":"sim-small","max_tokens":10,` + hi + `}`,
			status: 401, code: "authentication_error", why: "a key is required"},
		msg("a good one", `{"model":"sim-small","max_tokens":10,`+hi+`}`, 200, "", "the API works"),
		resp("input a number", `{"model":"sim-small","input":5}`, 400, "", "a string or items"),
		resp("max_output_tokens 10^15", `{"model":"sim-small","input":"hi","max_output_tokens":1000000000000000}`, 400, "max_output_tokens", "the same limit as chat"),
		resp("no input", `{"model":"sim-small"}`, 400, "input", "required"),
		resp("previous_response_id", `{"model":"sim-small","input":"hi","previous_response_id":"resp_x"}`, 400, "previous_response_id", "the gateway keeps no state"),
		resp("a good one", `{"model":"sim-small","input":"hi"}`, 200, "", "the API works"),
		emb("token ids", `{"model":"sim-embed","input":[1,2,3]}`, 400, "input", "strings only"),
		emb("dimensions negative", `{"model":"sim-embed","input":"x","dimensions":-1}`, 400, "dimensions", "1 to 8,192"),
		emb("dimensions 10^8", `{"model":"sim-embed","input":"x","dimensions":100000000}`, 400, "dimensions", "1 to 8,192"),
		emb("2,049 inputs", `{"model":"sim-embed","input":[`+many(2049, `"x"`)+`]}`, 400, "input", "2,048 inputs"),
		emb("empty input", `{"model":"sim-embed","input":""}`, 400, "input[0]", "something to embed"),
		hostileCase{name: "embeddings/unknown model", method: "POST", path: "/v1/embeddings", token: e2eKey, body: `{"model":"nope","input":"x"}`, status: 404, code: "model_not_found", why: "no such model"},
		emb("a good one", `{"model":"sim-embed","input":"x"}`, 200, "", "the API works"),
		inv("vars a string", "ticket-triage", `{"vars":"x"}`, 400, "", "vars", "an object"),
		inv("variable a number", "ticket-triage", `{"vars":{"ticket":5}}`, 400, "", "vars", "a string"),
		inv("variable missing", "ticket-triage", `{"vars":{}}`, 400, "", "vars", "required"),
		inv("user of 257 bytes", "ticket-triage", `{"vars":{"ticket":"x"},"user":"`+strings.Repeat("u", 257)+`"}`, 400, "", "user", "256 bytes"),
		inv("journey of 257 bytes", "ticket-triage", `{"vars":{"ticket":"x"},"journey":"`+strings.Repeat("j", 257)+`"}`, 400, "", "journey", "256 bytes"),
		inv("variable over 256 KiB", "ticket-triage", `{"vars":{"ticket":"`+strings.Repeat("t", 256<<10+1)+`"}}`, 400, "", "vars", "256 KiB"),
		inv("variable 17 levels deep", "ticket-triage", `{"vars":{"ticket":"x","deep":`+strings.Repeat("[", 17)+strings.Repeat("]", 17)+`}}`, 400, "", "vars", "16 levels"),
		inv("list of 10,001 items", "hostile-loop", `{"vars":{"a":[`+many(10001, "1")+`],"b":[],"c":[]}}`, 400, "", "vars", "10,000 items"),
		inv("loops of 10^12 steps", "hostile-loop", `{"vars":{"a":[`+many(10000, "1")+`],"b":[`+many(10000, "1")+`],"c":[`+many(10000, "1")+`]}}`,
			400, "template_work_limit", "vars", "once an hour of CPU"),
		hostileCase{name: "invoke/pin by a key without evaluation rights", method: "POST", path: "/v1/features/ticket-triage/invoke", token: other, header: []string{"X-Gantry-Release", "2"},
			body: `{"vars":{"ticket":"x"}}`, status: 403, code: "evaluation_not_allowed", why: "only evaluation keys reach releases no label serves"},
		hostileCase{name: "invoke/pin by the dev key", method: "POST", path: "/v1/features/ticket-triage/invoke", token: e2eKey, header: []string{"X-Gantry-Release", "2"},
			body: `{"vars":{"ticket":"x"}}`, status: 200, why: "the dev key may evaluate"},
		inv("a good one", "ticket-triage", `{"vars":{"ticket":"my parcel never came"}}`, 200, "", "", "the API works"),
		hostileCase{name: "invoke/pin of a missing release", method: "POST", path: "/v1/features/ticket-triage/invoke", token: e2eKey, header: []string{"X-Gantry-Release", "99"},
			body: `{"vars":{"ticket":"x"}}`, status: 404, code: "release_not_found", why: "no such version"},
		hostileCase{name: "invoke/pin not a number", method: "POST", path: "/v1/features/ticket-triage/invoke", token: e2eKey, header: []string{"X-Gantry-Release", "latest; rm -rf /"},
			body: `{"vars":{"ticket":"x"}}`, status: 400, why: "a version number"},
		hostileCase{name: "chat/journey header of 257 bytes", method: "POST", path: "/v1/chat/completions", token: e2eKey, header: []string{"X-Gantry-Journey", strings.Repeat("j", 257)},
			body: body, status: 400, why: "256 bytes"},
	)

	// Configuration: hostile YAML through PUT /admin/v1/config.
	conf := func(name, yaml, why string) hostileCase {
		return hostileCase{name: "config/" + name, method: "PUT", path: "/admin/v1/config", token: hostileAdmin, body: yaml, status: 400, code: "bad_request", why: why}
	}
	provider := func(fields string) string {
		return "providers:\n  - {name: hostile, kind: openai, " + fields + "}\nmodels:\n  - {name: hostile-m, provider: hostile}\n"
	}
	laughs := func(levels, width int) string {
		var b strings.Builder
		b.WriteString("a0: &a0 [\"lol\"]\n")
		for i := 1; i <= levels; i++ {
			fmt.Fprintf(&b, "a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), width), ","))
		}
		fmt.Fprintf(&b, "providers: *a%d\n", levels)
		return b.String()
	}
	add(
		conf("billion laughs", laughs(9, 10), "aliases expand past the budget, refused before any walk"),
		conf("wide laughs", laughs(3, 100), "a million nodes from a few lines"),
		conf("deep laughs", laughs(30, 2), "2^30 nodes from 30 lines"),
		conf("10,001 aliases", "a: &a x\nb: ["+strings.TrimSuffix(strings.Repeat("*a,", 10001), ",")+"]\n", "the alias count"),
		conf("alias to itself", "a: &a [*a]\n", "a cycle"),
		conf("merge-key bomb", "a: &a {x: 1}\nb: &b {<<: [*a, *a, *a, *a]}\nc: &c {<<: [*b, *b, *b, *b]}\nproviders: [*c]\n", "merges are aliases too"),
		conf("nesting 100,000 deep", strings.Repeat("[", 100000), "the parser's depth"),
		conf("not UTF-8", "providers: \xff\xfe\n", "text"),
		conf("python tag", "providers: !!python/object:os.system [ls]\n", "tags do not run code"),
		conf("binary tag", "providers: !!binary aGVsbG8=\n", "no binary"),
		conf("a scalar", "hello\n", "a mapping"),
		conf("tabs", "providers:\n\t- name: x\n", "YAML forbids tabs"),
		conf("empty", "", "declares nothing"),
		conf("only comments", "# nothing\n", "declares nothing"),
		conf("unknown field", "providerz: []\n", "strict fields"),
		conf("two documents", "providers: []\n---\nmodels: []\n", "one document"),
		conf("description over 4 KiB", "features:\n  - name: x\n    description: "+strings.Repeat("d", 5000)+"\n", "4 KiB"),
		conf("name over 64 bytes", "providers:\n  - {name: "+strings.Repeat("n", 65)+", kind: sim}\n", "64 bytes"),
		conf("string over 256 KiB", "providers:\n  - {name: s, kind: sim}\nmodels:\n  - {name: m, provider: s}\nfeatures:\n  - name: f\n    releases: [{version: 1, route: m, system: "+strings.Repeat("s", 256<<10+1)+"}]\n    labels: {production: 1}\n", "256 KiB"),
		conf("base_url over 2 KiB", provider("base_url: 'https://x.example/"+strings.Repeat("p", 2100)+"', api_key_env: OPENAI_API_KEY"), "2 KiB"),
		conf("release max_tokens 10^15", "providers:\n  - {name: s, kind: sim}\nmodels:\n  - {name: m, provider: s}\nfeatures:\n  - name: f\n    releases: [{version: 1, route: m, params: {max_tokens: 1000000000000000}}]\n    labels: {production: 1}\n", "the same limit as a caller's"),
		conf("feature max_tokens past the limit", "providers:\n  - {name: s, kind: sim}\nmodels:\n  - {name: m, provider: s}\nfeatures:\n  - name: f\n    max_tokens: 1048576\n    releases: [{version: 1, route: m}]\n    labels: {production: 1}\n", "limits.max_output_tokens"),
		conf("max_body_bytes 10^20", "limits: {max_body_bytes: 99999999999999999999}\n", "past int64"),
		conf("metadata address", provider("base_url: 'http://169.254.169.254/latest/meta-data/', api_key_env: OPENAI_API_KEY"), "link-local, where clouds serve credentials"),
		conf("metadata address in IPv6", provider("base_url: 'http://[fd00:ec2::254]/', api_key_env: OPENAI_API_KEY"), "AWS's IPv6 metadata"),
		conf("mapped metadata address", provider("base_url: 'http://[::ffff:169.254.169.254]/', api_key_env: OPENAI_API_KEY"), "IPv4 in IPv6"),
		conf("metadata address as a number", provider("base_url: 'http://2852039166/', api_key_env: OPENAI_API_KEY"), "169.254.169.254 as one number"),
		conf("metadata address in octal", provider("base_url: 'http://0251.0376.0251.0376/', api_key_env: OPENAI_API_KEY"), "octal forms"),
		conf("metadata host", provider("base_url: 'http://metadata.google.internal/', api_key_env: OPENAI_API_KEY"), "GCP's metadata name"),
		conf("metadata host in capitals", provider("base_url: 'http://METADATA.GOOGLE.INTERNAL./', api_key_env: OPENAI_API_KEY"), "names are case-insensitive"),
		conf("link-local address", provider("base_url: 'http://169.254.1.1:8080/', api_key_env: OPENAI_API_KEY"), "all of link-local"),
		conf("unspecified address", provider("base_url: 'http://0.0.0.0/', api_key_env: OPENAI_API_KEY"), "not a host"),
		conf("file URL", provider("base_url: 'file:///etc/passwd', api_key_env: OPENAI_API_KEY"), "http or https"),
		conf("credentials in the URL", provider("base_url: 'http://user:pw@x.example/', api_key_env: OPENAI_API_KEY"), "keys only by variable"),
		conf("key variable GANTRY_CLUSTER_SECRET", provider("base_url: 'http://x.example', api_key_env: GANTRY_CLUSTER_SECRET"), "the agent's own secret"),
		conf("key variable GANTRY_ with the suffix", provider("base_url: 'http://x.example', api_key_env: GANTRY_ADMIN_API_KEY"), "GANTRY_ never"),
		conf("key variable AWS_SECRET_ACCESS_KEY", provider("base_url: 'http://x.example', api_key_env: AWS_SECRET_ACCESS_KEY"), "cloud credentials"),
		conf("key variable HOME", provider("base_url: 'http://x.example', api_key_env: HOME"), "not a provider key's name"),
		conf("unused provider naming HOME", "providers:\n  - {name: hostile-unused, kind: openai, base_url: 'http://x.example', api_key_env: HOME}\n", "checked whether or not a model uses it"),
		conf("key variable with a newline", provider("base_url: 'http://x.example', api_key_env: \"X\\nY_API_KEY\""), "a variable name"),
		conf("schema not a mapping", "providers:\n  - {name: s, kind: sim}\nmodels:\n  - {name: m, provider: s}\nfeatures:\n  - name: f\n    releases: [{version: 1, route: m, schema: [1, 2]}]\n    labels: {production: 1}\n", "a JSON Schema is a mapping"),
		conf("template calling a helper", "providers:\n  - {name: s, kind: sim}\nmodels:\n  - {name: m, provider: s}\nfeatures:\n  - name: f\n    releases: [{version: 1, route: m, template: [{role: user, content: '{{exec \"ls\"}}'}]}]\n    labels: {production: 1}\n", "templates cannot run code"),
		hostileCase{name: "config/over 16 MiB", method: "PUT", path: "/admin/v1/config", token: hostileAdmin, body: strings.Repeat("x", 17<<20), status: 400, code: "bad_request", why: "the file limit"},
		hostileCase{name: "config/with a virtual key", method: "PUT", path: "/admin/v1/config", token: e2eKey, body: "providers: []\n", status: 401, code: "unauthorized", why: "admins only"},
		hostileCase{name: "config/release through the API with max_tokens 10^15", method: "POST", path: "/admin/v1/features/support-answer/releases", token: hostileAdmin,
			body: `{"route":"default","params":{"max_tokens":1000000000000000}}`, status: 400, code: "bad_request", why: "the same limit as a caller's"},
		hostileCase{name: "config/label to a missing version", method: "POST", path: "/admin/v1/features/support-answer/labels", token: hostileAdmin,
			body: `{"action":"promote","to":999}`, status: 404, code: "not_found", why: "no such release"},
		hostileCase{name: "config/canary weight 1000", method: "POST", path: "/admin/v1/features/support-answer/labels", token: hostileAdmin,
			body: `{"action":"canary","to":2,"weight":1000}`, status: 400, code: "bad_request", why: "1 to 100"},
		hostileCase{name: "config/dataset not YAML", method: "POST", path: "/admin/v1/datasets", token: hostileAdmin, body: "\x00\x01\x02", status: 400, code: "bad_request", why: "a dataset is text"},
		hostileCase{name: "config/dataset laughs", method: "POST", path: "/admin/v1/datasets", token: hostileAdmin, body: laughs(9, 10), status: 400, code: "bad_request", why: "datasets share the YAML budget"},
	)
	return cs
}
