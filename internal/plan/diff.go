package plan

import (
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// FileChange describes writing newData over oldData at path, with a
// unified diff. existed says whether the file is there now.
func FileChange(path string, oldData, newData []byte, existed, root bool) Change {
	summary := "edit " + path
	if !existed {
		summary = "create " + path
	}
	return Change{Kind: ChangeFile, Summary: summary, Path: path, Diff: UnifiedDiff(path, oldData, newData, existed), Root: root}
}

// RemoveChange describes removing the file at path.
func RemoveChange(path string, oldData []byte, root bool) Change {
	return Change{Kind: ChangeRemove, Summary: "remove " + path, Path: path,
		Diff: UnifiedDiff(path, oldData, nil, true), Root: root}
}

// UnifiedDiff renders the change from a to b as a unified diff with three
// lines of context. Line endings are shown as they are (a CRLF file keeps
// its \r), and a missing final newline is marked the way diff(1) marks it.
func UnifiedDiff(path string, a, b []byte, existed bool) string {
	from := "a" + path
	if !existed {
		from = "/dev/null"
	}
	to := "b" + path
	if b == nil {
		to = "/dev/null"
	}
	d := difflib.UnifiedDiff{
		A: splitLines(a), B: splitLines(b),
		FromFile: from, ToFile: to, Context: 3,
	}
	s, err := difflib.GetUnifiedDiffString(d)
	if err != nil {
		return fmt.Sprintf("(cannot render diff: %v)", err)
	}
	return s
}

// splitLines splits keeping line ends, marking a missing final newline.
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	} else {
		lines[len(lines)-1] += "\n\\ No newline at end of file\n"
	}
	for i, l := range lines {
		lines[i] = strings.ReplaceAll(l, "\r\n", "\\r\n")
	}
	return lines
}
