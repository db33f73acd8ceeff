package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// CommandError is a command that failed: on the machine, or inside a host
// (Host set). It carries the exit status and the end of stderr so that the
// message says what went wrong without a second look.
type CommandError struct {
	// Host is the lab host the command ran in; "" for the machine.
	Host string
	// Argv is the command.
	Argv []string
	// ExitCode is the command's exit status, -1 if it did not exit normally.
	ExitCode int
	// Stderr is what the command wrote to stderr.
	Stderr []byte
	// Err is the underlying error (*exec.ExitError, a context error...).
	Err error
}

func (e *CommandError) Error() string {
	where := "on the machine"
	if e.Host != "" {
		where = "in host " + e.Host
	}
	msg := fmt.Sprintf("%s %s: %v", where, quoteArgv(e.Argv), e.Err)
	if tail := lastLines(e.Stderr, 6); tail != "" {
		msg += ": " + tail
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// ExitCode returns the exit status of a failed command inside err, or -1.
func ExitCode(err error) int {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.ExitCode
	}
	return -1
}

// quoteArgv renders a command for a message, quoting what needs it.
func quoteArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$`\\|;&<>()*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts[i] = a
	}
	s := strings.Join(parts, " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// lastLines returns the last n non-empty lines of b, joined by " | ".
func lastLines(b []byte, n int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l = strings.TrimSpace(l); l != "" && !isNspawnNoise(l) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// isNspawnNoise is a line systemd-nspawn prints on every exit when /run is
// not a tmpfs; it means nothing here.
func isNspawnNoise(line string) bool {
	return strings.HasPrefix(line, "Attempted to remove disk file system under")
}

// runCmd runs argv on the machine with stdin (may be nil) and returns its
// stdout. A failure is a *CommandError.
func runCmd(ctx context.Context, stdin []byte, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 5 * time.Second
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &CommandError{Argv: argv, ExitCode: exitCode(err), Stderr: stderr.Bytes(), Err: err}
	}
	return stdout.Bytes(), nil
}

// exitCode returns the exit status inside an exec error, or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// lockedWriter serialises writes to w: the base image build, the mirror
// build and the hosts all report to the one writer the caller gave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

// logger prints progress lines with the time since the lab command
// started; hosts boot and stop side by side, so it writes one line at a
// time (a caller's bytes.Buffer is not safe for concurrent writes).
type logger struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func newLogger(w io.Writer) *logger {
	if w == nil {
		w = io.Discard
	}
	return &logger{w: w, start: time.Now()}
}

func (l *logger) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "lab %6.1fs  %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}
