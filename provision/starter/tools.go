package starter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs a program on this machine, in dir when it is not "", and
// returns what it printed. ExecRunner is the real one; tests pass fakes.
type Runner func(ctx context.Context, dir, name string, args ...string) (stdout, stderr []byte, err error)

// ExecRunner runs the program from PATH.
func ExecRunner(ctx context.Context, dir, name string, args ...string) ([]byte, []byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// ToolError says that a command kprep init reads from (vagrant,
// multipass) is missing, failed, or printed what kprep cannot read. It names
// the command and shows what it printed, so the user sees what kprep saw.
type ToolError struct {
	Command string // as a user would type it: "vagrant ssh-config"
	Dir     string // where it ran, "" for the current folder
	Problem string // "is not installed", "exited 1", "printed no machines"
	Output  string // what it printed (stderr, else stdout), trimmed
	Hint    string // what to do about it
}

func (e *ToolError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "`%s`", e.Command)
	if e.Dir != "" && e.Dir != "." {
		fmt.Fprintf(&b, " (in %s)", e.Dir)
	}
	fmt.Fprintf(&b, " %s", e.Problem)
	if e.Output != "" {
		fmt.Fprintf(&b, "; it printed:\n%s", indent(clipLines(e.Output, 20)))
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "\n%s", e.Hint)
	}
	return b.String()
}

// run runs a tool and turns a missing program or a non-zero exit into a
// ToolError; on success it returns the tool's standard output.
func run(ctx context.Context, r Runner, dir, missingHint string, name string, args ...string) ([]byte, error) {
	command := strings.Join(append([]string{name}, args...), " ")
	stdout, stderr, err := r(ctx, dir, name, args...)
	if err == nil {
		return stdout, nil
	}
	if errors.Is(err, exec.ErrNotFound) {
		return nil, &ToolError{Command: command, Dir: dir, Problem: fmt.Sprintf("cannot run: %s is not installed (not found on PATH)", name), Hint: missingHint}
	}
	problem := "failed: " + err.Error()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		problem = fmt.Sprintf("exited %d", exit.ExitCode())
	}
	out := strings.TrimSpace(string(stderr))
	if out == "" {
		out = strings.TrimSpace(string(stdout))
	}
	return nil, &ToolError{Command: command, Dir: dir, Problem: problem, Output: out}
}

// unreadable is the error for output kprep cannot parse.
func unreadable(command, dir string, output []byte, why string) error {
	return &ToolError{Command: command, Dir: dir, Problem: "printed what kprep cannot read (" + why + ")", Output: strings.TrimSpace(string(output))}
}

func clipLines(s string, max int) string {
	lines := strings.Split(s, "\n")
	if len(lines) <= max {
		return s
	}
	return strings.Join(lines[:max], "\n") + fmt.Sprintf("\n... (%d more lines)", len(lines)-max)
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
