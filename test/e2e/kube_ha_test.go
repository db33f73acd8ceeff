package e2e

// Local mode with three control planes and a worker, on one cluster
// brought up once: the worker's proxy keeps it working while the first
// control plane's API server is down; kprep kubeconfig from this machine;
// kprep reset of a worker and of a control plane, and its refusals; the
// proxy following the control planes of the inventory.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kprep/kprep/test/lab/lab"
)

const (
	endpointName    = "kube-apiserver.kprep.internal"
	proxyConfigFile = "/etc/kubernetes/kprep/haproxy.cfg"
)

// endpointLine is the address a host's /etc/hosts gives the endpoint's name.
func endpointLine(t *testing.T, l *lab.Lab, host string) string {
	t.Helper()
	return hostSh(t, l, host, "awk '$2 == \""+endpointName+"\" {print $1}' /etc/hosts")
}

// proxyServers lists the server lines of a worker's proxy configuration.
func proxyServers(t *testing.T, l *lab.Lab, host string) []string {
	t.Helper()
	return strings.Fields(hostSh(t, l, host, "awk '$1 == \"server\" {print $2}' "+proxyConfigFile))
}

// requireChangedOnly checks that every step that did something is one of
// want ("host step"; host "*" is any host).
func requireChangedOnly(t *testing.T, rep kprepReport, want ...string) {
	t.Helper()
	for _, c := range rep.changed() {
		f := strings.Fields(c)
		if f[2] != "changed" || !contains(want, f[0]+" "+f[1]) && !contains(want, "* "+f[1]) {
			t.Errorf("%s; want only %s", c, strings.Join(want, ", "))
		}
	}
}

