package tui

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/x/ansi"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// Screen layout, in lines. Every screen fits the terminal's height: the
// program runs inline, and the renderer would cut off the top otherwise.
const (
	maxTitleWidth = 24
	runHintLines  = 3 // hint lines under a step while running
	finishLogTail = 6 // log lines kept on the finish screen
)

// View renders the current screen.
func (m *model) View() string {
	w, h := m.size()
	var lines []string
	switch {
	case m.runDone && !m.logPending:
		lines = m.finishLines(w, h)
	case m.confirm != nil:
		lines = m.consentLines(w)
	default:
		lines = m.runningLines(w)
	}
	limit := h
	if m.quitting {
		// Bubble Tea erases the line the cursor is on when it exits: end
		// on an empty line so the whole last screen stays in scrollback.
		limit = h - 1
	}
	if len(lines) > limit {
		lines = lines[:limit]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			l = ansi.Truncate(l, w, "…")
		}
		lines[i] = strings.TrimRight(l, " ")
	}
	if m.quitting {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// layout sizes the viewports for the screen about to be drawn.
func (m *model) layout() {
	w, h := m.size()
	_, logH := m.runningSplit(w, h)
	m.logVP.Width = max(w-2, 1)
	m.logVP.Height = logH
	var b strings.Builder
	for i, l := range m.log {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(ansi.Truncate(l.text, m.logVP.Width, "…"))
	}
	m.logVP.SetContent(b.String())
	if m.follow {
		m.logVP.GotoBottom()
	}

	if m.confirm != nil {
		content := m.reviewLines(w)
		m.review = len(content)
		m.reviewVP.Width = w
		// header, title, rule above; rule, question, blank, help below
		m.reviewVP.Height = max(min(len(content), h-7), 1)
		m.reviewVP.SetContent(strings.Join(content, "\n"))
	}
}

func (m *model) title() string {
	if m.opts.Title != "" {
		return m.opts.Title
	}
	return "nixbuilder-setup"
}

func (m *model) headerLine() string {
	s := m.st.title.Render(m.title())
	if m.mode != "" {
		s += m.st.dim.Render(" · " + string(m.mode))
	}
	if m.opts.Name != "" {
		b := " · builder " + m.opts.Name
		if m.opts.Port != 0 {
			b += " on port " + strconv.Itoa(m.opts.Port)
		}
		s += m.st.dim.Render(b)
	}
	return s
}

func (m *model) spinnerGlyph() string {
	if m.static {
		return m.st.accent.Render(m.spin.Spinner.Frames[0])
	}
	return m.spin.View()
}

// statusLine says what is happening right now.
func (m *model) statusLine() string {
	var text string
	switch {
	case m.cancelled:
		text = "stopping at a safe point…"
	case m.authorizing:
		return "  " + m.st.bold.Render("sudo needs your password to make the changes as root:")
	case !m.started:
		text = "starting…"
	default:
		var active []string
		verb := "checking"
		for _, s := range m.steps {
			if s.state.active() {
				active = append(active, s.title)
				if s.state == stateApplying {
					verb = "applying"
				}
			}
		}
		switch {
		case len(active) == 1:
			text = verb + " " + active[0] + "…"
		case len(active) > 1:
			text = fmt.Sprintf("checking %d steps…", len(active))
		case m.anyResult():
			text = "working…"
		default:
			text = "checking every step…"
		}
	}
	return "  " + m.spinnerGlyph() + " " + m.st.dim.Render(text)
}

func (m *model) anyResult() bool {
	for _, s := range m.steps {
		if s.state != statePending {
			return true
		}
	}
	return false
}

func (m *model) helpLine(bs ...key.Binding) string {
	return m.help.ShortHelpView(bs)
}

// runningSplit divides the running screen between the step list and the
// log: the steps get what they need, the log at least a few lines once
// there is output, at most maxLogHeight.
func (m *model) runningSplit(w, h int) (stepsAvail, logH int) {
	// header, status, blank before the list; blank and help after
	avail := max(h-5, 1)
	need := 0
	for _, s := range m.steps {
		need += len(m.stepBlock(s, w, 10, runHintLines))
	}
	if len(m.log) == 0 {
		return avail, 0
	}
	least := 3
	if i, ok := m.index[m.log[len(m.log)-1].id]; ok && m.steps[i].state.active() {
		least = 5 // output is streaming: it is what there is to watch
	}
	logH = min(max(avail-need-1, least), maxLogHeight, len(m.log))
	if logH+1 >= avail {
		logH = max(avail-2, 0)
	}
	if logH == 0 {
		return avail, 0
	}
	return avail - logH - 1, logH
}

func (m *model) titleWidth() int {
	tw := 0
	for _, s := range m.steps {
		tw = max(tw, ansi.StringWidth(s.title))
	}
	return min(tw, maxTitleWidth)
}

func (m *model) glyph(s stepState) string {
	switch s {
	case stateChecking, stateApplying:
		return m.spinnerGlyph()
	case stateOK, stateDone:
		return m.st.good.Render("✓")
	case stateNeedsChange:
		return m.st.change.Render("•")
	case stateBlocked:
		return m.st.block.Render("!")
	case stateFailed:
		return m.st.bad.Render("✗")
	case stateSkipped:
		return m.st.dim.Render("-")
	}
	return m.st.dim.Render("·")
}

// stateText is the state in words with the step's detail, so that the
// list reads the same without colour.
func (m *model) stateText(s *stepView) string {
	with := func(word string, st func(...string) string) string {
		if s.detail == "" {
			return st(word)
		}
		return st(word) + ": " + s.detail
	}
	switch s.state {
	case stateChecking:
		return m.st.dim.Render("checking…")
	case stateApplying:
		return m.st.accent.Render("applying…")
	case stateOK:
		if s.detail == "" {
			return "ok"
		}
		return s.detail
	case stateNeedsChange:
		return with("needs change", m.st.change.Render)
	case stateDone:
		return with("done", m.st.good.Render)
	case stateBlocked:
		return with("blocked", m.st.block.Render)
	case stateFailed:
		return with("failed", m.st.bad.Render)
	case stateSkipped:
		return with("skipped", m.st.dim.Render)
	}
	return ""
}

// stepBlock is a step's line, and under a blocked or failed step its
// hint, at most hintMax lines of it (all when hintMax < 0, and then the
// detail is wrapped rather than cut).
func (m *model) stepBlock(s *stepView, w, tw, hintMax int) []string {
	title := s.title
	if ansi.StringWidth(title) > tw {
		title = ansi.Truncate(title, tw, "…")
	}
	title += strings.Repeat(" ", tw-ansi.StringWidth(title))
	lead := "  " + m.glyph(s.state) + " " + title + "  "
	var lines []string
	if hintMax < 0 {
		indent := strings.Repeat(" ", ansi.StringWidth(lead))
		for i, l := range wrapText(ansi.Strip(m.stateText(s)), w-len(indent)) {
			if i == 0 {
				lines = append(lines, lead+m.restyleState(s, l))
			} else {
				lines = append(lines, indent+l)
			}
		}
	} else {
		lines = []string{ansi.Truncate(lead+m.stateText(s), w, "…")}
	}
	// While running, hints show under steps that wait for the user; on
	// the finish screen (hintMax < 0) under every problem.
	if s.hint != "" && (s.state == stateBlocked || s.state == stateFailed || hintMax < 0) && hintMax != 0 {
		lines = append(lines, m.hintLines(s.hint, w, "      ", hintMax)...)
	}
	return lines
}

// restyleState colours the state word at the start of a wrapped line.
func (m *model) restyleState(s *stepView, line string) string {
	styles := map[stepState]func(...string) string{
		stateNeedsChange: m.st.change.Render, stateDone: m.st.good.Render,
		stateBlocked: m.st.block.Render, stateFailed: m.st.bad.Render, stateSkipped: m.st.dim.Render,
	}
	st, ok := styles[s.state]
	if !ok {
		return line
	}
	word, rest, found := strings.Cut(line, ":")
	if !found {
		return st(line)
	}
	return st(word) + ":" + rest
}

// hintLines renders a hint as "→ hint", wrapped under indent.
func (m *model) hintLines(hint string, w int, indent string, limit int) []string {
	wrapped := wrapText(hint, w-len(indent)-2)
	if limit >= 0 && len(wrapped) > limit {
		wrapped = append(wrapped[:limit-1], "…")
	}
	out := make([]string, len(wrapped))
	for i, l := range wrapped {
		lead := "  "
		if i == 0 {
			lead = "→ "
		}
		out[i] = indent + m.st.accent.Render(lead) + l
	}
	return out
}

// wrapText word-wraps plain text (which may hold newlines, such as a
// config snippet) to width w at spaces only, so that commands and paths
// stay whole for copying; a word longer than a line is broken.
func wrapText(text string, w int) []string {
	w = max(w, 10)
	var out []string
	for _, para := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		indent := para[:len(para)-len(strings.TrimLeft(para, " "))]
		line, lw := indent, ansi.StringWidth(indent)
		empty := true
		for _, word := range strings.Fields(para) {
			ww := ansi.StringWidth(word)
			if !empty && lw+1+ww > w {
				out = append(out, line)
				line, lw, empty = indent, ansi.StringWidth(indent), true
			}
			if !empty {
				line += " "
				lw++
			}
			for lw+ww > w { // a word longer than a line
				cut := max(w-lw, 1)
				line += ansi.Truncate(word, cut, "")
				out = append(out, line)
				word = ansi.TruncateLeft(word, cut, "")
				ww = ansi.StringWidth(word)
				line, lw = indent, ansi.StringWidth(indent)
			}
			line += word
			lw += ww
			empty = false
		}
		out = append(out, line)
	}
	return out
}

