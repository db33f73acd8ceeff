package e2e

// End-to-end tests of the hostprep phase on the lab's hosts: every EL
// personality and Ubuntu converge, a rerun changes nothing and runs no
// changing command, each kind of drift made from outside (lab Exec, not
// kprep's SSH) is planned and repaired exactly, and bad host states fail
// clearly without touching the other hosts.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kprep/kprep/test/lab/lab"
)

var hostprepSteps = []string{"hostprep/hostname", "hostprep/firewall", "hostprep/selinux", "hostprep/swap", "hostprep/modules", "hostprep/sysctl"}

func TestHostprepConvergesAndRerunChangesNothing(t *testing.T) {
	l := bootLab(t, "centos7", "rocky9", "openeuler22", "ubuntu22")
	inv := l.InventoryPath()

	plan := runKprep(t, l, 2, "plan", "-i", inv, "--phase", "hostprep")
	if s := plan.step(t, "lab1", "hostprep/swap"); s.Status != "pending" || !strings.HasPrefix(s.Changes[0].Summary, "swap is on: ") {
		t.Errorf("plan lab1 swap: %+v", s)
	}

	rep := runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep")
	for _, h := range l.Hosts() {
		el := h.OS != "ubuntu22"
		for _, name := range []string{"hostprep/swap", "hostprep/modules", "hostprep/sysctl"} {
			if s := rep.step(t, h.Name, name); s.Status != "changed" {
				t.Errorf("%s %s: %s, want changed on a fresh host", h.Name, name, s.Status)
			}
		}
		// EL hosts boot with firewalld on and SELinux enforcing; Ubuntu
		// with ufw inactive and no SELinux.
		for _, name := range []string{"hostprep/firewall", "hostprep/selinux"} {
			if s := rep.step(t, h.Name, name); (s.Status == "changed") != el {
				t.Errorf("%s (%s) %s: %s", h.Name, h.OS, name, s.Status)
			}
		}
		checkPrepared(t, l, h)
	}
	// Every change is verified together at the end, in the lock session:
	// two probes, where one per change was seven on an EL host.
	for _, h := range rep.Hosts {
		if h.Time.Probes != 2 {
			t.Errorf("%s: %d probe round trips on a fresh host, want 2 (the first, one verify of every change)", h.Name, h.Time.Probes)
		}
	}

	rerun := runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep")
	rerun.requireUnchanged(t, "hostprep/")
	runKprep(t, l, 0, "plan", "-i", inv, "--phase", "hostprep")

	checkSudoLog(t, l)

	// The run log on the host says the same: the last run ran nothing.
	last := lastRunLog(t, l, "lab2")
	for _, s := range last.Steps {
		if s.Status != "unchanged" || len(s.Commands) > 0 {
			t.Errorf("run log of the rerun on lab2: %+v", s)
		}
	}
}

// checkSudoLog checks what sudo logged on the hosts kprep reaches through
// it: sudo writes every command line to the host's journal, so kprep sends
// its lines on stdin and the log holds only the short wrapper, never a
// probe script (in 962-byte entries of "command continued") nor
// a secret of a line.
func checkSudoLog(t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, h := range l.Hosts() {
		if h.SSHUser == "root" {
			continue
		}
		got := hostSh(t, l, h.Name, `journalctl -q -t sudo -o cat | awk '/COMMAND=/ {n++} /command continued|@@kprep|kprep_show|kprep_file/ {bad++} END {print n+0, bad+0}'`)
		var commands, bad int
		if _, err := fmt.Sscan(got, &commands, &bad); err != nil || commands == 0 || bad != 0 {
			t.Errorf("%s: sudo logged %d commands, %d lines of kprep's scripts (want some and none): %q", h.Name, commands, bad, got)
		}
	}
}

