package transport

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/kprep/kprep/provision/inventory"
)

// sudoMode is how a command becomes root.
type sudoMode int

const (
	// sudoNone runs the command as the login user: root, or sudo: false.
	sudoNone sudoMode = iota
	// sudoNoPassword runs `sudo -n`, which fails at once if sudo wants a
	// password rather than waiting for one.
	sudoNoPassword
	// sudoWithPassword runs `sudo -S` and answers its prompt.
	sudoWithPassword
)

// sudoModeFor reads ssh.sudo: auto uses sudo for any user but root.
func sudoModeFor(s inventory.SSH) (sudoMode, error) {
	switch s.Sudo {
	case "", "auto":
		if s.User == "root" {
			return sudoNone, nil
		}
		return sudoNoPassword, nil
	case "true":
		return sudoNoPassword, nil
	case "false":
		return sudoNone, nil
	}
	return sudoNone, fmt.Errorf("ssh.sudo %q is not one of auto, true, false", s.Sudo)
}

// markers are random per connection, so no command output can be taken
// for them.
type markers struct {
	// prompt is sudo's password prompt (-p): when it shows on stderr, sudo
	// is waiting for the password, and only then is the password sent.
	prompt string
	// start is printed to stderr by the wrapper script before the command
	// line runs, with the process group id: from then on stdin belongs to
	// the command, and a timeout knows which processes to end.
	start string
}

func newMarkers() markers {
	return markers{prompt: "kprep-sudo-prompt-" + randomHex(12), start: "kprep-start-" + randomHex(12)}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// remoteCommand wraps a command line for the session: run by sh (whatever
// the login shell is), as root through sudo when needed, with LC_ALL=C so
// output parses the same on every host. The wrapper announces the start
// with the process group id, then reads the line itself from stdin
// (sessionScript: the line and a closing comment, n bytes), ahead of the
// command's own input, and runs it.
//
// The line never goes on a command line: sudo logs its command line to
// the host's syslog in 962-byte entries (a 30 KB probe script is some 34
// of them, "command continued", on every sudo host), a secret in it would
// reach that log, every local user can read it in /proc while it runs,
// and Linux refuses a single argument over 128 KiB. head -c reads no byte
// past the n it is asked for, so what follows stays the command's; a line
// cut short (the connection broke) is never run: its length is checked
// first (in bytes: LC_ALL=C). The closing comment keeps the command
// substitution from trimming the line's last newlines without changing
// the exit status.
func (c *Conn) remoteCommand(n int) string {
	script := "read -r _ _ _ _ kprep_pgid _ 2>/dev/null </proc/$$/stat; " +
		"printf '%s:%s\\n' " + c.markers.start + ` "${kprep_pgid:-0}" >&2; unset kprep_pgid; ` +
		"LC_ALL=C; export LC_ALL\n" +
		fmt.Sprintf(`kprep_line=$(head -c %[1]d) && [ "${#kprep_line}" -eq %[1]d ] || { echo "kprep: the command arrived cut short" >&2; exit %[2]d; }`, n, cutShortStatus) +
		"\n" + `eval "$kprep_line"`
	sh := "sh -c " + shellQuote(script)
	// LC_ALL=C before sudo keeps sudo's own messages in English, which
	// classifySudoFailure reads.
	switch c.sudo {
	case sudoNoPassword:
		return "LC_ALL=C sudo -n -- " + sh
	case sudoWithPassword:
		return "LC_ALL=C sudo -S -p " + shellQuote(c.markers.prompt) + " -- " + sh
	}
	return "LC_ALL=C " + sh
}

// cutShortStatus is the wrapper's exit status when the command line did
// not arrive whole.
const cutShortStatus = 125

// sessionScript is what the wrapper reads from stdin: the line and a
// closing comment (see remoteCommand).
func sessionScript(line string) []byte { return []byte(line + "\n#") }

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sudoEvent is what the stderr watcher saw.
type sudoEvent int

const (
	eventPrompt  sudoEvent = iota // sudo asks for the password
	eventStarted                  // the command line is running
)

// stderrWatch collects a session's stderr, reports the markers as they
// arrive and strips them from what it keeps. It scans only until the
// command starts, and only the bytes it has not scanned yet.
type stderrWatch struct {
	prompt, start []byte // prompt is nil when no password is sent

	mu       sync.Mutex
	buf      []byte
	promptAt int // prompts are searched from here
	startAt  int // the start line is searched from here
	prompts  int
	started  bool
	pgid     int
	cuts     [][2]int // byte ranges of markers, removed from the output

	events chan sudoEvent
	// startedCh is closed once the start line was seen: a cancel that
	// comes before the watch read it waits for the process group.
	startedCh chan struct{}
}

func newStderrWatch(m markers, withPrompt bool) *stderrWatch {
	w := &stderrWatch{start: []byte(m.start), events: make(chan sudoEvent, 8), startedCh: make(chan struct{})}
	if withPrompt {
		w.prompt = []byte(m.prompt)
	}
	return w
}

func (w *stderrWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if !w.started {
		w.scan()
	}
	return len(p), nil
}

func (w *stderrWatch) scan() {
	for w.prompt != nil {
		i := bytes.Index(w.buf[w.promptAt:], w.prompt)
		if i < 0 {
			// Keep a marker split across two writes findable.
			w.promptAt = max(w.promptAt, len(w.buf)-len(w.prompt)+1)
			break
		}
		at := w.promptAt + i
		w.cuts = append(w.cuts, [2]int{at, at + len(w.prompt)})
		w.promptAt = at + len(w.prompt)
		w.prompts++
		w.emit(eventPrompt)
	}
	i := bytes.Index(w.buf[w.startAt:], w.start)
	if i < 0 {
		w.startAt = max(w.startAt, len(w.buf)-len(w.start)+1)
		return
	}
	at := w.startAt + i
	nl := bytes.IndexByte(w.buf[at:], '\n')
	if nl < 0 {
		w.startAt = at // wait for the rest of the line
		return
	}
	field := string(w.buf[at+len(w.start) : at+nl])
	w.pgid, _ = strconv.Atoi(strings.TrimPrefix(field, ":"))
	w.cuts = append(w.cuts, [2]int{at, at + nl + 1})
	w.started = true
	close(w.startedCh)
	w.emit(eventStarted)
}

func (w *stderrWatch) emit(e sudoEvent) {
	select {
	case w.events <- e:
	default: // only the first few events matter
	}
}

// state returns what was seen so far.
func (w *stderrWatch) state() (started bool, prompts, pgid int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started, w.prompts, w.pgid
}

// output returns stderr without the markers.
func (w *stderrWatch) output() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	cuts := append([][2]int(nil), w.cuts...)
	sort.Slice(cuts, func(i, j int) bool { return cuts[i][0] < cuts[j][0] })
	out := make([]byte, 0, len(w.buf))
	from := 0
	for _, c := range cuts {
		if c[0] < from {
			continue
		}
		out = append(out, w.buf[from:c[0]]...)
		from = c[1]
	}
	return append(out, w.buf[from:]...)
}