func (m *model) runningLines(w int) []string {
	_, h := m.size()
	stepsAvail, logH := m.runningSplit(w, h)
	lines := []string{m.headerLine(), m.statusLine(), ""}
	lines = append(lines, m.stepWindow(w, stepsAvail)...)
	if logH > 0 {
		id := m.log[len(m.log)-1].id
		label := "── log · " + id + " "
		if !m.follow {
			label += fmt.Sprintf("(%d%%) ", int(m.logVP.ScrollPercent()*100))
		}
		lines = append(lines, m.st.dim.Render(label+strings.Repeat("─", max(w-ansi.StringWidth(label), 0))))
		for _, l := range strings.Split(m.logVP.View(), "\n") {
			lines = append(lines, "  "+m.st.dim.Render(strings.TrimRight(l, " ")))
		}
	}
	bs := []key.Binding{m.keys.Quit}
	if len(m.log) > logH && logH > 0 {
		bs = []key.Binding{withHelp(m.keys.Scroll, "↑/↓", "scroll log"), m.keys.Quit}
	}
	if !m.cancelled {
		lines = append(lines, "", m.helpLine(bs...))
	}
	return lines
}

func withHelp(b key.Binding, k, desc string) key.Binding {
	b.SetHelp(k, desc)
	return b
}

