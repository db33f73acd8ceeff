package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc names a process the lab started. StartTime (clock ticks since boot,
// from /proc/PID/stat) tells it from a later process that got the same PID.
type Proc struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
}

// procStat returns a process's state letter and start time from
// /proc/PID/stat, or ok=false when there is no such process.
func procStat(pid int) (state byte, start uint64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], start, true
}

// procOf returns the Proc of a running pid.
func procOf(pid int) (Proc, error) {
	_, start, ok := procStat(pid)
	if !ok {
		return Proc{}, fmt.Errorf("process %d is gone", pid)
	}
	return Proc{PID: pid, StartTime: start}, nil
}

// Alive reports whether the process is still the one recorded and has not
// exited (a zombie waiting for its parent counts as exited).
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	state, start, ok := procStat(p.PID)
	return ok && start == p.StartTime && state != 'Z' && state != 'X'
}

// signal sends sig to the process if it is still the recorded one.
func (p Proc) signal(sig syscall.Signal) {
	if p.Alive() {
		_ = syscall.Kill(p.PID, sig)
	}
}

// waitGone waits until the process has exited or the time is up.
func (p Proc) waitGone(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for p.Alive() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// stop asks the process to end with sig, then kills it after grace.
func (p Proc) stop(ctx context.Context, sig syscall.Signal, grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	p.signal(sig)
	if p.waitGone(ctx, grace) {
		return nil
	}
	p.signal(syscall.SIGKILL)
	if p.waitGone(ctx, 10*time.Second) {
		return nil
	}
	return fmt.Errorf("process %d did not exit after SIGKILL", p.PID)
}

// startDetached starts argv in its own session with stdin from /dev/null
// and output appended to logPath, so that it outlives the lab command that
// started it. env is added to the environment.
func startDetached(argv []string, env []string, logPath string) (Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, fmt.Errorf("start %s: %w", quoteArgv(argv), err)
	}
	p, err := procOf(cmd.Process.Pid)
	// Reap it if it dies while we run, so that Alive sees it go; after we
	// exit, init does.
	go func() { _ = cmd.Wait() }()
	if err != nil {
		return Proc{}, fmt.Errorf("start %s: it exited at once; see %s", quoteArgv(argv), logPath)
	}
	return p, nil
}

// cmdline returns a process's arguments.
func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// findLabProcs lists the processes a lab with this state folder runs, found
// by what they are rather than by recorded PIDs (which a crash may have lost):
// systemd-nspawn, QEMU (VM hosts) and docker-registry with a path under the
// state folder in their arguments, and the lab's own helper processes.
func findLabProcs(stateDir string) []Proc {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var procs []Proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		args := cmdline(pid)
		if len(args) == 0 || !isLabProcess(args, stateDir) {
			continue
		}
		if p, err := procOf(pid); err == nil && p.Alive() {
			procs = append(procs, p)
		}
	}
	return procs
}

// isLabProcess reports whether a command line is one the lab starts for
// the state folder stateDir: the folder or a path in it is an argument (or
// an option's value).
func isLabProcess(args []string, stateDir string) bool {
	base := filepath.Base(args[0])
	known := base == "systemd-nspawn" || base == "docker-registry" || strings.HasPrefix(base, "qemu-system-") ||
		(len(args) > 1 && args[1] == helperArg)
	if !known {
		return false
	}
	dir := filepath.Clean(stateDir)
	for _, a := range args[1:] {
		if _, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "-") {
			a = v
		}
		if a == dir || strings.HasPrefix(a, dir+"/") {
			return true
		}
	}
	return false
}
