package chat

// CompletionTokensDetails breaks completion tokens down. Reasoning tokens
// are part of the completion tokens, as in OpenAI's usage.
type CompletionTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// ReasoningTokens is the part of the completion the model spent thinking.
func (u Usage) ReasoningTokens() int {
	if u.CompletionTokensDetails == nil {
		return 0
	}
	return u.CompletionTokensDetails.ReasoningTokens
}
