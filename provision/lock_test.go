package provision

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// The version record lives with kprep's other state, which the lock
// session creates (0700) before the probe may write it.
func TestVersionRecordIsInTheStateDir(t *testing.T) {
	if !strings.HasPrefix(shell.VersionRecord, StateDir+"/") {
		t.Errorf("%s is outside %s", shell.VersionRecord, StateDir)
	}
}

// localStarter runs the lock session's script in a local shell, as the
// transport's wrapper would on a host (LC_ALL=C).
type localStarter struct{ shell string }

func (s localStarter) Start(ctx context.Context, cmd transport.Command) (Process, error) {
	c := exec.CommandContext(ctx, s.shell, "-c", cmd.Line)
	c.Env = append(os.Environ(), "LC_ALL=C")
	// A cancel ends the whole group, as a closed SSH session does, so
	// no child keeps stdout open.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	in, err := c.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return &localProcess{c: c, in: in, out: out}, nil
}

type localProcess struct {
	c   *exec.Cmd
	in  io.WriteCloser
	out io.Reader
}

func (p *localProcess) Stdout() io.Reader     { return p.out }
func (p *localProcess) Stdin() io.WriteCloser { return p.in }
func (p *localProcess) Wait() error           { return p.c.Wait() }

// shells are the shells a host's sh may be, where this machine has them.
func shells(t *testing.T) []string {
	var out []string
	for _, sh := range []string{"sh", "dash", "bash"} {
		if _, err := exec.LookPath(sh); err == nil {
			out = append(out, sh)
		}
	}
	if len(out) == 0 {
		t.Skip("no shell")
	}
	return out
}

// The lock session is a shell that runs every probe of the run: each in a
// subshell of its own, with kprep's records writable, its output whole
// (trailing newlines too); then the run log is appended and the lock let go.
func TestLockSessionRunsProbesThenTakesTheRunLog(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock")
	}
	for _, sh := range shells(t) {
		t.Run(sh, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			token := probeToken()
			starter := localStarter{shell: sh}
			p, err := starter.Start(context.Background(), transport.Command{Line: lockShell(dir, token)})
			if err != nil {
				t.Fatal(err)
			}
			ended, end := context.WithCancelCause(context.Background())
			l := &lockSession{p: p, rd: bufio.NewReader(p.Stdout()), token: token, end: end, ended: ended, timeout: time.Minute}
			first, err := l.probe(`x=first; echo "$x $kprep_recording"; printf 'a\n\n'`)
			if err != nil {
				t.Fatal(err)
			}
			if first != "first 1\na\n\n" {
				t.Errorf("first probe printed %q", first)
			}
			second, err := l.probe(`echo "${x-unset} $kprep_recording"; read -r y && echo "read $y"; echo done`)
			if err != nil {
				t.Fatal(err)
			}
			if second != "unset 1\ndone\n" {
				t.Errorf("second probe printed %q (want no variable of the first, no stdin)", second)
			}
			// Another run meanwhile finds the lock taken.
			other := localStarter{shell: sh}
			if _, _, err := lockAndProbeIn(context.Background(), other, dir, probeToken(), "echo hi", "probe"); !errors.Is(err, errLocked) {
				t.Errorf("a second session got %v, want the lock refused", err)
			}
			// A last script runs, its output dropped, before the log.
			l.close(`echo noise; echo "$kprep_recording" >`+filepath.Join(dir, "last"), []byte("{\"run\":1}\n"))
			log, err := os.ReadFile(filepath.Join(dir, "run.log"))
			if err != nil || string(log) != "{\"run\":1}\n" {
				t.Errorf("run.log %q, %v", log, err)
			}
			if last, err := os.ReadFile(filepath.Join(dir, "last")); err != nil || string(last) != "1\n" {
				t.Errorf("the last script left %q, %v; want it run under the lock", last, err)
			}
			// Released: the next run takes it.
			next, out, err := lockAndProbeIn(context.Background(), other, dir, probeToken(), "echo hi", "probe")
			if err != nil || out != "hi\n" {
				t.Fatalf("after the release: %q, %v", out, err)
			}
			next.close("", nil)
		})
	}
}

// A probe script that arrives cut short (the connection broke) is never
// run: the shell ends with the transport's cut-short status.
func TestLockSessionRefusesAScriptCutShort(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock")
	}
	for _, sh := range shells(t) {
		t.Run(sh, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			mark := filepath.Join(dir, "ran")
			p, err := localStarter{shell: sh}.Start(context.Background(), transport.Command{Line: lockShell(dir, probeToken())})
			if err != nil {
				t.Fatal(err)
			}
			script := "touch " + mark + "\n#"
			io.WriteString(p.Stdin(), fmt.Sprintf("probe %d\n%s", len(script)+5, script))
			p.Stdin().Close()
			var exitErr *exec.ExitError
			if err := p.Wait(); !errors.As(err, &exitErr) || exitErr.ExitCode() != cutShortStatus {
				t.Errorf("exit %v, want status %d", err, cutShortStatus)
			}
			if _, err := os.Stat(mark); err == nil {
				t.Error("the cut script ran")
			}
		})
	}
}

// shortLockSession is a lock session in a local shell whose requests
// time out after 100 ms.
func shortLockSession(t *testing.T) *lockSession {
	t.Helper()
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock")
	}
	l, _, err := lockAndProbeIn(context.Background(), localStarter{shell: "sh"}, filepath.Join(t.TempDir(), "state"), probeToken(), "true", "probe")
	if err != nil {
		t.Fatal(err)
	}
	l.timeout = 100 * time.Millisecond
	return l
}

// A probe that hangs ends the session after the timeout, with an error
// that says so, instead of holding the run forever.
func TestLockSessionProbeTimesOut(t *testing.T) {
	l := shortLockSession(t)
	_, err := l.probe("sleep 600")
	if err == nil || !strings.Contains(err.Error(), "did not finish within 100ms") {
		t.Errorf("a hung probe returned %v", err)
	}
	l.close("", nil)
}

// A last script that hangs does not hold the run: close ends the session
// after the probe timeout.
func TestLockSessionCloseTimesOut(t *testing.T) {
	l := shortLockSession(t)
	closed := make(chan struct{})
	go func() { l.close("sleep 600", nil); close(closed) }()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("close waited for a hung last script")
	}
}
