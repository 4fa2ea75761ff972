// Package compress shrinks a call's messages to a release's context policy:
// it drops the oldest conversation turns, or plans the summary that replaces
// them. System and developer instructions are never touched, and the latest
// turns are kept verbatim. Everything here is pure; the gateway makes the
// summary call and keeps the summaries.
package compress

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"

	"gantry/pipeline/chat"
)

// Count counts the tokens of messages.
type Count func([]chat.Message) int

// pinned messages are instructions: kept whatever the strategy.
func pinned(m chat.Message) bool { return m.Role == "system" || m.Role == "developer" }

// Older lists the indexes of the turns a strategy may remove: every
// message that is not an instruction, except the last keep turns. A tool
// answer goes with the assistant message that called the tool, so the
// boundary never separates them.
func Older(msgs []chat.Message, keep int) []int {
	var turns []int
	for i, m := range msgs {
		if !pinned(m) {
			turns = append(turns, i)
		}
	}
	if len(turns) <= keep {
		return nil
	}
	cut := len(turns) - keep
	// Keep a tool answer with its call: move the boundary back over tool
	// messages, then over the assistant message that called them.
	for cut > 0 && msgs[turns[cut]].Role == "tool" {
		cut--
	}
	return turns[:cut]
}

// DropOldest removes the oldest removable turns, one at a time, until the
// messages count at most limit tokens or nothing more may go. It returns
// the messages and how many were dropped; the input is not changed.
func DropOldest(msgs []chat.Message, keep, limit int, count Count) ([]chat.Message, int) {
	older := Older(msgs, keep)
	drop := map[int]bool{}
	out := msgs
	for n := 0; n < len(older) && count(out) > limit; {
		// Drop a whole turn: a message and the tool answers after it.
		drop[older[n]] = true
		n++
		for n < len(older) && msgs[older[n]].Role == "tool" {
			drop[older[n]] = true
			n++
		}
		out = without(msgs, drop)
	}
	return out, len(drop)
}

func without(msgs []chat.Message, drop map[int]bool) []chat.Message {
	out := make([]chat.Message, 0, len(msgs)-len(drop))
	for i, m := range msgs {
		if !drop[i] {
			out = append(out, m)
		}
	}
	return out
}

// SummaryIntro starts the message that stands for the summarised turns.
const SummaryIntro = "Summary of the earlier conversation, written to save space:\n"

// Summarized replaces the turns at older with one system message holding
// summary, where the first of them was.
func Summarized(msgs []chat.Message, older []int, summary string) []chat.Message {
	if len(older) == 0 {
		return msgs
	}
	drop := map[int]bool{}
	for _, i := range older {
		drop[i] = true
	}
	out := make([]chat.Message, 0, len(msgs)-len(older)+1)
	for i, m := range msgs {
		if i == older[0] {
			out = append(out, chat.Message{Role: "system", Content: chat.Text(SummaryIntro + summary)})
		}
		if !drop[i] {
			out = append(out, m)
		}
	}
	return out
}

// Keys are what summaries are cached by: keys[k] is the key of a summary
// of the first k+1 turns at older. A key covers the route that writes the
// summary and the turns it replaces, each field length-prefixed so no two
// prefixes share one. A conversation that asks again finds its summary,
// and one that grew finds the summary of its earlier turns to build on.
func Keys(route string, msgs []chat.Message, older []int) [][32]byte {
	h := sha256.New()
	var n [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	str("gantry-summary-v1")
	str(route)
	keys := make([][32]byte, len(older))
	for k, i := range older {
		str(msgs[i].Role)
		str(Text(msgs[i]))
		h.Sum(keys[k][:0]) // the state goes on: the next key extends it
	}
	return keys
}

// Key is the key of a summary of every turn at older.
func Key(route string, msgs []chat.Message, older []int) [32]byte {
	keys := Keys(route, msgs, older)
	if len(keys) == 0 {
		return [32]byte{}
	}
	return keys[len(keys)-1]
}

// MaxTranscriptBytes bounds what one summary call reads.
const MaxTranscriptBytes = 256 << 10

// Request is the call that summarises the turns at older with at most
// maxTokens of output, building on the summary of the turns before them
// when there is one (earlier is "" otherwise).
func Request(msgs []chat.Message, older []int, earlier string, maxTokens int) *chat.Request {
	var b strings.Builder
	if earlier != "" {
		b.WriteString("(summary of what came before) ")
		b.WriteString(earlier)
		b.WriteString("\n")
	}
	for _, i := range older {
		if b.Len() >= MaxTranscriptBytes {
			break
		}
		b.WriteString(msgs[i].Role)
		b.WriteString(": ")
		b.WriteString(Text(msgs[i]))
		b.WriteString("\n")
	}
	t := 0.0
	return &chat.Request{
		Messages: []chat.Message{
			{Role: "system", Content: chat.Text("Summarise this conversation for the assistant that continues it. Keep every fact, name, number, decision and open question; drop pleasantries. Write plain sentences, no preamble.")},
			{Role: "user", Content: chat.Text(b.String())},
		},
		MaxTokens:   maxTokens,
		Temperature: &t,
	}
}

// Text is a message's text with its tool calls, as a transcript shows it.
func Text(m chat.Message) string {
	s := m.Content.Text
	for _, p := range m.Content.Parts {
		if p.Type == "text" {
			s += p.Text
		}
	}
	for _, tc := range m.ToolCalls {
		s += "\n[tool call " + tc.Function.Name + " " + tc.Function.Arguments + "]"
	}
	return s
}
