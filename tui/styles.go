package tui

import "github.com/charmbracelet/lipgloss"

// Styles are the console's looks, built from one renderer so each SSH
// session gets its own colour profile. Nothing relies on colour alone: the
// selected row has a marker, states have words or glyphs.
type Styles struct {
	Title    lipgloss.Style
	Tab      lipgloss.Style
	TabOn    lipgloss.Style
	Header   lipgloss.Style
	Selected lipgloss.Style
	Dim      lipgloss.Style
	OK       lipgloss.Style
	Warn     lipgloss.Style
	Err      lipgloss.Style
	Key      lipgloss.Style
	Dialog   lipgloss.Style
	Button   lipgloss.Style
	ButtonOn lipgloss.Style
	Add      lipgloss.Style
	Remove   lipgloss.Style
}

// NewStyles builds the styles on r; nil means lipgloss's default renderer.
func NewStyles(r *lipgloss.Renderer) Styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	s := r.NewStyle
	return Styles{
		Title:    s().Bold(true),
		Tab:      s().Foreground(lipgloss.AdaptiveColor{Light: "240", Dark: "245"}),
		TabOn:    s().Bold(true).Underline(true),
		Header:   s().Bold(true),
		Selected: s().Reverse(true),
		Dim:      s().Foreground(lipgloss.AdaptiveColor{Light: "244", Dark: "243"}),
		OK:       s().Foreground(lipgloss.Color("2")),
		Warn:     s().Foreground(lipgloss.Color("3")),
		Err:      s().Foreground(lipgloss.Color("1")).Bold(true),
		Key:      s().Bold(true),
		Dialog:   s().Border(lipgloss.NormalBorder()).Padding(0, 1),
		Button:   s(),
		ButtonOn: s().Reverse(true).Bold(true),
		Add:      s().Foreground(lipgloss.Color("2")),
		Remove:   s().Foreground(lipgloss.Color("1")),
	}
}
