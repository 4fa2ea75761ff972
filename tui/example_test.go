package tui_test

import (
	"fmt"

	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/tui"
)

// consoleModel is how the console program embeds the TUI: it wraps the App,
// executes the requests that come out of it, and sends the answers back in.
type consoleModel struct {
	*tui.App
	promote func(api.LabelMove) (api.LabelMoveResult, error) // the admin API client
}

func (m consoleModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch req := msg.(type) {
	case tui.ActionRequest:
		return m, func() tea.Msg {
			res, err := m.promote(req.LabelMove())
			return tui.ActionResultMsg{Request: req, Err: err, Result: fmt.Sprintf("production is v%d", res.Labels.Production)}
		}
	case tui.TraceRequest, tui.DiffRequest:
		// Fetch from the agent named in the request, answer with
		// tui.TraceMsg or tui.DiffMsg.
		return m, nil
	}
	_, cmd := m.App.Update(msg)
	return m, cmd
}

func Example() {
	app := tui.New(tui.Options{ReadOnly: false, Context: "http://127.0.0.1:7400"})
	m := consoleModel{App: app, promote: func(mv api.LabelMove) (api.LabelMoveResult, error) {
		r := api.LabelMoveResult{Feature: mv.Feature}
		r.Labels.Production = mv.To
		return r, nil
	}}
	// In the console program: tea.NewProgram(m, tea.WithAltScreen()).Run(),
	// with one goroutine per agent calling p.Send(tui.TracesMsg(batch)).
	req := tui.ActionRequest{Kind: tui.KindPromote, Feature: "support-answer", From: 2, To: 3}
	req.CLI = tui.CLICommand(req)
	_, cmd := m.Update(req)
	fmt.Println(req.CLI)
	fmt.Println(cmd().(tui.ActionResultMsg).Result)
	// Output:
	// gantry release promote support-answer 3 --from 2
	// production is v3
}
