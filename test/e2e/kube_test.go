package e2e

// The kube phase on lab hosts, offline, with the lab's own images: one
// cluster brought up once and then put through reruns, drift, a node
// added and a node reset, in order, so the suite pays for one bring-up.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kprep/kprep/test/lab/lab"
)

// kubeInventory writes the lab's inventory for a cluster of the named
// hosts (roles by name: cps are control planes, the rest workers), edited
// further by edit.
func kubeInventory(t *testing.T, l *lab.Lab, hosts, cps []string, edit func(doc map[string]any)) string {
	t.Helper()
	return editInventory(t, l, func(doc map[string]any) {
		var keep []any
		for _, h := range doc["hosts"].([]any) {
			h := h.(map[string]any)
			name := fmt.Sprint(h["name"])
			if !contains(hosts, name) {
				continue
			}
			h["roles"] = []any{"worker"}
			if contains(cps, name) {
				h["roles"] = []any{"control-plane"}
			}
			keep = append(keep, h)
		}
		doc["hosts"] = keep
		docker, _ := doc["docker"].(map[string]any)
		if docker != nil {
			docker["centos7Vault"] = map[string]any{"url": l.MirrorURL() + "/centos-vault"}
		}
		if edit != nil {
			edit(doc)
		}
	})
}

// kubectlOn runs kubectl as the cluster admin on a control plane.
func kubectlOn(t *testing.T, l *lab.Lab, cp string, args string) string {
	t.Helper()
	return hostSh(t, l, cp, "kubectl --kubeconfig /etc/kubernetes/admin.conf "+args)
}

// steps lists the steps of the report that did something, "host step".
func (r kprepReport) changed() []string {
	var out []string
	for _, h := range r.Hosts {
		for _, s := range h.Steps {
			if s.Status != "unchanged" {
				out = append(out, h.Name+" "+s.Name+" "+s.Status)
			}
		}
	}
	sort.Strings(out)
	return out
}

// requireAllUnchanged checks a rerun: every step of every host unchanged,
// no command run.
func (r kprepReport) requireAllUnchanged(t *testing.T) {
	t.Helper()
	for _, h := range r.Hosts {
		if h.Error != "" {
			t.Errorf("%s: %s", h.Name, h.Error)
		}
		for _, s := range h.Steps {
			if s.Status != "unchanged" || len(s.Commands) > 0 {
				t.Errorf("%s %s: %s, changes %+v, commands %q", h.Name, s.Name, s.Status, s.Changes, s.Commands)
			}
		}
	}
}

// nodesReady checks every named node is Ready with its lab address.
func nodesReady(t *testing.T, l *lab.Lab, cp string, names ...string) {
	t.Helper()
	out := kubectlOn(t, l, cp, `get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.addresses[?(@.type=="InternalIP")].address} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}'`)
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			got[f[0]] = f[1] + " " + f[2]
		}
	}
	for _, name := range names {
		h, err := l.Host(name)
		if err != nil {
			t.Fatal(err)
		}
		if want := h.Address + " True"; got[name] != want {
			t.Errorf("node %s: %q, want %q (all nodes:\n%s)", name, got[name], want, out)
		}
	}
}

