package provider

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"gantry/pipeline/chat"
)

// DefaultAzureAPIVersion is the generally available data-plane API version
// Gantry speaks when the configuration names none.
const DefaultAzureAPIVersion = "2024-10-21"

// Azure calls Azure OpenAI: the chat completions API of a deployment, the
// model's upstream name naming the deployment. The wire format is
// OpenAI's; the URL, the api-version and the credentials differ.
type Azure struct {
	caller
	base, version string
}

var _ Provider = (*Azure)(nil)

// AzureAuth says how an Azure call authenticates.
type AzureAuth struct {
	// Key is sent in the api-key header.
	Key string
	// Token, when set, is called for each request and its result sent as
	// an Entra ID bearer token, so a token refreshed in the environment is
	// picked up without a restart.
	Token func() (string, error)
}

// NewAzure returns a provider for the Azure OpenAI resource at endpoint,
// such as https://NAME.openai.azure.com. An empty version means
// DefaultAzureAPIVersion; a nil client means DefaultClient.
func NewAzure(endpoint, version string, auth AzureAuth, client *http.Client) *Azure {
	if version == "" {
		version = DefaultAzureAPIVersion
	}
	h := http.Header{}
	if auth.Key != "" && auth.Token == nil {
		h.Set("Api-Key", auth.Key)
	}
	a := &Azure{caller: newCaller(h, client), base: strings.TrimRight(endpoint, "/"), version: version}
	if auth.Token != nil {
		a.sign = func(req *http.Request, _ []byte) error {
			tok, err := auth.Token()
			if err != nil {
				return &Error{Kind: KindConnect, Message: "no Entra ID token", Err: err}
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			return nil
		}
	}
	return a
}

// url of an operation of a deployment.
func (a *Azure) url(deployment, op string) string {
	return a.base + "/openai/deployments/" + url.PathEscape(deployment) + "/" + op + "?api-version=" + url.QueryEscape(a.version)
}

func (a *Azure) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	body, err := encodeOpenAI(req, false)
	if err != nil {
		return nil, err
	}
	data, err := a.complete(ctx, a.url(req.Model, "chat/completions"), body)
	if err != nil {
		return nil, err
	}
	return decodeOpenAIResponse(data)
}

func (a *Azure) Stream(ctx context.Context, req *chat.Request) (Stream, error) {
	body, err := encodeOpenAI(req, true)
	if err != nil {
		return nil, err
	}
	events, err := a.stream(ctx, a.url(req.Model, "chat/completions"), "text/event-stream", body)
	if err != nil {
		return nil, err
	}
	// Azure's first chunk often carries only prompt_filter_results and no
	// choices; the decoder passes it as an empty chunk.
	return startStream(ctx, events, &openAIDecoder{})
}

// entraToken reads a bearer token from an environment variable at each
// call.
func entraToken(getenv func(string) string, name string) func() (string, error) {
	return func() (string, error) {
		tok := strings.TrimSpace(getenv(name))
		if tok == "" {
			return "", fmt.Errorf("environment variable %s is empty or unset", name)
		}
		return tok, nil
	}
}
