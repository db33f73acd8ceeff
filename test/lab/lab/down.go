package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kprep/kprep/test/lab/instance"
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

// Down removes everything the lab instance KPREP_LAB_ID names made, with
// its state in stateDir ("" means KPREP_LAB_STATE or the instance's
// folder): see DownInstance.
func Down(ctx context.Context, stateDir string) error { return DownWithLog(ctx, stateDir, nil) }

// DownWithLog is Down with progress lines (how each host stopped) to log.
func DownWithLog(ctx context.Context, stateDir string, w io.Writer) error {
	id, stateDir, err := fromEnv(stateDir)
	if err != nil {
		return err
	}
	return DownInstance(ctx, id, stateDir, w)
}

// DownInstance removes everything lab instance id made with its state in
// stateDir ("" means the instance's folder): its hosts (kubelet and pods
// first), the mirror and registry processes, veths and bridge, mounts,
// cgroups and the state folder, and puts back the machine settings it
// raised unless another lab still needs them. It finds leftovers by name
// as well as from the state, so it works after a crash and is safe to run
// twice; it touches no other instance's hosts, links, mounts, cgroups or
// processes. It refuses a state folder whose record names another
// instance. Caches stay. Progress lines (how each host stopped) go to w.
func DownInstance(ctx context.Context, id instance.ID, stateDir string, w io.Writer) error {
	log := newLogger(w)
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root to take itself down")
	}
	if stateDir == "" {
		stateDir = id.StateDir()
	}
	unlock, err := lockMachine(id)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(stateDir)
	if err != nil {
		st = nil // none, or a damaged record: find what is left by name
	}
	if st != nil && st.Instance != id {
		return fmt.Errorf("the lab in %s is %s, not %s: run down with %s=%d", stateDir, st.Instance, id, instance.Env, int(st.Instance))
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
	if err := removeLinks(ctx, id); err != nil {
		errs = append(errs, err)
	}
	if err := unmountAll(stateDir); err != nil {
		errs = append(errs, err)
	}
	if err := unmountCrashedBuilds(cacheDir); err != nil {
		errs = append(errs, err)
	}
	if err := removeLabCgroups(id); err != nil {
		errs = append(errs, err)
	}
	var old []sysctlChange
	if st != nil {
		old = st.Sysctls
	}
	if err := machineSysctls.releaseSysctls(id, old); err != nil {
		errs = append(errs, err)
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

// unmountCrashedBuilds unmounts what a killed root file system or VM image
// build left in the shared cache's build folders, but only while no build
// holds that folder's lock (a running one, of any instance, has its mounts
// in use there and clears its own folder's leftovers before it starts).
func unmountCrashedBuilds(cacheDir string) error {
	for _, b := range []struct {
		dir     string
		tryLock func(string) (func(), bool, error)
	}{{buildDir(cacheDir), tryLockCache}, {vmBuildDir(cacheDir), tryLockVMCache}} {
		if !exists(b.dir) {
			continue
		}
		unlock, ok, err := b.tryLock(cacheDir)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		err = unmountAll(b.dir)
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// stopHosts powers off every host of the lab, the recorded ones and any
// systemd-nspawn of this state folder that the record lost.
func stopHosts(ctx context.Context, stateDir string, st *state, log *logger) []error {
	type target struct {
		name           string
		nspawn, leader Proc
		vm             *hostState // a VM host the record knows
	}
	var targets []target
	seen := map[int]bool{}
	if st != nil {
		for _, h := range st.Hosts {
			if h.VM && h.Nspawn.Alive() {
				targets = append(targets, target{name: h.Name, nspawn: h.Nspawn, vm: &h})
				seen[h.Nspawn.PID] = true
			} else if h.Nspawn.Alive() || h.Leader.Alive() {
				targets = append(targets, target{name: h.Name, nspawn: h.Nspawn, leader: h.Leader})
				seen[h.Nspawn.PID] = true
			}
		}
	}
	for _, p := range findLabProcs(stateDir) {
		args := cmdline(p.PID)
		if len(args) == 0 || seen[p.PID] {
			continue
		}
		if strings.HasPrefix(filepath.Base(args[0]), "qemu-system-") {
			// A VM the record lost: QEMU quits on SIGTERM.
			targets = append(targets, target{name: "a VM host", nspawn: p})
			continue
		}
		if filepath.Base(args[0]) != "systemd-nspawn" {
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
	l := &Lab{stateDir: stateDir, st: st}
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := func() error { return stopHost(ctx, t.name, t.nspawn, t.leader, log) }
			if t.vm != nil {
				stop = func() error { return l.stopVM(ctx, *t.vm, log) }
			}
			if err := stop(); err != nil {
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

// leftovers describes what of lab instance id with this state folder is
// still on the machine.
func leftovers(id instance.ID, stateDir string) []string {
	var left []string
	if exists(filepath.Join(stateDir, stateFile)) {
		left = append(left, "state in "+stateDir)
	}
	if links := labLinks(id); len(links) > 0 {
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

// Leftovers reports what the lab instance KPREP_LAB_ID names left on the
// machine with this state folder: see InstanceLeftovers.
func Leftovers(stateDir string) []string {
	id, stateDir, err := fromEnv(stateDir)
	if err != nil {
		return []string{err.Error()}
	}
	return InstanceLeftovers(id, stateDir)
}

// InstanceLeftovers reports what lab instance id with this state folder
// left on the machine: state, links, processes, mounts, cgroups, and its
// hold on the machine's sysctls. Empty after DownInstance.
func InstanceLeftovers(id instance.ID, stateDir string) []string {
	left := leftovers(id, stateDir)
	if hier, err := cgroupHierarchies(); err == nil {
		for _, h := range hier {
			if dir := filepath.Join(h, id.CgroupRoot()); exists(dir) {
				left = append(left, "cgroup "+dir)
			}
		}
	}
	if rec, err := machineSysctls.load(); err == nil && slices.Contains(rec.Holders, id) {
		left = append(left, "a hold on the machine's sysctls in "+machineSysctls.record)
	}
	if exists(stateDir) {
		left = append(left, "folder "+stateDir)
	}
	return left
}
