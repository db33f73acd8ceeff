package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// hostEnv is the environment commands get inside a host, as a root login
// shell would have it; nothing leaks in from the caller.
var hostEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "LANG=C.UTF-8", "TERM=dumb", "USER=root", "LOGNAME=root",
}

// Exec runs argv as root inside the host, entering its namespaces with
// nsenter: no SSH, so tests can set hosts up and check results without the
// tool under test. A VM host has no namespaces to enter: there it runs over
// SSH as root with the lab key and the system's ssh client (never kprep's).
// A non-zero exit is a *CommandError with stdout and stderr still returned.
func (l *Lab) Exec(ctx context.Context, host string, argv ...string) (stdout, stderr []byte, err error) {
	return l.ExecInput(ctx, host, nil, argv...)
}

// ExecInput is Exec with stdin.
func (l *Lab) ExecInput(ctx context.Context, host string, stdin []byte, argv ...string) (stdout, stderr []byte, err error) {
	h, err := l.host(host)
	if err != nil {
		return nil, nil, err
	}
	if len(argv) == 0 {
		return nil, nil, fmt.Errorf("exec in host %s: no command", host)
	}
	if h.VM {
		return l.execVM(ctx, h, stdin, argv)
	}
	if !h.Leader.Alive() {
		return nil, nil, fmt.Errorf("host %s is not running (its PID 1, %d, is gone); run the lab's down and up", host, h.Leader.PID)
	}
	args := []string{"nsenter", "-t", strconv.Itoa(h.Leader.PID), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--", "env", "-i"}
	return runInHost(ctx, host, stdin, argv, append(append(args, hostEnv...), argv...))
}

// runInHost runs the machine command cmdline that runs argv in host
// (nsenter, or ssh for a VM) and returns argv's output.
func runInHost(ctx context.Context, host string, stdin []byte, argv, cmdline []string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, cmdline[0], cmdline[1:]...)
	// A command that leaves a daemon holding its output must not hang us.
	cmd.WaitDelay = 10 * time.Second
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), errb.Bytes(), &CommandError{Host: host, Argv: argv, ExitCode: exitCode(err), Stderr: errb.Bytes(), Err: err}
	}
	return out.Bytes(), errb.Bytes(), nil
}
