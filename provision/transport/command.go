package transport

import (
	"fmt"
	"io/fs"
	"strings"
	"time"
)

// Command is one shell command line run on a host, as root (through sudo
// when the login user is not root).
type Command struct {
	// Line is handed to `sh -c` on the host.
	Line string
	// Label, when set, stands for Line in logs and errors: a long script
	// (the engine's probe) is shown by what it is, not by its text.
	Label string
	// Stdin, when set, is written to the command's standard input.
	Stdin []byte
	// Timeout bounds the command; zero means the connection's default.
	Timeout time.Duration
	// Secrets are replaced by "***" wherever the command line, its output or
	// an error would be shown or logged.
	Secrets []string
}

// Result is what a finished command left behind.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	Status   int
	Duration time.Duration
}

// CommandError says that a command ran and exited non-zero, or could not
// finish. It carries what a user needs to act: host, command, status, stderr.
type CommandError struct {
	Host     string
	Line     string // already redacted
	Status   int    // -1 when the command did not exit (timeout, lost connection)
	Stderr   string // already redacted, trimmed
	TimedOut bool
	Timeout  time.Duration // the limit that ran out, when TimedOut
	Err      error         // underlying transport error, if any
}

func (e *CommandError) Error() string {
	var b strings.Builder
	switch {
	case e.TimedOut:
		fmt.Fprintf(&b, "%s: command timed out after %s: %s", e.Host, e.Timeout, e.Line)
	case e.Status < 0:
		fmt.Fprintf(&b, "%s: command did not finish: %s", e.Host, e.Line)
		if e.Err != nil {
			fmt.Fprintf(&b, ": %v", e.Err)
		}
	default:
		fmt.Fprintf(&b, "%s: command exited %d: %s", e.Host, e.Status, e.Line)
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, "\n%s", e.Stderr)
	}
	return b.String()
}

func (e *CommandError) Unwrap() error { return e.Err }

// WriteOptions says how a file is written.
type WriteOptions struct {
	// Mode is used when the file is new; an existing file keeps its mode and
	// owner.
	Mode fs.FileMode
	// NoBackup skips the one-time <file>.kprep-orig copy of the original.
	NoBackup bool
}

// BackupSuffix is appended to a file's path for the copy of the original
// that kprep keeps the first time it changes the file.
const BackupSuffix = ".kprep-orig"

// Stats counts what a connection did, for benchmarks and tests.
type Stats struct {
	Dials    int // TCP connections opened (including to a bastion)
	Commands int // command round trips (sessions run to completion)
	Files    int // files written
}
