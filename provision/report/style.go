// Package report shows a run to people and programs: live progress on a
// terminal, one line per event elsewhere, a summary table at the end, and
// one JSON document with -o json.
package report

import (
	"fmt"

	"github.com/kprep/kprep/provision"
)

// Style says how to colour text; the zero value prints plain text.
type Style struct {
	Color bool
}

const (
	ansiReset  = "\033[0m"
	ansiRed    = "\033[31m"
	ansiGreen  = "\033[32m"
	ansiYellow = "\033[33m"
	ansiFaint  = "\033[2m"
)

func (s Style) paint(code, text string) string {
	if !s.Color {
		return text
	}
	return code + text + ansiReset
}

// Status colours a step status the way people read it: yellow for what
// changes, red for what failed.
func (s Style) Status(st provision.Status) string {
	switch st {
	case provision.StatusChanged, provision.StatusPending:
		return s.paint(ansiYellow, string(st))
	case provision.StatusFailed:
		return s.paint(ansiRed, string(st))
	case provision.StatusUnchanged:
		return s.paint(ansiGreen, string(st))
	}
	return s.paint(ansiFaint, string(st))
}

// Faint dims secondary text.
func (s Style) Faint(text string) string { return s.paint(ansiFaint, text) }

// Red marks errors.
func (s Style) Red(text string) string { return s.paint(ansiRed, text) }

// padded pads before colouring, so ANSI codes do not break column widths.
func padded(text string, width int) string { return fmt.Sprintf("%-*s", width, text) }