// stepWindow is the step list cut to avail lines around the step in
// focus (the active one, else the last with a result), with counts of the
// steps above and below the cut.
func (m *model) stepWindow(w, avail int) []string {
	tw := m.titleWidth()
	var lines []string
	var owner []int // step index of each line
	focusFirst, focusLast := 0, 0
	focus := -1
	for i, s := range m.steps {
		if s.state.active() || (focus < 0 || !m.steps[focus].state.active()) && s.state != statePending {
			focus = i
		}
	}
	for i, s := range m.steps {
		b := m.stepBlock(s, w, tw, runHintLines)
		if i == focus {
			focusFirst, focusLast = len(lines), len(lines)+len(b)-1
		}
		for range b {
			owner = append(owner, i)
		}
		lines = append(lines, b...)
	}
	if len(lines) <= avail {
		return lines
	}
	if avail < 3 {
		return lines[focusFirst:min(focusFirst+avail, len(lines))]
	}
	// Show the focus with two lines of what comes next.
	start := min(max(focusLast+3-avail, 0), focusFirst)
	start = min(start, len(lines)-avail)
	end := start + avail
	out := append([]string(nil), lines[start:end]...)
	if start > 0 {
		out[0] = m.st.dim.Render(fmt.Sprintf("  ↑ %d more", owner[start]+1))
	}
	if end < len(lines) {
		out[len(out)-1] = m.st.dim.Render(fmt.Sprintf("  ↓ %d more", len(m.steps)-owner[end-1]))
	}
	return out
}