func TestKubeHA(t *testing.T) {
	l := bootLab(t, "rocky9", "ubuntu22", "openeuler22", "centos7")
	all := []string{"lab1", "lab2", "lab3", "lab4"}
	cps := []string{"lab1", "lab2", "lab3"}
	inv := kubeInventory(t, l, all, cps, nil)

	start := time.Now()
	rep := runKprep(t, l, 0, "apply", "-i", inv)
	t.Logf("fresh cluster of 3 control planes and a worker, local mode: %s", time.Since(start).Round(time.Second))
	rep.requireNoFailures(t)
	nodesReady(t, l, "lab1", all...)

	t.Run("the worker reaches every API server through its proxy", func(t *testing.T) {
		if got := endpointLine(t, l, "lab4"); got != "127.0.0.1" {
			t.Errorf("lab4 resolves %s to %q, want 127.0.0.1 (its proxy)", endpointName, got)
		}
		for _, cp := range cps {
			if got := endpointLine(t, l, cp); got != "127.0.0.1" {
				t.Errorf("%s resolves %s to %q, want 127.0.0.1 (its own API server)", cp, endpointName, got)
			}
		}
		if got := strings.Join(proxyServers(t, l, "lab4"), " "); got != "lab1 lab2 lab3" {
			t.Errorf("lab4's proxy forwards to %q", got)
		}
		// kube-proxy reaches the API by the name too, on the host network,
		// with a copy of /etc/hosts from when it started: the copy on every
		// node resolves it as the host does now.
		for _, h := range all {
			if got := hostSh(t, l, h, "for p in $(pgrep -x kube-proxy); do awk '$2 == \""+endpointName+"\" {print $1}' /proc/$p/root/etc/hosts; done"); got != "127.0.0.1" {
				t.Errorf("kube-proxy on %s resolves %s to %q", h, endpointName, got)
			}
		}
		if phase := kubectlOn(t, l, "lab1", "-n kube-system get pod kprep-apiserver-proxy-lab4 -o jsonpath={.status.phase}"); phase != "Running" {
			t.Errorf("the proxy's pod: %q", phase)
		}
		start := time.Now()
		runKprep(t, l, 0, "apply", "-i", inv).requireAllUnchanged(t)
		t.Logf("rerun of 4 hosts: %s", time.Since(start).Round(time.Millisecond))
		runKprep(t, l, 0, "plan", "-i", inv)
	})

	t.Run("kubeconfig works from this machine", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "lab.conf")
		out, err := exec.Command(kprepBinary(t), "kubeconfig", "-i", inv, "--write", file).CombinedOutput()
		if err != nil {
			t.Fatalf("kprep kubeconfig: %v\n%s", err, out)
		}
		fi, err := os.Stat(file)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v", file, err, fi.Mode())
		}
		h, _ := l.Host("lab1")
		if b, _ := os.ReadFile(file); !strings.Contains(string(b), "server: https://"+h.Address+":6443") {
			t.Errorf("the kubeconfig names another server:\n%s", b)
		}
		kubectl := filepath.Join(l.MirrorBinDir(), "kubectl")
		got, err := exec.Command(kubectl, "--kubeconfig", file, "--request-timeout=20s", "get", "nodes", "-o", "name").CombinedOutput()
		if err != nil || strings.Fields(string(got))[0] != "node/lab1" || len(strings.Fields(string(got))) != 4 {
			t.Errorf("kubectl get nodes from this machine: %v\n%s", err, got)
		}
		// To stdout, the same file.
		stdout, err := exec.Command(kprepBinary(t), "kubeconfig", "-i", inv).Output()
		if b, _ := os.ReadFile(file); err != nil || string(stdout) != string(b) {
			t.Errorf("kprep kubeconfig to stdout differs from --write: %v", err)
		}
	})

	t.Run("the first control plane's API server stopped", func(t *testing.T) {
		h1, _ := l.Host("lab1")
		readyz := fmt.Sprintf("curl -sk --max-time 3 https://%s:6443/readyz", h1.Address)
		hostSh(t, l, "lab1", "mv /etc/kubernetes/manifests/kube-apiserver.yaml /root/kube-apiserver.yaml")
		restored := false
		restore := func() {
			if !restored {
				restored = true
				hostSh(t, l, "lab1", "mv /root/kube-apiserver.yaml /etc/kubernetes/manifests/kube-apiserver.yaml")
			}
		}
		defer restore()
		waitForLong(t, "lab1's API server to stop", 2*time.Minute, func() bool {
			_, err := hostShErr(l, "lab4", readyz)
			return err != nil
		})
		stopped := time.Now().UTC()
		// Through the endpoint, from the worker, with the kubelet's
		// credentials: every try answers, the first ones too, before the
		// health checks have marked lab1 down (a refused connection is
		// sent to another server).
		for i := 0; i < 10; i++ {
			if out, err := hostShErr(l, "lab4", "kubectl --kubeconfig /etc/kubernetes/kubelet.conf --request-timeout=10s get node lab4 -o name"); err != nil || out != "node/lab4" {
				t.Fatalf("try %d: kubectl through the endpoint on lab4: %v\n%s", i+1, err, out)
			}
		}
		waitForLong(t, "lab4's proxy to mark lab1 down", time.Minute, func() bool {
			logs, err := hostShErr(l, "lab2", "kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system logs kprep-apiserver-proxy-lab4")
			return err == nil && strings.Contains(logs, "kube-apiservers/lab1 is DOWN")
		})
		// The worker stays Ready: its kubelet renews its lease through the
		// proxy after lab1 went down, and the Node says Ready.
		waitForLong(t, "lab4's kubelet to renew its lease after lab1 stopped", 2*time.Minute, func() bool {
			out, err := hostShErr(l, "lab2", "kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-node-lease get lease lab4 -o jsonpath={.spec.renewTime}")
			renewed, perr := time.Parse(time.RFC3339Nano, out)
			return err == nil && perr == nil && renewed.After(stopped)
		})
		nodesReady(t, l, "lab2", "lab4")

		restore()
		waitForLong(t, "lab1's API server to be back", 3*time.Minute, func() bool {
			_, err := hostShErr(l, "lab4", readyz)
			return err == nil
		})
		waitForLong(t, "lab4's proxy to mark lab1 up", time.Minute, func() bool {
			logs, err := hostShErr(l, "lab2", "kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system logs kprep-apiserver-proxy-lab4")
			return err == nil && strings.Contains(logs, "kube-apiservers/lab1 is UP")
		})
		// lab1's own kubelet reached the API through lab1's API server only.
		waitClusterSettled(t, l, "lab1", all...)
		runKprep(t, l, 0, "apply", "-i", inv).requireAllUnchanged(t)
	})

	t.Run("reset refusals", func(t *testing.T) {
		// Every control plane, without --force.
		out, err := exec.Command(kprepBinary(t), "reset", "-i", inv, "--hosts", "lab1,lab2,lab3", "--yes").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "refusing to reset every control plane (lab1, lab2, lab3)") {
			t.Errorf("reset of every control plane: %v\n%s", err, out)
		}
		// The only control plane of an inventory that has one.
		one := kubeInventory(t, l, []string{"lab1", "lab4"}, []string{"lab1"}, nil)
		out, err = exec.Command(kprepBinary(t), "reset", "-i", one, "--hosts", "lab1", "--yes").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "refusing to reset every control plane (lab1)") {
			t.Errorf("reset of the only control plane: %v\n%s", err, out)
		}
		// etcd's quorum: lab2's etcd stopped, lab1 may not go (lab3 would
		// be the only healthy member of two).
		hostSh(t, l, "lab2", "mv /etc/kubernetes/manifests/etcd.yaml /root/etcd.yaml")
		defer hostSh(t, l, "lab2", "[ ! -e /root/etcd.yaml ] || mv /root/etcd.yaml /etc/kubernetes/manifests/etcd.yaml")
		waitForLong(t, "lab2's etcd to stop", 2*time.Minute, func() bool {
			_, err := hostShErr(l, "lab2", "curl -s --max-time 2 http://127.0.0.1:2381/health")
			return err != nil
		})
		rep := runKprep(t, l, 1, "reset", "-i", inv, "--hosts", "lab1", "--yes")
		if s := rep.step(t, "lab1", "reset/control-plane"); s.Status != "failed" || !strings.Contains(s.Error, "removing lab1 leaves etcd 2 members, of which 1 are healthy (lab2 down)") {
			t.Errorf("reset of lab1 with lab2's etcd down: %+v", s)
		}
		if len(rep.changed()) != 1 {
			t.Errorf("changed: %v", rep.changed())
		}
		hostSh(t, l, "lab2", "mv /root/etcd.yaml /etc/kubernetes/manifests/etcd.yaml")
		waitForLong(t, "lab2's etcd to be healthy", 3*time.Minute, func() bool {
			out, err := hostShErr(l, "lab2", "curl -s --max-time 2 http://127.0.0.1:2381/health")
			return err == nil && strings.Contains(out, `"health":"true"`)
		})
		waitClusterSettled(t, l, "lab1", all...)
		runKprep(t, l, 0, "plan", "-i", inv)
	})

	t.Run("reset of the worker, then apply", func(t *testing.T) {
		rep := runKprep(t, l, 0, "reset", "-i", inv, "--hosts", "lab4", "--yes")
		if s := rep.step(t, "lab4", "reset/worker"); s.Status != "changed" || !containsPrefix(s.Commands, "lab1: ") {
			t.Errorf("reset/worker: %s, commands %q", s.Status, s.Commands)
		}
		requireResetClean(t, l, "lab4")
		if nodes := kubectlOn(t, l, "lab1", "get nodes -o name"); strings.Contains(nodes, "node/lab4") {
			t.Errorf("lab4's Node is still there: %s", nodes)
		}
		runKprep(t, l, 0, "reset", "-i", inv, "--hosts", "lab4", "--yes").requireAllUnchanged(t)

		waitClusterSettled(t, l, "lab1", "lab1", "lab2", "lab3")
		rep = runKprep(t, l, 0, "apply", "-i", inv)
		requireOnlyOn(t, rep, "lab4")
		nodesReady(t, l, "lab1", all...)
		if got := endpointLine(t, l, "lab4"); got != "127.0.0.1" {
			t.Errorf("lab4 resolves %s to %q after its rejoin", endpointName, got)
		}
		runKprep(t, l, 0, "apply", "-i", inv).requireAllUnchanged(t)
	})

	t.Run("reset of a control plane, the proxy following the inventory", func(t *testing.T) {
		rep := runKprep(t, l, 0, "reset", "-i", inv, "--hosts", "lab3", "--yes")
		if s := rep.step(t, "lab3", "reset/control-plane"); s.Status != "changed" {
			t.Errorf("reset/control-plane: %+v", s)
		}
		requireResetClean(t, l, "lab3")
		members := hostSh(t, l, "lab1", "curl -sS --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key -X POST https://127.0.0.1:2379/v3/cluster/member/list -d '{}'")
		if strings.Contains(members, `"name":"lab3"`) || !strings.Contains(members, `"name":"lab1"`) || !strings.Contains(members, `"name":"lab2"`) {
			t.Errorf("etcd members after lab3's reset: %s", members)
		}
		// The cluster works on: the nodes that stay are Ready, and the
		// worker reaches the API servers through its proxy.
		nodesReady(t, l, "lab1", "lab1", "lab2", "lab4")
		if out := hostSh(t, l, "lab4", "kubectl --kubeconfig /etc/kubernetes/kubelet.conf --request-timeout=10s get node lab4 -o name"); out != "node/lab4" {
			t.Errorf("kubectl on lab4: %s", out)
		}

		waitClusterSettled(t, l, "lab1", "lab1", "lab2", "lab4")
		// lab3 leaves the inventory: lab4's proxy changes, and every
		// host's /etc/hosts block, which names the control planes.
		without := kubeInventory(t, l, []string{"lab1", "lab2", "lab4"}, []string{"lab1", "lab2"}, nil)
		rep = runKprep(t, l, 0, "apply", "-i", without)
		requireChangedOnly(t, rep, "lab4 kube/apiserver-proxy", "* hostprep/hostname")
		if got := strings.Join(proxyServers(t, l, "lab4"), " "); got != "lab1 lab2" {
			t.Errorf("lab4's proxy forwards to %q", got)
		}
		runKprep(t, l, 0, "apply", "-i", without).requireAllUnchanged(t)

		// lab3 comes back: it joins as a fresh control plane, and lab4's
		// proxy forwards to it again.
		rep = runKprep(t, l, 0, "apply", "-i", inv)
		rep.requireNoFailures(t)
		if s := rep.step(t, "lab3", "kube/join-control-plane"); s.Status != "changed" {
			t.Errorf("lab3's join: %+v", s)
		}
		if got := strings.Join(proxyServers(t, l, "lab4"), " "); got != "lab1 lab2 lab3" {
			t.Errorf("lab4's proxy forwards to %q", got)
		}
		nodesReady(t, l, "lab1", all...)
		runKprep(t, l, 0, "apply", "-i", inv).requireAllUnchanged(t)
	})
}