// checkPrepared checks a prepared host from inside, without kprep.
func checkPrepared(t *testing.T, l *lab.Lab, h lab.Host) {
	t.Helper()
	sh := func(line string) string { return hostSh(t, l, h.Name, line) }
	if got := sh("systemctl is-active firewalld; systemctl is-enabled firewalld; true"); h.OS != "ubuntu22" && got != "inactive\ndisabled" {
		t.Errorf("%s firewalld: %q", h.Name, got)
	}
	if h.OS != "ubuntu22" {
		if got := sh("getenforce; grep '^SELINUX=' /etc/selinux/config; readlink /etc/sysconfig/selinux"); got != "Permissive\nSELINUX=permissive\n../selinux/config" {
			t.Errorf("%s selinux: %q", h.Name, got)
		}
	}
	if got := sh("sed 1d /proc/swaps; swapon --show"); got != "" {
		t.Errorf("%s swap still on: %q", h.Name, got)
	}
	fstab := sh("grep -n swap /etc/fstab")
	for _, line := range strings.Split(fstab, "\n") {
		_, text, _ := strings.Cut(line, ":")
		if f := strings.Fields(text); len(f) >= 3 && f[2] == "swap" && !strings.HasPrefix(text, "#") {
			t.Errorf("%s fstab still mounts swap: %q", h.Name, line)
		}
		if strings.HasPrefix(text, "##") {
			t.Errorf("%s fstab line commented twice: %q", h.Name, line)
		}
	}
	if got := sh("cat /etc/fstab.kprep-orig | grep -c swap"); got == "0" {
		t.Errorf("%s: no backup of the original fstab", h.Name)
	}
	if got := sh("sysctl -n net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables"); got != "1\n1\n1" {
		t.Errorf("%s sysctls: %q", h.Name, got)
	}
	if got := sh("grep -v '^#' /etc/modules-load.d/k8s.conf"); got != "overlay\nbr_netfilter" {
		t.Errorf("%s modules: %q", h.Name, got)
	}
	// /etc/hosts carries the host itself and the control plane (lab1).
	want := h.Name + "\n2"
	if h.Name == "lab1" {
		want = h.Name + "\n1"
	}
	prefix := h.Address[:strings.LastIndex(h.Address, ".")+1] // the lab instance's subnet
	if got := sh("hostname; grep -c '^" + strings.ReplaceAll(prefix, ".", "[.]") + "1[1-4] lab[1-4]$' /etc/hosts"); got != want {
		t.Errorf("%s hostname and /etc/hosts: %q", h.Name, got)
	}
}