// reviewLines is the content of the review screen: every change with its
// diff or command.
func (m *model) reviewLines(w int) []string {
	var out []string
	// Summaries, paths and commands wrap at spaces so they stay whole for
	// copying; diff lines wrap hard, since their spacing is content.
	wrapTo := func(prefix, s string, style func(...string) string) {
		limit := max(w-len(prefix)-2, 10)
		wrapped := ansi.Wrap(s, limit, "")
		if strings.HasPrefix(prefix, "    ") && isDiffLine(s) {
			wrapped = ansi.Hardwrap(s, limit, true)
		}
		for i, l := range strings.Split(wrapped, "\n") {
			p := prefix
			if i > 0 {
				p += "  "
			}
			out = append(out, p+style(l))
		}
	}
	plain := func(s ...string) string { return strings.Join(s, " ") }
	for i, c := range m.confirm.changes {
		if i > 0 {
			out = append(out, "")
		}
		head := m.st.dim.Render("["+kindLabel(c.Kind)+"]") + " " + c.Summary
		if c.Root {
			head += m.st.change.Render(" (as root)")
		}
		wrapTo("", head, plain)
		if c.Path != "" && !strings.Contains(c.Summary, c.Path) {
			wrapTo("    ", c.Path, plain)
		}
		if len(c.Command) > 0 {
			wrapTo("    ", "$ "+plan.QuoteArgs(c.Command), m.st.accent.Render)
		}
		if c.Diff != "" {
			for _, l := range strings.Split(strings.TrimRight(c.Diff, "\n"), "\n") {
				wrapTo("    ", l, m.diffStyle(l))
			}
		}
	}
	return out
}

func kindLabel(k plan.ChangeKind) string {
	switch k {
	case plan.ChangeFile:
		return "file"
	case plan.ChangeRemove:
		return "remove"
	case plan.ChangeCommand:
		return "run"
	case plan.ChangeContainer:
		return "docker"
	}
	return string(k)
}

func (m *model) diffStyle(l string) func(...string) string {
	switch {
	case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
		return m.st.diffHeader.Render
	case strings.HasPrefix(l, "@@"):
		return m.st.hunk.Render
	case strings.HasPrefix(l, "+"):
		return m.st.add.Render
	case strings.HasPrefix(l, "-"):
		return m.st.del.Render
	}
	return func(s ...string) string { return strings.Join(s, " ") }
}

func (m *model) consentLines(w int) []string {
	c := m.confirm
	n := len(c.changes)
	what := "1 change"
	if n != 1 {
		what = fmt.Sprintf("%d changes", n)
	}
	lines := []string{
		m.headerLine(),
		m.st.bold.Render("Review: "+c.step.Title) + m.st.dim.Render(" ("+c.step.ID+") · "+what),
		m.st.dim.Render(strings.Repeat("─", w)),
	}
	for _, l := range strings.Split(m.reviewVP.View(), "\n") {
		lines = append(lines, strings.TrimRight(l, " "))
	}
	rule := strings.Repeat("─", w)
	if m.review > m.reviewVP.Height {
		first := m.reviewVP.YOffset + 1
		last := min(m.reviewVP.YOffset+m.reviewVP.Height, m.review)
		label := fmt.Sprintf("── lines %d–%d of %d, ↑/↓ to scroll ", first, last, m.review)
		rule = label + strings.Repeat("─", max(w-ansi.StringWidth(label), 0))
	}
	lines = append(lines, m.st.dim.Render(rule),
		"Apply? "+m.st.bold.Render("y")+" yes · "+m.st.bold.Render("a")+
			" yes, and to all later steps · "+m.st.bold.Render("n")+" no, change nothing",
		"",
		m.helpLine(m.keys.Yes, m.keys.All, m.keys.No, m.keys.Scroll, m.keys.Quit))
	return lines
}