// requireResetClean checks what reset leaves on a host: no kubelet
// running, no kubelet state, no CNI files, no kube or CNI chains, no CNI
// links, an empty /etc/kubernetes and no endpoint line.
func requireResetClean(t *testing.T, l *lab.Lab, host string) {
	t.Helper()
	if active, _ := hostShErr(l, host, "systemctl is-active kubelet.service"); active != "inactive" {
		t.Errorf("%s: the kubelet is %s", host, active)
	}
	for what, line := range map[string]string{
		"kubelet state":       "ls -A /var/lib/kubelet",
		"CNI configuration":   "ls -A /etc/cni/net.d",
		"CNI state":           "ls -d /var/lib/cni /run/flannel 2>/dev/null; true",
		"/etc/kubernetes":     "cd /etc/kubernetes && find . -mindepth 1 ! -path ./manifests",
		"etcd data":           "ls -A /var/lib/etcd 2>/dev/null; true",
		"kube and CNI chains": "for t in filter nat mangle raw; do iptables -w -t $t -S; ip6tables -w -t $t -S; done | grep -E '^-N (KUBE-|FLANNEL|CNI-)'; true",
		"CNI links":           "for l in flannel.1 cni0; do ip link show $l >/dev/null 2>&1 && echo $l; done; true",
		"endpoint line":       "grep -F " + endpointName + " /etc/hosts; true",
	} {
		if left := hostSh(t, l, host, line); left != "" {
			t.Errorf("%s: %s left after reset:\n%s", host, what, left)
		}
	}
}

// waitClusterSettled waits until the named nodes are Ready (seen through
// cp) and CoreDNS is available again, after a disruption, so that a rerun
// finds nothing to wait for.
func waitClusterSettled(t *testing.T, l *lab.Lab, cp string, nodes ...string) {
	t.Helper()
	for _, n := range nodes {
		kubectlOn(t, l, cp, "wait --for=condition=Ready node/"+n+" --timeout=3m")
	}
	kubectlOn(t, l, cp, "-n kube-system rollout status deployment/coredns --timeout=3m")
	nodesReady(t, l, cp, nodes...)
}

// waitForLong waits up to limit for ok, polling every second: for what a
// cluster does on its own time (a static pod stopping, a lease renewed).
func waitForLong(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !ok(); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
	}
}
