package lab

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kprep/kprep/test/lab/instance"
)

// systemCallFilter are the system calls the hosts need beyond nspawn's
// default list: keyrings and BPF for runc and dockerd, swapon/swapoff for
// tools that probe them (the lab's swapon never calls them).
const systemCallFilter = "add_key keyctl bpf swapon swapoff"

// nspawnArgs is the systemd-nspawn command that boots a host. On this
// machine's hybrid cgroup layout nspawn gives the host hybrid cgroups too:
// the v1 hierarchies (which hold every controller, so dockerd and the
// kubelet need them; lab-cgroup-rw.service makes them writable inside) and
// the unified one, through which systemd sees a cgroup empty (with v1 alone
// a stopping unit such as a user manager hangs until its time-out).
// SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0 would force v1 alone; =1 leaves the
// kubelet without controllers.
func nspawnArgs(h hostState, p hostPaths) []string {
	argv := append([]string{}, nspawnBase...)
	argv = append(argv[:1], argv[2:]...) // keep the console output: drop --quiet
	argv = append(argv,
		"--boot", "--machine="+h.Name, "--directory="+p.Root,
		"--private-network", "--resolv-conf=off", "--console=read-only",
		"--capability=all", "--system-call-filter="+systemCallFilter,
		// The kubelet reads the kernel log and exits without it.
		"--bind=/dev/kmsg",
		// overlay2 cannot sit on the host's overlay root.
		"--bind="+p.Docker+":/var/lib/docker",
		"--bind="+p.Containerd+":/var/lib/containerd",
		// nspawn mounts binds below /proc from inside the host, so the
		// kernel files' folder is first bound at the same path there.
		"--bind="+p.Kernel+":"+p.Kernel,
	)
	for _, name := range slices.Sorted(maps.Keys(kernelBinds)) {
		argv = append(argv, "--bind="+p.Kernel+"/"+name+":"+kernelBinds[name])
	}
	return argv
}

// bootHost starts the host's systemd-nspawn detached in the host's own
// cgroups, finds its PID 1 and plugs it into the bridge.
func bootHost(ctx context.Context, id instance.ID, stateDir string, h *hostState) error {
	p := pathsOf(stateDir, h.Name)
	procs, err := createHostCgroups(id, h.Name)
	if err != nil {
		return err
	}
	// The launcher moves itself into the host's cgroups and becomes nspawn.
	argv := append([]string{"/bin/sh", "-c", `for f in $LAB_CGROUP_PROCS; do echo $$ >"$f"; done; exec "$@"`, "lab-launch"},
		nspawnArgs(*h, p)...)
	env := []string{"LAB_CGROUP_PROCS=" + strings.Join(procs, " ")}
	nspawn, err := startDetached(argv, env, p.Console)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	h.Nspawn = nspawn
	leader, err := findLeader(ctx, nspawn, 30*time.Second)
	if err != nil {
		return fmt.Errorf("host %s: %w; see %s", h.Name, err, p.Console)
	}
	h.Leader = leader
	return attachHost(ctx, id, h.Name, leader.PID)
}

// findLeader waits for the host's PID 1 (systemd, a child of nspawn).
func findLeader(ctx context.Context, nspawn Proc, timeout time.Duration) (Proc, error) {
	deadline := time.Now().Add(timeout)
	for {
		if !nspawn.Alive() {
			return Proc{}, fmt.Errorf("systemd-nspawn exited before the host booted")
		}
		for _, pid := range children(nspawn.PID) {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if strings.TrimSpace(string(comm)) == "systemd" {
				return procOf(pid)
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return Proc{}, fmt.Errorf("no systemd started under systemd-nspawn (pid %d) within %s", nspawn.PID, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// children lists a process's child PIDs.
func children(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

// waitBooted waits until systemd in the host says "running" and sshd
// answers on the host's address. A host that boots "degraded" is an error
// that names the failed units.
func (l *Lab) waitBooted(ctx context.Context, h hostState, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		out, _, _ := l.Exec(ctx, h.Name, "systemctl", "is-system-running")
		last = strings.TrimSpace(string(out))
		if last == "running" {
			break
		}
		if last == "degraded" {
			failed, _, _ := l.Exec(ctx, h.Name, "systemctl", "--failed", "--no-legend", "--plain")
			return fmt.Errorf("host %s booted degraded; failed units: %s (journalctl -b inside the host says why)",
				h.Name, strings.Join(strings.Fields(string(failed)), " "))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("host %s did not finish booting within %s (systemd says %q); see %s",
				h.Name, timeout, last, pathsOf(l.stateDir, h.Name).Console)
		}
		time.Sleep(300 * time.Millisecond)
	}
	for {
		if err := sshBanner(h.Address); err == nil {
			return nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("host %s: sshd does not answer on %s:22: %w", h.Name, h.Address, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// sshBanner connects to port 22 and reads the server's greeting.
func sshBanner(addr string) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "22"), 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(buf[:n]), "SSH-2.0-") {
		return fmt.Errorf("unexpected greeting %q", buf[:n])
	}
	return nil
}
