package mirror

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// runner runs the build's external tools (rpmbuild, dpkg-deb, gpg, ...)
// and turns their failures into errors that say what ran and what it printed.
type runner struct {
	log io.Writer
	env []string // extra environment, on top of the process's own
}

// run runs name with args in dir and returns its standard output.
func (r *runner) run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	return r.runInput(ctx, dir, nil, name, args...)
}

// runInput is run with stdin fed from in.
func (r *runner) runInput(ctx context.Context, dir string, in io.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = in
	if len(r.env) > 0 {
		cmd.Env = append(cmd.Environ(), r.env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s (in %s): %w; stderr: %s",
			name, strings.Join(args, " "), dir, err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes(), nil
}

// logf writes one progress line.
func (r *runner) logf(format string, args ...any) {
	if r.log != nil {
		fmt.Fprintf(r.log, "mirror: "+format+"\n", args...)
	}
}

// tail keeps the last n bytes of s, where tools print their real error.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