// SudoError says that sudo did not run a command, so the command never ran.
type SudoError struct {
	Host   string
	User   string
	Reason string
}

func (e *SudoError) Error() string { return e.Reason }

// sudoFailure explains why the command never started. In sudo mode that is
// sudo refusing; without sudo it is the login shell refusing to run it.
func (c *Conn) sudoFailure(stderr string, prompts int) error {
	e := &SudoError{Host: c.host, User: c.user}
	switch {
	case c.sudo == sudoNone:
		e.Reason = fmt.Sprintf("the login shell of %s on %s did not run the command: %s", c.user, c.host, firstLine(stderr))
	case c.sudo == sudoWithPassword && (prompts > 1 ||
		containsAny(stderr, "incorrect password", "Sorry, try again", "Authentication failure")):
		e.Reason = fmt.Sprintf("sudo password for user %s on host %s was refused: check the value of %s (ssh.sudoPasswordEnv)",
			c.user, c.host, c.sudoEnv)
	case containsAny(stderr, "a password is required"):
		e.Reason = fmt.Sprintf("sudo needs a password for user %s on host %s: set ssh.sudoPasswordEnv to the name of an "+
			"environment variable that holds it, or allow the user passwordless sudo", c.user, c.host)
	case containsAny(stderr, "must have a tty", "a terminal is required"):
		e.Reason = fmt.Sprintf("sudo on host %s insists on a terminal (Defaults requiretty): allow %s sudo without one "+
			"(Defaults:%s !requiretty)", c.host, c.user, c.user)
	case containsAny(stderr, "not in the sudoers", "not allowed to execute", "may not run sudo"):
		e.Reason = fmt.Sprintf("user %s may not use sudo on host %s: %s", c.user, c.host, firstLine(stderr))
	default:
		e.Reason = fmt.Sprintf("sudo did not run the command for user %s on host %s: %s", c.user, c.host, firstLine(stderr))
	}
	return e
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	if s == "" {
		return "(no message)"
	}
	return s
}
