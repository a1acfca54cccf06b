package tui

import (
	"io"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Colours are adaptive: the light variant is picked on a light terminal
// background, so that every state stays readable on both.
var (
	colGood   = lipgloss.AdaptiveColor{Light: "28", Dark: "42"}
	colChange = lipgloss.AdaptiveColor{Light: "136", Dark: "214"}
	colBlock  = lipgloss.AdaptiveColor{Light: "166", Dark: "208"}
	colBad    = lipgloss.AdaptiveColor{Light: "160", Dark: "203"}
	colDim    = lipgloss.AdaptiveColor{Light: "244", Dark: "244"}
	colAccent = lipgloss.AdaptiveColor{Light: "57", Dark: "141"}
	colHunk   = lipgloss.AdaptiveColor{Light: "31", Dark: "38"}
)

// styles are built on one renderer so that NoColor (an ASCII profile)
// applies to all of them, the help line included.
type styles struct {
	title, dim, accent, bold   lipgloss.Style
	good, change, block, bad   lipgloss.Style
	add, del, hunk, diffHeader lipgloss.Style
}

func newStyles(out io.Writer, noColor bool) (styles, *lipgloss.Renderer) {
	r := lipgloss.NewRenderer(out)
	if noColor {
		r.SetColorProfile(termenv.Ascii)
	}
	s := styles{
		title:      r.NewStyle().Bold(true).Foreground(colAccent),
		dim:        r.NewStyle().Foreground(colDim),
		accent:     r.NewStyle().Foreground(colAccent),
		bold:       r.NewStyle().Bold(true),
		good:       r.NewStyle().Foreground(colGood),
		change:     r.NewStyle().Foreground(colChange),
		block:      r.NewStyle().Foreground(colBlock),
		bad:        r.NewStyle().Foreground(colBad),
		add:        r.NewStyle().Foreground(colGood),
		del:        r.NewStyle().Foreground(colBad),
		hunk:       r.NewStyle().Foreground(colHunk),
		diffHeader: r.NewStyle().Bold(true),
	}
	return s, r
}

func newHelp(r *lipgloss.Renderer) help.Model {
	h := help.New()
	keyStyle := r.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "240", Dark: "250"})
	descStyle := r.NewStyle().Foreground(colDim)
	h.Styles = help.Styles{
		Ellipsis:       descStyle,
		ShortKey:       keyStyle,
		ShortDesc:      descStyle,
		ShortSeparator: descStyle,
		FullKey:        keyStyle,
		FullDesc:       descStyle,
		FullSeparator:  descStyle,
	}
	return h
}

// keyMap holds every key the program answers to; each screen shows the
// ones that work there.
type keyMap struct {
	Quit, Scroll, Yes, All, No, Repair, Close key.Binding
}

func newKeyMap() keyMap {
	return keyMap{
		Quit:   key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "stop safely")),
		Scroll: key.NewBinding(key.WithKeys("up", "down", "pgup", "pgdown", "k", "j", "home", "end"), key.WithHelp("↑/↓", "scroll")),
		Yes:    key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "apply this step")),
		All:    key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "apply all")),
		No:     key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "decline")),
		Repair: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "repair failing steps")),
		Close:  key.NewBinding(key.WithKeys("q", "ctrl+c", "enter"), key.WithHelp("q", "quit")),
	}
}
