package validate

import (
	"fmt"
	"strings"

	"gantry/pipeline/chat"
)

// RepairMessage is the user message that sends an invalid output back to the
// model: what failed, where, and what to do. The failures are listed one a
// line with JSON pointers, which models follow more reliably than prose.
func RepairMessage(fs []Failure) chat.Message {
	var b strings.Builder
	b.WriteString("Your previous reply did not satisfy the required JSON Schema.\n")
	if len(fs) == 1 {
		b.WriteString("Problem:\n")
	} else {
		fmt.Fprintf(&b, "%d problems:\n", len(fs))
	}
	for _, f := range fs {
		b.WriteString("- ")
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	b.WriteString("Reply again with only the corrected JSON value: no explanation and no code fences.")
	return chat.Message{Role: "user", Content: chat.Text(b.String())}
}

// Repair returns the messages of a repair attempt: the conversation so far,
// the invalid reply as the assistant's turn, and the repair message.
func Repair(msgs []chat.Message, reply string, fs []Failure) []chat.Message {
	out := make([]chat.Message, 0, len(msgs)+2)
	out = append(out, msgs...)
	out = append(out, chat.Message{Role: "assistant", Content: chat.Text(reply)})
	return append(out, RepairMessage(fs))
}