// outcomeGlyph is the glyph for a status in the result event.
func (m *model) outcomeGlyph(status string) string {
	if status == "not-run" {
		return m.st.dim.Render("·")
	}
	return m.glyph(stateFor(status))
}

// finishLines is the last screen: the summary, what to do next, and for a
// failure the log's tail and where the full log is. It is what stays in
// the scrollback.
func (m *model) finishLines(w, h int) []string {
	if m.quitting {
		h-- // room for the empty last line (see View)
	}
	r := m.result
	if r == nil { // the engine returned without a result event
		r = &plan.Event{Type: plan.EventResult, Summary: fmt.Sprintf("stopped (exit %d)", m.exit)}
	}
	var glyph string
	switch m.exit {
	case plan.ExitOK:
		glyph = m.st.good.Render("✓")
	case plan.ExitBlocked, plan.ExitInterrupted:
		glyph = m.st.block.Render("!")
	default:
		glyph = m.st.bad.Render("✗")
	}
	head := []string{m.headerLine()}
	for i, l := range wrapText(r.Summary, w-4) {
		if i == 0 {
			head = append(head, "  "+glyph+" "+m.st.bold.Render(l))
		} else {
			head = append(head, "    "+m.st.bold.Render(l))
		}
	}

	grid := m.outcomeGrid(r, w)
	blocks, notRun := m.problemBlocks(r, w)
	problems := slices.Concat(blocks...)
	notes := m.noteLines(w)
	var logTail []string
	if m.exit != 0 && len(m.log) > 0 {
		tail := m.log[max(len(m.log)-finishLogTail, 0):]
		label := fmt.Sprintf("── log · %s (last %d of %d lines) ", tail[len(tail)-1].id, len(tail), len(m.log))
		logTail = append(logTail, m.st.dim.Render(label+strings.Repeat("─", max(w-ansi.StringWidth(label), 0))))
		for _, l := range tail {
			logTail = append(logTail, "  "+m.st.dim.Render(ansi.Truncate(l.text, w-2, "…")))
		}
		switch {
		case m.logPath != "":
			// A path is never cut: it goes on its own lines when long.
			if ansi.StringWidth(m.logPath) <= w-13 {
				logTail = append(logTail, "  Full log: "+m.logPath)
			} else {
				logTail = append(logTail, "  Full log:")
				for _, l := range strings.Split(ansi.Hardwrap(m.logPath, w-4, true), "\n") {
					logTail = append(logTail, "    "+l)
				}
			}
		case m.logErr != nil:
			logTail = append(logTail, "  "+m.st.bad.Render("Could not save the full log: "+m.logErr.Error()))
		}
	}
	var next []string
	switch {
	case m.exit == plan.ExitOK && m.mode != plan.Plan:
		next = m.usageLines()
	case m.waitingForRepair() && m.repair:
		next = []string{"  Repairing the failing steps…", ""}
	case m.waitingForRepair() && m.quitting:
		next = []string{"  Run " + m.st.bold.Render(m.command("repair")) + " to fix them."}
	case m.waitingForRepair():
		next = []string{"  Press " + m.st.bold.Render("r") + " to repair the failing steps, " + m.st.bold.Render("q") + " to quit."}
	}
	var footer []string
	if !m.quitting && m.waitingForRepair() {
		footer = []string{"", m.helpLine(m.keys.Repair, m.keys.Close)}
	}

	build := func() []string {
		out := append([]string(nil), head...)
		for _, sec := range [][]string{grid, problems, notRun, notes, logTail, next} {
			if len(sec) > 0 {
				out = append(out, "")
				out = append(out, sec...)
			}
		}
		return append(out, footer...)
	}
	// Too tall: shorten the log tail, then drop the grid (the problems
	// and the log file say more), then cut the problem list.
	lines := build()
	if len(lines) > h && len(logTail) > 4 {
		cut := min(len(lines)-h, len(logTail)-4)
		logTail = append(logTail[:1], logTail[1+cut:]...)
		lines = build()
	}
	if len(lines) > h {
		grid = nil
		lines = build()
	}
	if len(lines) > h {
		// Cut whole problems, making room for the line that says so.
		over := len(lines) - h + 1
		for len(blocks) > 1 && over > 0 {
			over -= len(blocks[len(blocks)-1])
			blocks = blocks[:len(blocks)-1]
		}
		problems = append(slices.Concat(blocks...),
			m.st.dim.Render("  … more: run "+m.command("doctor")+" --plain to see every problem"))
		lines = build()
	}
	return lines
}

