package report

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kprep/kprep/provision"
)

// Lines prints one line per event, for logs and pipes.
type Lines struct {
	mu    sync.Mutex
	w     io.Writer
	style Style
	width int // of the host column
}

// NewLines returns an observer that prints to w; hostWidth aligns the host
// column.
func NewLines(w io.Writer, style Style, hostWidth int) *Lines {
	return &Lines{w: w, style: style, width: hostWidth}
}

func (l *Lines) printf(host, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s  %s\n", padded(host, l.width), fmt.Sprintf(format, args...))
}

// HostStarted prints that work on a host began.
func (l *Lines) HostStarted(host string) { l.printf(host, "connecting") }

// StepStarted prints nothing: the finish line says it all.
func (l *Lines) StepStarted(host, step string) {}

// StepFinished prints the step's outcome.
func (l *Lines) StepFinished(host string, r provision.StepResult) {
	// The changes themselves are in the summary at the end; one line per
	// step keeps logs readable with many hosts.
	line := fmt.Sprintf("%s %s %s", padded(r.Name, 24), l.style.Status(r.Status), l.style.Faint(duration(r.Duration)))
	if r.Error != "" && r.Status != provision.StatusFailed {
		line += " " + l.style.Faint("("+r.Error+")")
	}
	l.printf(host, "%s", line)
}

// HostFinished prints the host's end state.
func (l *Lines) HostFinished(host string, r provision.HostResult) {
	switch {
	case r.Error != "":
		l.printf(host, "%s %s", l.style.Red("failed:"), firstLine(r.Error))
	case r.Interrupted != "":
		l.printf(host, "%s during %s", l.style.Red("interrupted"), r.Interrupted)
	default:
		l.printf(host, "done %s", l.style.Faint(duration(r.Duration)))
	}
}

// Command prints a remote command (-v).
func (l *Lines) Command(host, line string, status int, took time.Duration) {
	l.printf(host, "%s", l.style.Faint(fmt.Sprintf("$ %s  [exit %d, %s]", oneLine(line), status, duration(took))))
}

func duration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func firstLine(s string) string {
	head, _, _ := strings.Cut(s, "\n")
	return head
}

// oneLine folds a multi-line script into one line, shortened for display.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
