package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"

	"gantry/api"
	"gantry/config"
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
	ActAbort
	ActSort
	ActYank
	ActJump // follow a row to the view that explains it
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

// ActionKind is what an ActionRequest does to a feature's labels: one of
// the moves config.PlanMove defines.
type ActionKind string

// Kinds of ActionRequest.
const (
	KindPromote  ActionKind = config.MovePromote
	KindRollback ActionKind = config.MoveRollback
	KindCanary   ActionKind = config.MoveCanary
	KindAbort    ActionKind = config.MoveAbort
)

// ActionRequest is a confirmed change. It leaves the TUI as a message; the
// console program executes it and answers with an ActionResultMsg.
type ActionRequest struct {
	Kind    ActionKind
	Feature string
	Label   string // the label the move changes: production or canary
	From    int    // version the label points at now; 0 when it points nowhere
	To      int    // version it will point at; 0 ends a canary
	Weight  int    // canary percent
	Reason  string
	// Force promotes past the feature's evaluation gate; the reason is
	// then required and goes to the audit log.
	Force bool
	// CLI is the equivalent gantry command, for the command log and for
	// anyone who wants to script the same change.
	CLI string
}

// LabelMove is the request as the admin API takes it.
func (r ActionRequest) LabelMove() api.LabelMove {
	m := api.LabelMove{Feature: r.Feature, Action: string(r.Kind), From: r.From, Reason: r.Reason, Force: r.Force && r.Kind == KindPromote}
	if r.Kind == KindPromote || r.Kind == KindCanary {
		m.To, m.Weight = r.To, r.Weight
	}
	return m
}

// String is a short account for the status line and command log.
func (r ActionRequest) String() string {
	switch {
	case r.Label == config.LabelCanary && r.To == 0:
		return fmt.Sprintf("%s %s: end canary v%d", r.Kind, r.Feature, r.From)
	case r.Kind == KindCanary:
		return fmt.Sprintf("canary %s v%d at %d%%", r.Feature, r.To, r.Weight)
	}
	return fmt.Sprintf("%s %s production v%d -> v%d", r.Kind, r.Feature, r.From, r.To)
}

// CLICommand is the gantry command that makes the same change, From
// included, so it is refused as the dialog would be if the label moved.
func CLICommand(r ActionRequest) string {
	args := []string{"gantry", "release", string(r.Kind), shellQuote(r.Feature)}
	switch r.Kind {
	case KindPromote:
		args = append(args, strconv.Itoa(r.To))
	case KindCanary:
		args = append(args, strconv.Itoa(r.To), "--weight", strconv.Itoa(r.Weight))
	case KindAbort:
		args = []string{"gantry", "release", "canary", shellQuote(r.Feature), "--abort"}
	}
	if r.From != 0 {
		args = append(args, "--from", strconv.Itoa(r.From))
	}
	switch {
	case r.Force && r.Kind == KindPromote:
		// Forcing takes its reason as its value.
		args = append(args, "--force", shellQuote(r.Reason))
	case r.Reason != "":
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