// TestHostprepDrift breaks one thing at a time from outside; plan names
// exactly that, apply mends exactly that, and plan is clean again.
func TestHostprepDrift(t *testing.T) {
	l := bootLab(t, "centos7", "ubuntu22")
	inv := l.InventoryPath()
	runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep")

	tests := []struct {
		host, step, breakIt string
		wantPlan            []string // change summaries plan must show for the step
		check               string   // a shell check that must print "ok" after apply
	}{
		{"lab1", "hostprep/firewall", "systemctl enable --now firewalld",
			[]string{"firewalld is running and enabled"},
			`[ "$(systemctl is-active firewalld)" = inactive ] && echo ok`},
		{"lab1", "hostprep/selinux", "sed -i --follow-symlinks 's/^SELINUX=.*/SELINUX=enforcing/' /etc/sysconfig/selinux && setenforce 1",
			[]string{"SELinux is enforcing now", "SELinux is enforcing at boot (/etc/selinux/config: SELINUX=enforcing)"},
			`[ "$(getenforce)" = Permissive ] && [ -L /etc/sysconfig/selinux ] && echo ok`},
		{"lab1", "hostprep/swap", // Only kprep's comment goes; the user's own commented line 12
			// (centos-swap2) stays commented.
			`sed -i 's|^#\(/dev/mapper/centos-swap[[:space:]]\)|\1|' /etc/fstab && swapon -a`,
			[]string{"swap is on: /dev/dm-1, 2.0 GiB", "/etc/fstab turns swap on at boot: line 11 (/dev/mapper/centos-swap)"},
			`[ -z "$(sed 1d /proc/swaps)" ] && grep -q '^#/dev/mapper/centos-swap ' /etc/fstab && grep -q '^#/dev/mapper/centos-swap2 ' /etc/fstab && ! grep -q '^##' /etc/fstab && echo ok`},
		{"lab2", "hostprep/swap", "sed -i 's|^#/swap.img|/swap.img|' /etc/fstab && swapon -a",
			[]string{"swap is on: /swap.img, 2.0 GiB", "/etc/fstab turns swap on at boot: line 13 (/swap.img)"},
			`[ -z "$(sed 1d /proc/swaps)" ] && echo ok`},
		{"lab1", "hostprep/sysctl", "rm /etc/sysctl.d/k8s.conf && sysctl -w net.ipv4.ip_forward=0",
			[]string{"/etc/sysctl.d/k8s.conf is missing", "net.ipv4.ip_forward is 0, want 1"},
			`[ "$(sysctl -n net.ipv4.ip_forward)" = 1 ] && [ -f /etc/sysctl.d/k8s.conf ] && echo ok`},
		{"lab2", "hostprep/hostname", "hostnamectl set-hostname renamed",
			[]string{`hostname is "renamed" (at boot: "renamed"), want "lab2"`},
			`[ "$(hostname)" = lab2 ] && [ "$(cat /etc/hostname)" = lab2 ] && echo ok`},
		{"lab2", "hostprep/modules", "rm /etc/modules-load.d/k8s.conf",
			[]string{"/etc/modules-load.d/k8s.conf is missing"},
			`grep -qx br_netfilter /etc/modules-load.d/k8s.conf && echo ok`},
	}
	for _, tt := range tests {
		t.Run(tt.host+"/"+tt.step, func(t *testing.T) {
			hostSh(t, l, tt.host, tt.breakIt)
			plan := runKprep(t, l, 2, "plan", "-i", inv, "--phase", "hostprep")
			for _, h := range plan.Hosts {
				for _, s := range h.Steps {
					drifted := h.Name == tt.host && s.Name == tt.step
					if drifted {
						var got []string
						for _, c := range s.Changes {
							got = append(got, c.Summary)
						}
						if strings.Join(got, "\n") != strings.Join(tt.wantPlan, "\n") {
							t.Errorf("plan shows:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.wantPlan, "\n  "))
						}
					} else if s.Status != "unchanged" {
						t.Errorf("plan: %s %s is %s (%+v); only %s %s drifted", h.Name, s.Name, s.Status, s.Changes, tt.host, tt.step)
					}
				}
			}
			apply := runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep")
			for _, h := range apply.Hosts {
				for _, s := range h.Steps {
					want := "unchanged"
					if h.Name == tt.host && s.Name == tt.step {
						want = "changed"
					}
					if s.Status != want {
						t.Errorf("apply: %s %s is %s, want %s", h.Name, s.Name, s.Status, want)
					}
				}
			}
			if got := hostSh(t, l, tt.host, tt.check); got != "ok" {
				t.Errorf("after apply, check %q printed %q", tt.check, got)
			}
			runKprep(t, l, 0, "plan", "-i", inv, "--phase", "hostprep")
		})
	}
}

// TestHostprepSysctlOverrideFailsNamingTheFile: a leftover in
// /etc/sysctl.conf would undo ip_forward at boot; kprep says so and where.
func TestHostprepSysctlOverrideFailsNamingTheFile(t *testing.T) {
	l := bootLab(t, "rocky9")
	hostSh(t, l, "lab1", "echo 'net.ipv4.ip_forward = 0' >> /etc/sysctl.conf")
	rep := runKprep(t, l, 1, "plan", "-i", l.InventoryPath(), "--phase", "hostprep")
	s := rep.step(t, "lab1", "hostprep/sysctl")
	if s.Status != "failed" || !strings.HasPrefix(s.Error, "/etc/sysctl.conf:") || !strings.Contains(s.Error, "sets net.ipv4.ip_forward = 0, which overrides /etc/sysctl.d/k8s.conf") {
		t.Errorf("sysctl step: %s %q", s.Status, s.Error)
	}
}

// TestHostprepBadHostStates: an unsupported OS, a read-only /etc, a wrong
// sudo password and a host that goes away mid-run each fail that host with
// a clear error; the other hosts still finish.
func TestHostprepBadHostStates(t *testing.T) {
	l := bootLab(t, "centos7", "rocky9", "openeuler22", "centos7")
	inv := l.InventoryPath()
	hostOf := map[string]lab.Host{}
	for _, h := range l.Hosts() {
		hostOf[h.Name] = h
	}
	if !hostOf["lab3"].SudoNeedsPassword {
		t.Fatal("the lab's lab3 should be the host whose sudo asks for a password")
	}
	// lab1 claims to be Alpine; lab2 has a read-only /etc; lab4 loses its
	// SSH connection while swapoff hangs.
	hostSh(t, l, "lab1", "cp /etc/os-release /root/os-release.real && sed -i 's/^ID=.*/ID=alpine/; s/^VERSION_ID=.*/VERSION_ID=3.20/' /etc/os-release")
	hostSh(t, l, "lab2", "mount --bind /etc /etc && mount -o remount,bind,ro /etc")
	hostSh(t, l, "lab4", `printf '#!/bin/sh\nsleep 600\n' > /usr/local/sbin/swapoff && chmod +x /usr/local/sbin/swapoff`)
	hostsBefore := hostSh(t, l, "lab2", "md5sum /etc/hosts /etc/fstab /etc/selinux/config")

	// The wrong sudo password is given for lab3 only through the env.
	cmd := exec.Command(kprepBinary(t), "apply", "-i", inv, "--phase", "hostprep", "-o", "json")
	cmd.Env = append(os.Environ(), l.SudoPasswordEnv()+"=not-the-password")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// When lab4 hangs in swapoff, cut its SSH connection from inside.
	waitFor(t, "lab4 to hang in swapoff", func() bool {
		out, _ := hostShErr(l, "lab4", "pgrep -f 'sleep 60[0]'")
		return out != ""
	})
	hostSh(t, l, "lab4", "pkill -KILL -f 'sshd: [a-z]*@nott[y]' ; pkill -f 'sleep 60[0]'; true")
	err := cmd.Wait()
	t.Logf("apply over the broken hosts: %s", time.Since(started).Round(time.Millisecond))
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("apply exit %d (%v), want 1\n%s\n%s", code, err, stdout.String(), stderr.String())
	}
	var rep kprepReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.String())
	}
	byHost := map[string]string{}
	for _, h := range rep.Hosts {
		var fails []string
		if h.Error != "" {
			fails = append(fails, h.Error)
		}
		for _, s := range h.Steps {
			if s.Status == "failed" {
				fails = append(fails, s.Name+": "+s.Error)
			}
		}
		byHost[h.Name] = strings.Join(fails, "\n")
	}
	want := map[string]string{
		"lab1": `unsupported operating system`,
		"lab2": "read-only file system",
		"lab3": "sudo",
		"lab4": "hostprep/swap: ",
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("%s: %s", n, byHost[n])
		if !strings.Contains(strings.ToLower(byHost[n]), strings.ToLower(want[n])) {
			t.Errorf("%s failed with %q, want it to mention %q", n, byHost[n], want[n])
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), "not-the-password") {
		t.Error("the sudo password reached kprep's output")
	}
	if after := hostSh(t, l, "lab2", "md5sum /etc/hosts /etc/fstab /etc/selinux/config"); after != hostsBefore {
		t.Errorf("lab2's files changed under a read-only /etc:\n%s\n%s", hostsBefore, after)
	}
	if got := hostSh(t, l, "lab2", "ls -a /etc | grep -c kprep-tmp; true"); got != "0" {
		t.Errorf("lab2: temporary files left in /etc: %s", got)
	}

	// Mended, every host converges.
	hostSh(t, l, "lab1", "cp /root/os-release.real /etc/os-release")
	hostSh(t, l, "lab2", "umount /etc")
	hostSh(t, l, "lab4", "rm /usr/local/sbin/swapoff")
	runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep").requireNoFailures(t)
}

