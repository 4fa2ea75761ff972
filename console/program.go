package console

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"gantry/api"
	"gantry/tui"
)

// Options configure one console program.
type Options struct {
	FleetOptions
	// ReadOnly removes every action that changes the cluster.
	ReadOnly bool
	// Renderer draws the styles; over SSH, the session's own.
	Renderer *lipgloss.Renderer
	// Tick redraws the screen (the clock, ages) when nothing else does;
	// default one second.
	Tick time.Duration
	// MaxTraces bounds the live trace table; 0 is the TUI's default.
	MaxTraces int
	// Bell rings the terminal's bell when a new critical alert appears.
	Bell bool
}

// DefaultTick is how often the screen is redrawn without news.
const DefaultTick = time.Second

// tickMsg redraws the clock and ages.
type tickMsg time.Time

// Model is the console program's root model: the TUI, and the fleet that
// answers the requests leaving it.
type Model struct {
	app   *tui.App
	fleet *Fleet
	ctx   context.Context
	tick  time.Duration
	term  *termWriter
}

// termWriter is the program's output shared with the renderer, which
// writes each frame in one Write: a sequence the console sends itself
// (clipboard, bell) goes between two frames, never inside one.
type termWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (t *termWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.w.Write(p)
}

func (t *termWriter) write(s string) {
	if t.w != nil {
		t.Write([]byte(s))
	}
}

// output is what the program writes to: out through t, still a terminal
// file when out is one, so the program finds the terminal's size and modes.
func (t *termWriter) output(out io.Writer) io.Writer {
	t.w = out
	if f, ok := out.(*os.File); ok {
		return ttyFile{File: f, t: t}
	}
	return t
}

// ttyFile is a terminal file whose writes go through the termWriter.
type ttyFile struct {
	*os.File
	t *termWriter
}

func (f ttyFile) Write(p []byte) (int, error) { return f.t.Write(p) }

var _ tea.Model = (*Model)(nil)

// NewModel wraps a new TUI around fleet. ctx bounds the calls the model
// makes for the TUI.
func NewModel(ctx context.Context, fleet *Fleet, o Options) *Model {
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	app := tui.New(tui.Options{
		ReadOnly:  o.ReadOnly,
		Renderer:  o.Renderer,
		MaxTraces: o.MaxTraces,
		Context:   strings.Join(fleet.Agents(), ","),
		Bell:      o.Bell,
	})
	return &Model{app: app, fleet: fleet, ctx: ctx, tick: o.Tick, term: &termWriter{}}
}

// App is the TUI inside.
func (m *Model) App() *tui.App { return m.app }

func (m *Model) tickCmd() tea.Cmd {
	return tea.Tick(m.tick, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Init starts the clock.
func (m *Model) Init() tea.Cmd { return tea.Batch(m.app.Init(), m.tickCmd()) }

// Update executes what the TUI asks for and passes everything else on.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch req := msg.(type) {
	case tickMsg:
		_, cmd := m.app.Update(req) // marks the frame for redraw
		return m, tea.Batch(cmd, m.tickCmd())
	case tui.TraceRequest:
		return m, func() tea.Msg {
			ctx, cancel := context.WithTimeout(m.ctx, DefaultTimeout)
			defer cancel()
			t, err := m.fleet.Trace(ctx, req.ID, req.Node)
			return tui.TraceMsg{ID: req.ID, Trace: t, Err: err}
		}
	case tui.DiffRequest:
		return m, func() tea.Msg {
			ctx, cancel := context.WithTimeout(m.ctx, DefaultTimeout)
			defer cancel()
			d, err := m.fleet.Diff(ctx, req.Feature, req.A, req.B)
			return tui.DiffMsg{Request: req, Diff: d, Err: err}
		}
	case tui.HealthRequest:
		m.fleet.WatchHealth()
		return m, nil
	case tui.CostsRequest:
		m.fleet.WatchCosts()
		return m, nil
	case tui.AuditRequest:
		m.fleet.SetAuditQuery(api.AuditQuery(req))
		return m, nil
	case tui.TraceSearchRequest:
		return m, func() tea.Msg {
			ctx, cancel := context.WithTimeout(m.ctx, DefaultTimeout)
			defer cancel()
			return m.fleet.SearchTraces(ctx, api.TraceQuery(req))
		}
	case tui.YankRequest:
		// OSC 52: the terminal, local or at the far end of SSH, puts the
		// text on its clipboard.
		m.term.write("\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(req.Text)) + "\a")
		return m, nil
	case tui.BellRequest:
		m.term.write("\a")
		return m, nil
	case tui.ActionRequest:
		if m.app.ReadOnly() {
			// The TUI never sends one read-only; this is the second lock.
			return m, func() tea.Msg {
				return tui.ActionResultMsg{Request: req, Err: fmt.Errorf("read-only console")}
			}
		}
		return m, func() tea.Msg {
			ctx, cancel := context.WithTimeout(m.ctx, DefaultTimeout)
			defer cancel()
			res, err := m.fleet.MoveLabel(ctx, req.LabelMove())
			return tui.ActionResultMsg{Request: req, Result: resultText(req, res), Err: err}
		}
	}
	_, cmd := m.app.Update(msg)
	return m, cmd
}

func resultText(req tui.ActionRequest, res api.LabelMoveResult) string {
	l := res.Labels
	s := fmt.Sprintf("production is v%d", l.Production)
	if l.Canary != 0 {
		s += fmt.Sprintf(", canary v%d at %d%%", l.Canary, l.CanaryWeight)
	}
	if res.Index != 0 {
		s += fmt.Sprintf(" (log index %d)", res.Index)
	}
	return s
}

// View is the TUI's screen.
func (m *Model) View() string { return m.app.View() }

// Run runs a console program on in and out until the operator quits or ctx
// ends. extra options are added to the program's (alt screen, no mouse,
// the given input and output).
func Run(ctx context.Context, o Options, in io.Reader, out io.Writer, extra ...tea.ProgramOption) error {
	return run(ctx, o, in, out, nil, extra...)
}

// run is Run with an optional relay: a function that feeds the program
// messages from elsewhere (an SSH session's window changes) and returns
// when its context ends. Run owns the relay's goroutine.
func run(parent context.Context, o Options, in io.Reader, out io.Writer, relay func(context.Context, func(tea.Msg)), extra ...tea.ProgramOption) error {
	fleet, err := NewFleet(o.FleetOptions)
	if err != nil {
		return err
	}
	if err := Check(parent, o.FleetOptions); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	m := NewModel(ctx, fleet, o)
	opts := append([]tea.ProgramOption{tea.WithAltScreen(), tea.WithInput(in), tea.WithOutput(m.term.output(out)), tea.WithContext(ctx)}, extra...)
	p := tea.NewProgram(m, opts...)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fleet.Run(ctx, p.Send)
	}()
	if relay != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			relay(ctx, p.Send)
		}()
	}
	_, err = p.Run()
	cancel()
	wg.Wait()
	if errors.Is(err, tea.ErrProgramKilled) && parent.Err() != nil {
		err = nil // the session or the signal ended it
	}
	return err
}