// TestKubeCluster brings up one control plane and two workers of other
// personalities, then reruns, drifts, adds a fourth host and resets one.
func TestKubeCluster(t *testing.T) {
	// openEuler takes Docker CE from the centos/8 tree, which stops before
	// the version the lab pins (as Docker's real one does): no openEuler
	// here; the runtime suite covers it with an older pin.
	l := bootLab(t, "centos7", "rocky9", "ubuntu22", "rocky9")
	cp := "lab1"
	withNodeSettings := func(doc map[string]any) {
		for _, h := range doc["hosts"].([]any) {
			h := h.(map[string]any)
			switch h["name"] {
			case "lab2":
				h["labels"] = map[string]any{"tier": "web"}
			case "lab3":
				h["taints"] = []any{map[string]any{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}}
			}
		}
		doc["kubernetes"].(map[string]any)["namespaces"] = []any{"apps"}
		// firewalld stays up on the EL hosts (CentOS 7's 0.6 on iptables,
		// Rocky 9's 1.x on nftables) with only what Kubernetes needs let in:
		// the harder of the two firewall settings for pod traffic.
		hostprep, _ := doc["hostprep"].(map[string]any)
		if hostprep == nil {
			hostprep = map[string]any{}
			doc["hostprep"] = hostprep
		}
		hostprep["firewall"] = "open-ports"
	}
	inv := kubeInventory(t, l, []string{"lab1", "lab2", "lab3"}, []string{cp}, withNodeSettings)

	start := time.Now()
	rep := runKprep(t, l, 0, "apply", "-i", inv)
	t.Logf("fresh cluster (hostprep, runtime, kube) of 3 hosts: %s", time.Since(start).Round(time.Second))
	rep.requireNoFailures(t)
	nodesReady(t, l, cp, "lab1", "lab2", "lab3")
	if phases := kubectlOn(t, l, cp, "-n kube-system get pods -l k8s-app=kube-dns -o jsonpath='{.items[*].status.phase}'"); len(strings.Fields(phases)) == 0 || strings.ReplaceAll(strings.ReplaceAll(phases, "Running", ""), " ", "") != "" {
		t.Errorf("CoreDNS pods: %q, want all Running", phases)
	}
	checkPodNetwork(t, l, cp, "lab2", "lab3")

	t.Run("rerun changes nothing", func(t *testing.T) {
		start := time.Now()
		runKprep(t, l, 0, "apply", "-i", inv).requireAllUnchanged(t)
		t.Logf("rerun of 3 hosts: %s", time.Since(start).Round(time.Millisecond))
		runKprep(t, l, 0, "plan", "-i", inv)
	})

	t.Run("labels, taints and namespaces", func(t *testing.T) {
		if got := kubectlOn(t, l, cp, "get node lab2 -o jsonpath={.metadata.labels.tier}"); got != "web" {
			t.Errorf("lab2's tier label: %q", got)
		}
		if got := kubectlOn(t, l, cp, "get node lab3 -o jsonpath='{.spec.taints[?(@.key==\"dedicated\")].value}'"); got != "batch" {
			t.Errorf("lab3's dedicated taint: %q", got)
		}
		if got := kubectlOn(t, l, cp, "get node lab1 -o jsonpath='{.spec.taints[*].key}'"); !strings.Contains(got, "node-role.kubernetes.io/control-plane") {
			t.Errorf("lab1's taints: %q, want the control-plane taint", got)
		}
		kubectlOn(t, l, cp, "get namespace apps")
		// Removed by hand, one at a time: plan names it, apply puts it back.
		for _, drift := range []struct{ what, cmd, host, step string }{
			{"label", "label node lab2 tier-", "lab2", "kube/node"},
			{"taint", "taint node lab3 dedicated:NoSchedule-", "lab3", "kube/node"},
			{"control-plane taint", "taint node lab1 node-role.kubernetes.io/control-plane:NoSchedule-", "lab1", "kube/node"},
			{"namespace", "delete namespace apps", "lab1", "kube/namespaces"},
		} {
			kubectlOn(t, l, cp, drift.cmd)
			plan := runKprep(t, l, 2, "plan", "-i", inv)
			if s := plan.step(t, drift.host, drift.step); s.Status != "pending" {
				t.Errorf("%s removed: plan %s on %s: %+v", drift.what, drift.step, drift.host, s)
			}
			rep := runKprep(t, l, 0, "apply", "-i", inv)
			if got := rep.changed(); len(got) != 1 || got[0] != drift.host+" "+drift.step+" changed" {
				t.Errorf("%s removed: apply changed %q, want only %s on %s", drift.what, got, drift.step, drift.host)
			}
		}
		runKprep(t, l, 0, "plan", "-i", inv)
	})

	t.Run("kubelet stopped and disabled", func(t *testing.T) {
		hostSh(t, l, "lab3", "systemctl disable --now kubelet.service")
		plan := runKprep(t, l, 2, "plan", "-i", inv)
		if s := plan.step(t, "lab3", "kube/join-worker"); s.Status != "pending" || len(s.Changes) != 1 || !strings.Contains(s.Changes[0].Summary, "the kubelet is inactive (at boot: disabled)") {
			t.Errorf("plan: %+v", s)
		}
		rep := runKprep(t, l, 0, "apply", "-i", inv)
		if s := rep.step(t, "lab3", "kube/join-worker"); s.Status != "changed" {
			t.Errorf("apply: %+v", s)
		}
		requireOnlyOn(t, rep, "lab3")
		runKprep(t, l, 0, "plan", "-i", inv)
	})

	t.Run("node deleted from the API", func(t *testing.T) {
		kubectlOn(t, l, cp, "delete node lab2")
		plan := runKprep(t, l, 2, "plan", "-i", inv)
		if s := plan.step(t, "lab2", "kube/join-worker"); !strings.Contains(fmt.Sprint(s.Changes), "the API server has no Node lab2") {
			t.Errorf("plan: %+v", s)
		}
		rep := runKprep(t, l, 0, "apply", "-i", inv)
		requireOnlyOn(t, rep, "lab2")
		nodesReady(t, l, cp, "lab2")
		runKprep(t, l, 0, "plan", "-i", inv)
	})

	t.Run("join cut off", func(t *testing.T) {
		// lab3 leaves the cluster, then a join of its own is killed as soon
		// as kubeadm has written the kubelet's bootstrap kubeconfig: the
		// kubelet never got its own.
		kubectlOn(t, l, cp, "delete node lab3")
		hostSh(t, l, "lab3", "kubeadm reset -f >/dev/null 2>&1")
		// A worker's endpoint line points at its API server proxy, which
		// kubeadm reset stopped: point it at the control plane, as
		// kube/endpoint does for a host that has not joined.
		cpHost, err := l.Host(cp)
		if err != nil {
			t.Fatal(err)
		}
		hostSh(t, l, "lab3", `sed -i 's/^127\.0\.0\.1 \(kube-apiserver\.kprep\.internal \)/`+cpHost.Address+` \1/' /etc/hosts`)
		join := kubectlOn(t, l, cp, "version >/dev/null && kubeadm token create --ttl 10m --print-join-command --kubeconfig /etc/kubernetes/admin.conf")
		hostSh(t, l, "lab3", "("+join+" >/tmp/cut-join.log 2>&1 &) ; i=0; until [ -e /etc/kubernetes/bootstrap-kubelet.conf ]; do i=$((i+1)); [ $i -gt 3000 ] && exit 1; sleep 0.1; done; pkill -9 -x kubeadm; systemctl stop kubelet; rm -f /etc/kubernetes/kubelet.conf")
		kubectlOn(t, l, cp, "delete node lab3 --ignore-not-found")
		// The test's own token goes too: the fourth host's subtest checks
		// that kprep leaves none.
		fields := strings.Fields(join)
		i := slices.Index(fields, "--token")
		if i < 0 || i+1 >= len(fields) {
			t.Fatalf("no --token in %q", join)
		}
		tokenID, _, _ := strings.Cut(fields[i+1], ".")
		kubectlOn(t, l, cp, "version >/dev/null && kubeadm token delete "+tokenID+" --kubeconfig /etc/kubernetes/admin.conf")
		plan := runKprep(t, l, 2, "plan", "-i", inv)
		if s := plan.step(t, "lab3", "kube/join-worker"); !strings.Contains(fmt.Sprint(s.Changes), "an earlier kubeadm join was cut off") {
			t.Errorf("plan: %+v", s)
		}
		rep := runKprep(t, l, 0, "apply", "-i", inv)
		requireOnlyOn(t, rep, "lab3")
		nodesReady(t, l, cp, "lab3")
		runKprep(t, l, 0, "plan", "-i", inv)
	})

	t.Run("a fourth host joins alone", func(t *testing.T) {
		inv4 := kubeInventory(t, l, []string{"lab1", "lab2", "lab3", "lab4"}, []string{cp}, withNodeSettings)
		rep := runKprep(t, l, 0, "apply", "-i", inv4)
		requireOnlyOn(t, rep, "lab4")
		// The token the join used was made on the control plane.
		if s := rep.step(t, "lab4", "kube/join-worker"); !containsPrefix(s.Commands, "lab1: kubeadm token create ***") {
			t.Errorf("lab4's join ran %q, want a token made on lab1 (masked)", s.Commands)
		}
		nodesReady(t, l, cp, "lab1", "lab2", "lab3", "lab4")
		runKprep(t, l, 0, "apply", "-i", inv4).requireAllUnchanged(t)
		if tokens := kubectlOn(t, l, cp, "-n kube-system get secrets --field-selector type=bootstrap.kubernetes.io/token -o name"); tokens != "" {
			t.Errorf("join tokens left after the run: %s", tokens)
		}
	})
}