// runLogRecord is one line of /var/lib/kprep/run.log.
type runLogRecord struct {
	Time  time.Time
	Mode  string
	Steps []struct {
		Name     string
		Status   string
		Commands []string
	}
}

func lastRunLog(t *testing.T, l *lab.Lab, host string) runLogRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _, err := l.Exec(ctx, host, "tail", "-n1", "/var/lib/kprep/run.log")
	if err != nil {
		t.Fatalf("%s: run log: %v", host, err)
	}
	var rec runLogRecord
	if err := json.Unmarshal(out, &rec); err != nil {
		t.Fatalf("%s: run log line %q: %v", host, out, err)
	}
	if rec.Mode != "apply" || len(rec.Steps) != len(hostprepSteps) {
		t.Errorf("%s: run log record %+v, want an apply with %d steps", host, rec, len(hostprepSteps))
	}
	return rec
}

// TestHostprepOpenPorts keeps firewalld running and opens exactly the
// ports each host's role and the CNI need, now and at boot, without
// losing the SSH session kprep works through.
func TestHostprepOpenPorts(t *testing.T) {
	l := bootLab(t, "rocky9", "openeuler22")
	inv := editInventory(t, l, func(doc map[string]any) {
		doc["hostprep"] = map[string]any{"firewall": "open-ports"}
		k, _ := doc["kubernetes"].(map[string]any)
		k["cni"] = "calico"
	})
	rep := runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep")
	if s := rep.step(t, "lab1", "hostprep/firewall"); s.Status != "changed" {
		t.Errorf("lab1 firewall: %+v", s)
	}
	want := map[string][]string{
		"lab1": {"10250/tcp", "10257/tcp", "10259/tcp", "179/tcp", "2379-2380/tcp", "4789/udp", "5473/tcp", "6443/tcp"},
		"lab2": {"10250/tcp", "10256/tcp", "179/tcp", "30000-32767/tcp", "4789/udp", "5473/tcp"},
	}
	for host, ports := range want {
		got := hostSh(t, l, host, "systemctl is-active firewalld; firewall-cmd --list-ports; firewall-cmd --permanent --list-ports; firewall-cmd --list-protocols; firewall-cmd --permanent --list-protocols; firewall-cmd --zone=trusted --list-sources; firewall-cmd --permanent --zone=trusted --list-sources")
		lines := strings.Split(got, "\n")
		if len(lines) != 7 || lines[0] != "active" {
			t.Fatalf("%s: %q", host, got)
		}
		// The pod network is trusted: forwarded pod traffic passes.
		if lines[5] != "10.244.0.0/16" || lines[6] != "10.244.0.0/16" {
			t.Errorf("%s trusted sources now and at boot: %q, %q, want the pod network 10.244.0.0/16", host, lines[5], lines[6])
		}
		for i, where := range []string{"now", "at boot"} {
			have := strings.Fields(lines[1+i])
			sort.Strings(have)
			if strings.Join(have, " ") != strings.Join(ports, " ") {
				t.Errorf("%s ports %s: %v, want %v", host, where, have, ports)
			}
			if lines[3+i] != "ipip" {
				t.Errorf("%s protocols %s: %q, want ipip (Calico)", host, where, lines[3+i])
			}
		}
	}
	// The session survived and the rerun has nothing to do.
	runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep").requireUnchanged(t, "hostprep/")
	// A port closed by hand is opened again, now and at boot.
	hostSh(t, l, "lab2", "firewall-cmd --remove-port=10250/tcp && firewall-cmd --permanent --remove-port=10250/tcp")
	plan := runKprep(t, l, 2, "plan", "-i", inv, "--phase", "hostprep")
	if s := plan.step(t, "lab2", "hostprep/firewall"); len(s.Changes) != 2 {
		t.Errorf("plan after closing 10250 by hand: %+v", s.Changes)
	}
	runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep")
	runKprep(t, l, 0, "plan", "-i", inv, "--phase", "hostprep")

	// A port the user opened stays; what kprep opened and no longer needs
	// goes. The roles swap (lab1 a worker, lab2 the control plane) and the
	// CNI becomes flannel: each host's ports for its old role and Calico's
	// close, 9100/tcp (opened by hand on lab1) stays.
	hostSh(t, l, "lab1", "firewall-cmd --add-port=9100/tcp && firewall-cmd --permanent --add-port=9100/tcp")
	inv = editInventory(t, l, func(doc map[string]any) {
		doc["hostprep"] = map[string]any{"firewall": "open-ports"}
		k, _ := doc["kubernetes"].(map[string]any)
		k["cni"] = "flannel"
		for _, h := range doc["hosts"].([]any) {
			h := h.(map[string]any)
			switch h["name"] {
			case "lab1":
				h["roles"] = []any{"worker"}
			case "lab2":
				h["roles"] = []any{"control-plane"}
			}
		}
	})
	runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep")
	for host, want := range map[string]string{
		"lab1": "10250/tcp 10256/tcp 30000-32767/tcp 8472/udp 9100/tcp",
		"lab2": "10250/tcp 10257/tcp 10259/tcp 2379-2380/tcp 6443/tcp 8472/udp",
	} {
		got := hostSh(t, l, host, "firewall-cmd --list-ports; echo --; firewall-cmd --permanent --list-ports; echo --; firewall-cmd --list-protocols; echo --; firewall-cmd --permanent --list-protocols")
		parts := strings.Split(got, "--")
		if len(parts) != 4 {
			t.Fatalf("%s: firewall-cmd printed %q", host, got)
		}
		for i, where := range []string{"now", "at boot"} {
			have := strings.Fields(parts[i])
			sort.Strings(have)
			if strings.Join(have, " ") != want {
				t.Errorf("%s ports %s after the role change: %v, want %s", host, where, have, want)
			}
		}
		if protos := strings.TrimSpace(parts[2] + " " + parts[3]); protos != "" {
			t.Errorf("%s protocols after the change: %q, want none (ipip was Calico's, opened by kprep)", host, protos)
		}
	}
	runKprep(t, l, 0, "plan", "-i", inv, "--phase", "hostprep")
}
