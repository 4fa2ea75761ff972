package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"

	"gantry/api"
)

// ActionID names what a key does, independent of which key it is.
type ActionID int

// Actions of the views and the console as a whole.
const (
	ActUp ActionID = iota + 1
	ActDown
	ActTop
	ActBottom
	ActPageUp
	ActPageDown
	ActFilter
	ActPause
	ActOpen
	ActNextTab
	ActMark
	ActDiff
	ActPromote
	ActRollback
	ActWeight
)

// Action is a key with its meaning: what it is called, what help says, and
// whether it changes the cluster. Dangerous actions are the ones read-only
// mode removes; the console checks that in one place, App.dispatch.
type Action struct {
	ID        ActionID
	Name      string
	Key       key.Binding
	Dangerous bool
}

// navActions are the motions every list view shares.
func navActions(k KeyMap) []Action {
	return []Action{
		{ID: ActUp, Name: "up", Key: k.Up},
		{ID: ActDown, Name: "down", Key: k.Down},
		{ID: ActTop, Name: "top", Key: k.Top},
		{ID: ActBottom, Name: "bottom", Key: k.Bottom},
		{ID: ActPageUp, Name: "page up", Key: k.PageUp},
		{ID: ActPageDown, Name: "page down", Key: k.PageDown},
	}
}

// actionMsg delivers a dispatched action to the view that declared it.
type actionMsg struct{ Action Action }

// ActionKind is what an ActionRequest does to a feature's labels.
type ActionKind string

// Kinds of ActionRequest.
const (
	KindPromote  ActionKind = api.ActionPromote
	KindRollback ActionKind = api.ActionRollback
	KindCanary   ActionKind = api.ActionCanary
)

// ActionRequest is a confirmed change. It leaves the TUI as a message; the
// console program executes it and answers with an ActionResultMsg.
type ActionRequest struct {
	Kind    ActionKind
	Feature string
	From    int // version the label points at now; 0 when it points nowhere
	To      int // version it will point at; for a canary, 0 removes it
	Weight  int // canary percent
	Reason  string
	// CLI is the equivalent gantry command, for the command log and for
	// anyone who wants to script the same change.
	CLI string
}

// Label is the label the request moves.
func (r ActionRequest) Label() string {
	if r.Kind == KindCanary {
		return api.LabelCanary
	}
	return api.LabelProduction
}

// LabelMove is the request as the admin API takes it.
func (r ActionRequest) LabelMove() api.LabelMove {
	return api.LabelMove{
		Feature: r.Feature,
		Label:   r.Label(),
		Action:  string(r.Kind),
		From:    r.From,
		To:      r.To,
		Weight:  r.Weight,
		Reason:  r.Reason,
	}
}

// String is a short account for the status line and command log.
func (r ActionRequest) String() string {
	switch r.Kind {
	case KindCanary:
		if r.To == 0 {
			return fmt.Sprintf("remove canary of %s", r.Feature)
		}
		return fmt.Sprintf("canary %s v%d at %d%%", r.Feature, r.To, r.Weight)
	default:
		return fmt.Sprintf("%s %s v%d -> v%d", r.Kind, r.Feature, r.From, r.To)
	}
}

// CLICommand is the gantry command that makes the same change.
func CLICommand(r ActionRequest) string {
	args := []string{"gantry", "release", string(r.Kind), shellQuote(r.Feature), "--to", strconv.Itoa(r.To)}
	if r.Kind == KindCanary {
		args = append(args, "--weight", strconv.Itoa(r.Weight))
	}
	if r.Reason != "" {
		args = append(args, "--reason", shellQuote(r.Reason))
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@/:=", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
