package tui

import (
	"gantry/api"
	"gantry/pipeline/trace"
)

// Messages the console program sends in. The TUI does no I/O: everything it
// shows arrives as one of these.
type (
	// TracesMsg carries new trace summaries from the live feed or a list
	// call, from any agent. Send them in batches (one message per tick,
	// not per trace): each message costs one render.
	TracesMsg []trace.Summary

	// TraceMsg answers a TraceRequest.
	TraceMsg struct {
		ID    string
		Trace *trace.Trace
		Err   error
	}

	// OverviewMsg is the latest overview.
	OverviewMsg api.Overview

	// OverviewErrMsg says why no agent answered for the overview this
	// round; the next OverviewMsg clears it.
	OverviewErrMsg struct{ Err error }

	// MembersMsg is the latest membership.
	MembersMsg api.Members

	// FeaturesMsg is the latest list of features with releases and labels.
	FeaturesMsg []api.Feature

	// BudgetsMsg is the latest budgets and spend.
	BudgetsMsg api.Budgets

	// ReleaseStatsMsg is the latest cluster-wide traffic of every release.
	// Once one arrives, the releases view shows its window instead of the
	// overview's per-release stats.
	ReleaseStatsMsg api.ClusterStats

	// DiffMsg answers a DiffRequest.
	DiffMsg struct {
		Request DiffRequest
		Diff    api.Diff
		Err     error
	}

	// AgentStatusMsg tells whether the console still hears from an agent.
	// A stale agent's rows stay on screen, marked, until it comes back.
	AgentStatusMsg struct {
		Agent string
		Stale bool
		Err   error
		// Left: the agent is no longer a member of the cluster; the
		// console stops following it and forgets its stale mark.
		Left bool
	}

	// AlertsMsg is the latest alerts of the cluster, worst first.
	AlertsMsg api.Alerts

	// FetchErrMsg says why no agent answered for What ("alerts",
	// "health" or "costs") this round; the next data clears it.
	FetchErrMsg struct {
		What string
		Err  error
	}

	// HealthMsg is the latest health of every model and provider.
	HealthMsg api.Health

	// CostsMsg is what a call and a good answer cost, by release, over the
	// last day, added up over every agent.
	CostsMsg []api.CostRow

	// AuditMsg is a page of the cluster's audit log for Query.
	AuditMsg struct {
		Query api.AuditQuery
		List  api.AuditList
		Err   error
	}

	// ActionResultMsg answers an ActionRequest. Result is a short account
	// of what changed, shown in the status line and the command log.
	ActionResultMsg struct {
		Request ActionRequest
		Result  string
		Err     error
	}
)

// Requests the TUI sends out, as tea.Msg values produced by the commands it
// returns. The console program intercepts them, does the I/O, and answers
// with the messages above.
type (
	// TraceRequest asks for one trace. Node is the agent that served it;
	// empty when the operator typed an id (:trace ID), so ask every agent.
	TraceRequest struct {
		ID   string
		Node string
	}

	// DiffRequest asks what changes from release A to release B.
	DiffRequest struct {
		Feature string
		A, B    int
	}

	// AuditRequest asks for the audit log filtered by the query, now and
	// at every poll after, until the next AuditRequest.
	AuditRequest api.AuditQuery

	// HealthRequest asks for the model health of every agent, from now on
	// at every poll: only the health view shows it.
	HealthRequest struct{}

	// CostsRequest asks for the cost per good answer of every release,
	// from now on at every poll: only the costs view shows it.
	CostsRequest struct{}

	// TraceSearchRequest asks every agent for the traces the filter
	// matches, so older ones than the live table holds show up too. The
	// answer is a TracesMsg.
	TraceSearchRequest api.TraceQuery

	// YankRequest asks the terminal to copy Text to the clipboard (OSC 52,
	// which works over SSH).
	YankRequest struct{ Text string }

	// BellRequest rings the terminal's bell: a new critical alert while
	// the bell is on.
	BellRequest struct{}
)