// outcomeGrid shows every step's final status compactly, in columns.
func (m *model) outcomeGrid(r *plan.Event, w int) []string {
	if len(r.Outcomes) == 0 {
		return nil
	}
	cw := 0
	for _, o := range r.Outcomes {
		cw = max(cw, ansi.StringWidth(o.ID))
	}
	cw += 4 // glyph, space, gap
	cols := max((w-2)/cw, 1)
	var out []string
	var line strings.Builder
	for i, o := range r.Outcomes {
		if i%cols == 0 {
			if i > 0 {
				out = append(out, line.String())
				line.Reset()
			}
			line.WriteString("  ")
		}
		cell := m.outcomeGlyph(o.Status) + " " + o.ID
		line.WriteString(cell + strings.Repeat(" ", cw-2-ansi.StringWidth(o.ID)))
	}
	return append(out, line.String())
}

// problemBlocks lists the steps not in place with their detail and hint,
// one block each, and the steps never reached on one line.
func (m *model) problemBlocks(r *plan.Event, w int) (problems [][]string, notRun []string) {
	tw := 0
	var ran []*stepView
	var skipped []string
	for _, id := range r.Problems {
		i, ok := m.index[id]
		if !ok || m.steps[i].state == statePending || m.steps[i].state.active() {
			skipped = append(skipped, id)
			continue
		}
		ran = append(ran, m.steps[i])
		tw = max(tw, ansi.StringWidth(m.steps[i].title))
	}
	tw = min(tw, maxTitleWidth)
	for _, s := range ran {
		problems = append(problems, m.stepBlock(s, w, tw, -1))
	}
	if len(skipped) > 0 {
		notRun = wrapText("Not reached: "+strings.Join(skipped, ", "), w-4)
		for i := range notRun {
			notRun[i] = "  " + m.st.dim.Render(notRun[i])
		}
	}
	return problems, notRun
}

// noteLines are the warnings of steps that are in place but that the user
// should know about (a sandbox turned off, say).
func (m *model) noteLines(w int) []string {
	var out []string
	for _, s := range m.steps {
		if s.warning == "" {
			continue
		}
		for i, l := range wrapText(s.id+": "+s.warning, w-6) {
			lead := "    "
			if i == 0 {
				lead = "  " + m.st.change.Render("!") + " "
			}
			out = append(out, lead+l)
		}
	}
	return out
}

// usageLines tell how to use the builder and how to undo the setup.
func (m *model) usageLines() []string {
	label := func(s string) string { return "  " + m.st.bold.Render(fmt.Sprintf("%-8s", s)) + " " }
	var out []string
	if m.opts.Name != "" {
		b := m.opts.Name
		if m.opts.Port != 0 {
			b += " on 127.0.0.1:" + strconv.Itoa(m.opts.Port)
		}
		if len(m.opts.Systems) > 0 {
			b += " (" + strings.Join(m.opts.Systems, ", ") + ")"
		}
		out = append(out, label("Builder")+b)
	}
	out = append(out,
		label("Use it")+m.st.accent.Render("nix build --max-jobs 0 --system x86_64-linux nixpkgs#hello"),
		label("Undo")+m.st.accent.Render(m.command("uninstall")))
	return out
}

// command is the command line for sub, carrying a non-default builder
// name so that it acts on the same builder.
func (m *model) command(sub string) string {
	c := "nixbuilder-setup"
	if sub != "" {
		c += " " + sub
	} else if m.mode != "" {
		c += " " + string(m.mode)
	}
	if m.opts.Name != "" && m.opts.Name != "nixbuilder" {
		c += " --name " + m.opts.Name
	}
	return c
}

func isDiffLine(l string) bool {
	return l == "" || strings.ContainsAny(l[:1], "+- @\\")
}
