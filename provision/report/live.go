package report

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kprep/kprep/provision"
)

// Live redraws one line per host on a terminal as the run goes on.
type Live struct {
	mu     sync.Mutex
	w      io.Writer
	style  Style
	hosts  []string
	width  int
	lines  map[string]*liveLine
	drawn  int // lines of the block on screen
	frame  int
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

type liveLine struct {
	step     string
	counts   map[provision.Status]int
	finished bool
	failed   string
	started  time.Time
	took     time.Duration
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// NewLive starts a live display for the hosts; call Close when the run ends.
func NewLive(w io.Writer, style Style, hosts []string) *Live {
	l := &Live{w: w, style: style, hosts: hosts, lines: map[string]*liveLine{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, h := range hosts {
		l.width = max(l.width, len(h))
		l.lines[h] = &liveLine{step: "waiting", counts: map[provision.Status]int{}}
	}
	go l.tick()
	return l
}

func (l *Live) tick() {
	defer close(l.done)
	t := time.NewTicker(120 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			l.frame++
			l.redraw()
			l.mu.Unlock()
		}
	}
}

// Close stops the animation and leaves the final state on screen.
func (l *Live) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	l.redraw()
	l.mu.Unlock()
}

// redraw moves the cursor to the top of the block and prints it again.
func (l *Live) redraw() {
	var b strings.Builder
	if l.drawn > 0 {
		fmt.Fprintf(&b, "\033[%dA", l.drawn)
	}
	for _, h := range l.hosts {
		b.WriteString("\033[2K")
		b.WriteString(l.render(h))
		b.WriteString("\n")
	}
	l.drawn = len(l.hosts)
	io.WriteString(l.w, b.String())
}

func (l *Live) render(host string) string {
	s := l.lines[host]
	var counts []string
	for _, st := range []provision.Status{provision.StatusChanged, provision.StatusPending, provision.StatusUnchanged, provision.StatusFailed, provision.StatusSkipped} {
		if n := s.counts[st]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, l.style.Status(st)))
		}
	}
	tail := strings.Join(counts, ", ")
	switch {
	case s.failed != "":
		return fmt.Sprintf("%s %s %s %s", padded(host, l.width), l.style.Red("✗"), l.style.Red(firstLine(s.failed)), tail)
	case s.finished:
		return fmt.Sprintf("%s %s %s %s", padded(host, l.width), l.style.paint(ansiGreen, "✓"), tail, l.style.Faint(duration(s.took)))
	}
	return fmt.Sprintf("%s %s %s %s", padded(host, l.width), spinner[l.frame%len(spinner)], padded(s.step, 24), tail)
}

func (l *Live) update(host string, f func(*liveLine)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.lines[host]; s != nil {
		f(s)
	}
	if !l.closed {
		l.redraw()
	}
}

// HostStarted shows the host connecting.
func (l *Live) HostStarted(host string) {
	l.update(host, func(s *liveLine) { s.step, s.started = "connecting", time.Now() })
}

// StepStarted shows the step a host is in.
func (l *Live) StepStarted(host, step string) { l.update(host, func(s *liveLine) { s.step = step }) }

// StepFinished counts the step's outcome.
func (l *Live) StepFinished(host string, r provision.StepResult) {
	l.update(host, func(s *liveLine) { s.counts[r.Status]++ })
}

// HostFinished shows the host's end state.
func (l *Live) HostFinished(host string, r provision.HostResult) {
	l.update(host, func(s *liveLine) {
		s.finished, s.took = true, r.Duration
		switch {
		case r.Error != "":
			s.failed = r.Error
		case r.Interrupted != "":
			s.failed = "interrupted during " + r.Interrupted
		}
	})
}

// Command prints a remote command above the block (-v).
func (l *Live) Command(host, line string, status int, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drawn > 0 {
		fmt.Fprintf(l.w, "\033[%dA\033[J", l.drawn)
		l.drawn = 0
	}
	fmt.Fprintf(l.w, "%s  %s\n", padded(host, l.width), l.style.Faint(fmt.Sprintf("$ %s  [exit %d, %s]", oneLine(line), status, duration(took))))
	if !l.closed {
		l.redraw()
	}
}
