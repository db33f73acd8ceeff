package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sigPoweroff is SIGRTMIN+4: systemd as PID 1 powers off on it (what
// `machinectl poweroff` sends).
const sigPoweroff = syscall.Signal(38)

// stopPodsScript stops what keeps a host from shutting down cleanly: the
// kubelet (which would restart pods), every process in the containers'
// cgroups, then the runtimes' units whole (containerd-shims live in
// containerd's cgroup and outlast a plain stop, KillMode=process), and
// the user managers that SSH logins started (in a container their stop
// can hang until systemd's 90 s time-out).
const stopPodsScript = `
systemctl stop kubelet.service 2>/dev/null || true
for d in /sys/fs/cgroup/pids/kubepods* /sys/fs/cgroup/pids/docker /sys/fs/cgroup/pids/system.slice/docker-*.scope; do
	[ -d "$d" ] || continue
	find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
done
for u in docker.service containerd.service 'user@*.service'; do
	systemctl kill --signal=SIGKILL "$u" 2>/dev/null
done
true
`

// Down removes everything a lab in stateDir made: its hosts (kubelet and
// pods first), the mirror and registry processes, veths and bridge,
// mounts, cgroups and the state folder, and puts back the machine
// settings it raised. It finds leftovers by name as well as from the
// state, so it works after a crash and is safe to run twice. Caches stay.
func Down(ctx context.Context, stateDir string) error { return DownWithLog(ctx, stateDir, nil) }

// DownWithLog is Down with progress lines (how each host stopped) to log.
func DownWithLog(ctx context.Context, stateDir string, w io.Writer) error {
	log := newLogger(w)
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root to take itself down")
	}
	unlock, err := lockMachine()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(stateDir)
	if err != nil {
		st = nil // none, or a damaged record: find what is left by name
	}
	var errs []error
	cacheDir := CacheDirFromEnv()
	if st != nil && st.CacheDir != "" {
		cacheDir = st.CacheDir
	}

	errs = append(errs, stopHosts(ctx, stateDir, st, log)...)
	var procs []Proc
	if st != nil {
		for _, p := range []*Proc{st.Mirror, st.Registry} {
			if p != nil {
				procs = append(procs, *p)
			}
		}
	}
	procs = append(procs, findLabProcs(stateDir)...)
	for _, p := range procs {
		if err := p.stop(ctx, syscall.SIGTERM, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeLinks(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, dir := range []string{stateDir, buildDir(cacheDir)} {
		if err := unmountAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeLabCgroups(); err != nil {
		errs = append(errs, err)
	}
	if st != nil {
		if err := restoreSysctls(st.Sysctls); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := removeTree(stateDir); err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, fmt.Errorf("kept %s for a look; run down again after fixing the above", stateDir))
	}
	return errors.Join(errs...)
}

// stopHosts powers off every host of the lab, the recorded ones and any
// systemd-nspawn of this state folder that the record lost.
func stopHosts(ctx context.Context, stateDir string, st *state, log *logger) []error {
	type target struct {
		name           string
		nspawn, leader Proc
	}
	var targets []target
	seen := map[int]bool{}
	if st != nil {
		for _, h := range st.Hosts {
			if h.Nspawn.Alive() || h.Leader.Alive() {
				targets = append(targets, target{h.Name, h.Nspawn, h.Leader})
				seen[h.Nspawn.PID] = true
			}
		}
	}
	for _, p := range findLabProcs(stateDir) {
		args := cmdline(p.PID)
		if len(args) == 0 || filepath.Base(args[0]) != "systemd-nspawn" || seen[p.PID] {
			continue
		}
		t := target{name: machineArg(args), nspawn: p}
		for _, c := range children(p.PID) {
			if lp, err := procOf(c); err == nil {
				t.leader = lp
			}
		}
		targets = append(targets, t)
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stopHost(ctx, t.name, t.nspawn, t.leader, log); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// machineArg returns the --machine= value of an nspawn command line.
func machineArg(args []string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--machine="); ok {
			return v
		}
	}
	return "?"
}

// stopHost stops the pods, asks systemd to power off, and kills the host's
// PID 1 (which takes every process of the host with it) if it has not
// gone after a grace period.
func stopHost(ctx context.Context, name string, nspawn, leader Proc, log *logger) error {
	start := time.Now()
	how := "powered off"
	if leader.Alive() {
		sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		_, _ = runCmd(sctx, nil, "nsenter", "-t", fmt.Sprint(leader.PID), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w",
			"--", "/bin/sh", "-c", stopPodsScript)
		cancel()
		leader.signal(sigPoweroff)
		if !nspawn.waitGone(ctx, 30*time.Second) && leader.Alive() {
			how = "killed: systemd did not power off within 30 s"
			leader.signal(syscall.SIGKILL)
		}
	} else {
		how = "its systemd was gone already"
	}
	if err := nspawn.stop(ctx, syscall.SIGTERM, 15*time.Second); err != nil {
		return fmt.Errorf("host %s: %w", name, err)
	}
	log.printf("%s stopped in %s (%s)", name, time.Since(start).Round(100*time.Millisecond), how)
	return nil
}

// leftovers describes what of a lab is still on the machine.
func leftovers(stateDir string) []string {
	var left []string
	if exists(filepath.Join(stateDir, stateFile)) {
		left = append(left, "state in "+stateDir)
	}
	if links := labLinks(); len(links) > 0 {
		left = append(left, "links "+strings.Join(links, ", "))
	}
	if procs := findLabProcs(stateDir); len(procs) > 0 {
		var pids []string
		for _, p := range procs {
			pids = append(pids, fmt.Sprint(p.PID))
		}
		left = append(left, "processes "+strings.Join(pids, ", "))
	}
	if m := mountsUnder(stateDir); len(m) > 0 {
		left = append(left, "mounts "+strings.Join(m, ", "))
	}
	return left
}

// Leftovers reports what a lab with this state folder left on the
// machine: state, links, processes, mounts, cgroups. Empty after Down.
func Leftovers(stateDir string) []string {
	left := leftovers(stateDir)
	if hier, err := cgroupHierarchies(); err == nil {
		for _, h := range hier {
			if exists(filepath.Join(h, cgroupRoot)) {
				left = append(left, "cgroup "+filepath.Join(h, cgroupRoot))
			}
		}
	}
	if exists(stateDir) {
		left = append(left, "folder "+stateDir)
	}
	return left
}
