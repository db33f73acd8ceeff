package e2e

// End-to-end tests of the kube phase's package and kubelet steps on the
// lab's hosts: the Kubernetes repo of the lab's mirror (laid out as
// pkgs.k8s.io), kubelet, kubeadm and kubectl pinned, held and upgraded only
// when the inventory's version changes, and the kubelet's node settings.
// The steps run in process through the engine, as kprep runs them, so this
// suite needs no control-plane images; checks run inside the hosts (lab
// Exec, not kprep's own SSH). They need root and KPREP_E2E=1.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kprep/kprep/kube"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/test/lab/lab"
)

// kubeNodeSteps are the kube steps that make a host ready for kubeadm.
func kubeNodeSteps() []provision.Step {
	var out []provision.Step
	for _, s := range kube.Steps() {
		switch s.Name() {
		case "kube/repo", "kube/packages", "kube/kubelet":
			out = append(out, s)
		}
	}
	return out
}

// runKubeNode runs the kube node steps in process, in mode.
func runKubeNode(t *testing.T, l *lab.Lab, c *inventory.Cluster, mode provision.Mode) *provision.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	d := provision.SSHDialer{LookupEnv: labEnv(l)}
	start := time.Now()
	rep, err := provision.Run(ctx, c, d, provision.Options{Mode: mode, Steps: kubeNodeSteps()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s of the kube node steps on %d hosts: %s", mode, len(c.Hosts), time.Since(start).Round(time.Millisecond))
	for _, h := range rep.Hosts {
		if h.Failed() {
			t.Fatalf("%s failed on %s: %s %+v", mode, h.Name, h.Error, h.Steps)
		}
	}
	return rep
}

// stepOf finds a step's result on a host.
func stepOf(t *testing.T, rep *provision.Report, host, name string) provision.StepResult {
	t.Helper()
	for _, h := range rep.Hosts {
		if h.Name != host {
			continue
		}
		for _, s := range h.Steps {
			if s.Name == name {
				return s
			}
		}
	}
	t.Fatalf("no %s on %s in the report", name, host)
	return provision.StepResult{}
}

// requireAll checks that every host's kube node steps have status want.
func requireAll(t *testing.T, rep *provision.Report, want provision.Status) {
	t.Helper()
	for _, h := range rep.Hosts {
		for _, s := range h.Steps {
			if s.Status != want {
				t.Errorf("%s %s: %s %+v, want %s", h.Name, s.Name, s.Status, s.Changes, want)
			}
			if want == provision.StatusUnchanged && len(s.Commands) > 0 {
				t.Errorf("%s %s ran %q on a converged host", h.Name, s.Name, s.Commands)
			}
		}
	}
}

// kubeVersions reads the installed kubelet, kubeadm and kubectl versions.
func kubeVersions(t *testing.T, l *lab.Lab, host string) string {
	t.Helper()
	return strings.TrimSpace(hostSh(t, l, host,
		`if command -v rpm >/dev/null && rpm -q kubelet >/dev/null 2>&1; then rpm -q --qf '%{VERSION} ' kubelet kubeadm kubectl; `+
			`else dpkg-query -W -f='${Version} ' kubelet kubeadm kubectl | sed 's/-[^ ]*//g'; fi`))
}

// TestKubePackagesAndKubelet installs the Kubernetes packages on fresh
// CentOS 7, Rocky 9 and Ubuntu 22.04 hosts at 1.34.3, shows that a host-wide
// upgrade leaves them there (held), that a rerun changes nothing, that a
// version change in the inventory is planned as an upgrade and applied,
// and that the kubelet's settings are put back after a hand edit.
func TestKubePackagesAndKubelet(t *testing.T) {
	l := bootLab(t, "centos7", "rocky9", "ubuntu22")
	c := loadLabInventory(t, l)
	// The lab's mirror carries 1.34.3 and 1.34.4.
	c.Kubernetes.Version = "1.34.3"

	plan := runKubeNode(t, l, c, provision.ModePlan)
	requireAll(t, plan, provision.StatusPending)

	rep := runKubeNode(t, l, c, provision.ModeApply)
	requireAll(t, rep, provision.StatusChanged)
	for _, h := range c.Hosts {
		t.Run("fresh/"+h.Name, func(t *testing.T) {
			if got := kubeVersions(t, l, h.Name); got != "1.34.3 1.34.3 1.34.3" {
				t.Errorf("kubelet kubeadm kubectl = %q, want 1.34.3", got)
			}
			if got := strings.TrimSpace(hostSh(t, l, h.Name, "systemctl is-enabled kubelet")); got != "enabled" {
				t.Errorf("kubelet is %s at boot", got)
			}
			env := hostSh(t, l, h.Name, "cat /etc/sysconfig/kubelet 2>/dev/null || cat /etc/default/kubelet")
			if lines := strings.Split(env, "\n"); lines[len(lines)-1] != "KUBELET_EXTRA_ARGS=--node-ip="+h.Address {
				t.Errorf("kubelet environment file:\n%s", env)
			}
			// The kubelet unit reads it: systemd sees the flag.
			if show := hostSh(t, l, h.Name, "systemctl show -p EnvironmentFiles kubelet"); !strings.Contains(show, "kubelet") {
				t.Errorf("kubelet unit reads no environment file: %s", show)
			}
		})
	}

	// Held: an upgrade of everything on the host leaves them at 1.34.3,
	// though the repo has 1.34.4.
	for _, h := range l.Hosts() {
		if h.OS == "ubuntu22" {
			hostSh(t, l, h.Name, "DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -o Dir::Etc::sourcelist=sources.list.d/kubernetes.list -o Dir::Etc::sourceparts=- >/dev/null")
		} else {
			hostSh(t, l, h.Name, "yum -y --disablerepo='*' --enablerepo=kubernetes update >/dev/null 2>&1; yum -y --disablerepo='*' --enablerepo=kubernetes install kubelet-1.34.4 >/dev/null 2>&1; true")
		}
		if got := kubeVersions(t, l, h.Name); got != "1.34.3 1.34.3 1.34.3" {
			t.Errorf("%s (%s): after a host-wide upgrade kubelet kubeadm kubectl = %q, want them held at 1.34.3", h.Name, h.OS, got)
		}
	}

	requireAll(t, runKubeNode(t, l, c, provision.ModeApply), provision.StatusUnchanged)

	// The inventory moves to 1.34.4: plan says upgrade, apply does it.
	c.Kubernetes.Version = "1.34.4"
	plan = runKubeNode(t, l, c, provision.ModePlan)
	for _, h := range c.Hosts {
		s := stepOf(t, plan, h.Name, "kube/packages")
		if s.Status != provision.StatusPending || len(s.Changes) != 3 ||
			s.Changes[0].Summary != "kubelet 1.34.3 is installed; the inventory pins 1.34.4 (upgrade)" {
			t.Errorf("%s plan of 1.34.4: %s %+v", h.Name, s.Status, s.Changes)
		}
		if s := stepOf(t, plan, h.Name, "kube/repo"); s.Status != provision.StatusUnchanged {
			t.Errorf("%s: the same minor's repo changed: %+v", h.Name, s.Changes)
		}
	}
	runKubeNode(t, l, c, provision.ModeApply)
	for _, h := range c.Hosts {
		if got := kubeVersions(t, l, h.Name); got != "1.34.4 1.34.4 1.34.4" {
			t.Errorf("%s after the upgrade: %q", h.Name, got)
		}
	}
	if held := hostSh(t, l, "lab3", "apt-mark showhold"); fmt.Sprint(strings.Fields(held)) != "[kubeadm kubectl kubelet kubernetes-cni]" {
		t.Errorf("Ubuntu holds after the upgrade: %q", held)
	}
	requireAll(t, runKubeNode(t, l, c, provision.ModeApply), provision.StatusUnchanged)

	// Drift: the kubelet disabled, its node IP edited, a hold lifted.
	hostSh(t, l, "lab1", "systemctl disable kubelet && sed -i 's/--node-ip=.*/--node-ip=10.0.2.15/' /etc/sysconfig/kubelet")
	hostSh(t, l, "lab3", "apt-mark unhold kubelet >/dev/null")
	rep = runKubeNode(t, l, c, provision.ModeApply)
	for host, want := range map[string]map[string]string{
		"lab1": {"kube/packages": "the kubelet is disabled at boot", "kube/kubelet": "/etc/sysconfig/kubelet differs from what it should hold (node IP " + c.Hosts[0].Address + ")"},
		"lab3": {"kube/packages": "not held, so an apt upgrade would move them off the pinned version: kubelet"},
	} {
		for step, summary := range want {
			s := stepOf(t, rep, host, step)
			if s.Status != provision.StatusChanged || len(s.Changes) != 1 || s.Changes[0].Summary != summary {
				t.Errorf("%s %s: %s %+v, want %q", host, step, s.Status, s.Changes, summary)
			}
		}
	}
	requireAll(t, runKubeNode(t, l, c, provision.ModeApply), provision.StatusUnchanged)
}