// requireOnlyOn checks that only host's steps did anything.
func requireOnlyOn(t *testing.T, rep kprepReport, host string) {
	t.Helper()
	for _, c := range rep.changed() {
		if !strings.HasPrefix(c, host+" ") {
			t.Errorf("a step changed on another host than %s: %s", host, c)
		}
	}
}

// checkPodNetwork runs a pod on each of two workers and checks one
// reaches the other across nodes and through a Service's ClusterIP, and
// that the cluster DNS resolves kubernetes.default and the Service.
func checkPodNetwork(t *testing.T, l *lab.Lab, cp, a, b string) {
	t.Helper()
	checkPodNetworkWithin(t, l, cp, a, b, "3m")
}

// checkPodNetworkWithin is checkPodNetwork with the pods given up to wait
// (a kubectl duration) to start: minutes each on an emulated host.
func checkPodNetworkWithin(t *testing.T, l *lab.Lab, cp, a, b, wait string) {
	t.Helper()
	image := l.RegistryAddr() + "/lab/hello:1" // busybox: sh, httpd, wget, nslookup
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  nodeName: %[1]s
  containers: [{name: web, image: %[3]s, command: [sh, -c, "echo hello-from-%[1]s > /tmp/index.html && httpd -f -p 8080 -h /tmp"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: %[2]s
  containers: [{name: client, image: %[3]s, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`, a, b, image)
	hostShInput(t, l, cp, []byte(manifest), "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -")
	kubectlOn(t, l, cp, "wait --for=condition=Ready pod/web pod/client --timeout="+wait)
	podIP := kubectlOn(t, l, cp, "get pod web -o jsonpath={.status.podIP}")
	svcIP := kubectlOn(t, l, cp, "get service web -o jsonpath={.spec.clusterIP}")
	for _, c := range []struct{ what, url string }{{"pod to pod across nodes", "http://" + podIP + ":8080/"}, {"Service ClusterIP", "http://" + svcIP + "/"}} {
		// No -T: Debian bookworm's static busybox 1.35 wget dies with
		// SIGSEGV when given a timeout (exit 139, reproduced outside any
		// pod); kubectl's request timeout bounds the exec instead.
		if got := kubectlOn(t, l, cp, "--request-timeout=30s exec client -- wget -qO- "+c.url); got != "hello-from-"+a {
			t.Errorf("%s (%s): %q", c.what, c.url, got)
		}
	}
	// Names through the cluster DNS with nslookup (busybox's own resolver;
	// a static binary's wget resolves through glibc's NSS, which it
	// cannot load).
	for name, want := range map[string]string{"kubernetes.default.svc.cluster.local": "10.96.0.1", "web.default.svc.cluster.local": svcIP} {
		if got := kubectlOn(t, l, cp, "exec client -- nslookup "+name); !strings.Contains(got, want) {
			t.Errorf("%s does not resolve to %s in a pod:\n%s", name, want, got)
		}
	}
}
