package kube

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/steptest"
)

// threeCPs is cluster() with a third control plane: cp1, cp2, w1, cp3.
func threeCPs() *inventory.Cluster {
	c := cluster()
	c.Hosts = append(c.Hosts, inventory.Host{Name: "cp3", Address: "192.168.77.14", Roles: []string{inventory.RoleControlPlane}})
	return c
}

func TestResetStepsOrderWorkersFirstThenControlPlanesOneByOne(t *testing.T) {
	steps := ResetSteps(ResetOptions{})
	if err := provision.CheckSteps(steps); err != nil {
		t.Fatal(err)
	}
	if steps[0].Name() != "reset/worker" || steps[1].Name() != "reset/control-plane" {
		t.Fatalf("order %s, %s", steps[0].Name(), steps[1].Name())
	}
	cp := steps[1].(interface {
		After() []string
		Serial() bool
	})
	if diff := cmp.Diff([]string{"reset/worker"}, cp.After()); diff != "" || !cp.Serial() {
		t.Errorf("control planes: after %v, serial %v", cp.After(), cp.Serial())
	}
	c := threeCPs()
	for i, want := range []string{"reset/control-plane", "reset/control-plane", "reset/worker", "reset/control-plane"} {
		var got []string
		for _, s := range steps {
			if s.(provision.HostFilter).AppliesTo(&c.Hosts[i], c) {
				got = append(got, s.Name())
			}
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %v, want %s", c.Hosts[i].Name, got, want)
		}
	}
}

// joinedWorkerState is the reset probe's output on a worker of the lab
// cluster, recorded as the probe prints it.
const joinedWorkerState = `node_rc=0
node=192.168.77.13 |True|KubeletReady
kubelet_active=active
etc_kubernetes=kprep kubelet.conf pki manifests/kprep-apiserver-proxy.yaml
kubelet_state=config.yaml kubeadm-flags.env pki plugins pods
etcd_data=
cni_config=10-flannel.conflist
cni_state=/var/lib/cni /run/flannel
chains=iptables:filter:FLANNEL-FWD iptables:filter:KUBE-FIREWALL iptables:nat:CNI-HOSTPORT-DNAT iptables:nat:FLANNEL-POSTRTG iptables:nat:KUBE-SERVICES iptables:nat:KUBE-NODEPORTS iptables:nat:KUBE-SVC-X
nft_tables=
links=flannel.1 cni0
has_kubeadm=0
`

func TestResetDiff(t *testing.T) {
	c := cluster()
	hosts := steptest.FileRecord("etchosts", "127.0.0.1 localhost\n127.0.0.1 kube-apiserver.kprep.internal "+endpointMarker+"\n")
	changes := mustDiff(t, ResetWorkerStep{}, inputFor(c, 2, joinedWorkerState+hosts))
	want := []string{
		"the cluster has the Node w1",
		"the kubelet is active",
		"/etc/kubernetes holds kprep kubelet.conf pki manifests/kprep-apiserver-proxy.yaml",
		"/var/lib/kubelet holds config.yaml kubeadm-flags.env pki plugins pods",
		"/etc/cni/net.d holds 10-flannel.conflist",
		"the CNI's state is left in /var/lib/cni /run/flannel",
		"iptables chains are left: iptables:filter:FLANNEL-FWD iptables:filter:KUBE-FIREWALL iptables:nat:CNI-HOSTPORT-DNAT iptables:nat:FLANNEL-POSTRTG iptables:nat:KUBE-SERVICES iptables:nat:KUBE-NODEPORTS and 1 more",
		"links are left: flannel.1 cni0",
		"/etc/hosts has kprep's line for the API endpoint",
	}
	if diff := cmp.Diff(want, steptest.Summaries(changes)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// A fresh host, or one reset: nothing to do.
	clean := "node_rc=none\nkubelet_active=inactive\netc_kubernetes=\nkubelet_state=\netcd_data=\ncni_config=\ncni_state=\nchains=\nnft_tables=\nlinks=\nhas_kubeadm=0\n" +
		steptest.FileRecord("etchosts", "127.0.0.1 localhost\n")
	if changes := mustDiff(t, ResetControlPlaneStep{}, inputFor(c, 0, clean)); len(changes) != 0 {
		t.Errorf("clean host: %v", steptest.Summaries(changes))
	}
}

func TestRemovalKeepsQuorum(t *testing.T) {
	c := threeCPs()
	members := []etcdMember{
		{ID: "1", Name: "cp1", PeerURLs: []string{"https://192.168.77.11:2380"}},
		{ID: "2", Name: "cp2", PeerURLs: []string{"https://192.168.77.12:2380"}},
		{ID: "3", Name: "", PeerURLs: []string{"https://192.168.77.14:2380"}}, // cp3, named by its address
	}
	healthy := func(ids ...etcdID) map[etcdID]bool {
		m := map[etcdID]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		members []etcdMember
		healthy map[etcdID]bool
		host    int
		err     string
	}{
		{"three healthy, one goes", members, healthy("1", "2", "3"), 1, ""},
		{"a member found by its address", members, healthy("1", "2", "3"), 3, ""},
		{"the one that is down goes", members, healthy("1", "2"), 3, ""},
		{"a healthy one goes while another is down", members, healthy("1", "2"), 1,
			"removing cp2 leaves etcd 2 members, of which 1 are healthy (192.168.77.14 down), and 2 members need 2"},
		{"two left, one goes", members[:2], healthy("1", "2"), 1, ""},
		{"the last member", members[:1], healthy("1"), 0, "cp1 is etcd's last member"},
		{"not a member (already removed)", members[:2], healthy("1", "2"), 3, ""},
		{"not a member, and the rest has no majority", members[:2], healthy("1"), 3, "of which 1 are healthy (cp2 down)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := removalKeepsQuorum(tc.members, tc.healthy, &c.Hosts[tc.host])
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

// fakeCluster gives a reset step a host and its peers.
type fakeCluster struct {
	self  *steptest.FakeHost
	peers map[string]*steptest.FakeHost
}

func (f fakeCluster) target(h *inventory.Host) provision.Target {
	return provision.Target{Executor: f.self, Host: h, Peer: func(name string) (provision.Executor, error) {
		p, ok := f.peers[name]
		if !ok {
			return nil, fmt.Errorf("no peer %s", name)
		}
		return p, nil
	}}
}

// memberList is etcd's v3 gateway answer for cp1..cp3 (IDs as strings, as
// the gateway writes 64-bit numbers).
const memberList = `{"header":{"cluster_id":"1","member_id":"2","raft_term":"3"},"members":[` +
	`{"ID":"10501334649042878790","name":"cp1","peerURLs":["https://192.168.77.11:2380"],"clientURLs":["https://192.168.77.11:2379"]},` +
	`{"ID":"2","name":"cp2","peerURLs":["https://192.168.77.12:2380"],"clientURLs":["https://192.168.77.12:2379"]},` +
	`{"ID":"3","name":"cp3","peerURLs":["https://192.168.77.14:2380"],"clientURLs":["https://192.168.77.14:2379"]}]}`

func healthyPeer() *steptest.FakeHost {
	return &steptest.FakeHost{Replies: map[string]string{
		"curl -sS --max-time 5 --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key -X POST":  memberList,
		"curl -sS --max-time 5 --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key https://": `{"health":"true","reason":""}`,
	}}
}

func TestResetWorkerApply(t *testing.T) {
	c := cluster()
	hosts := "127.0.0.1 localhost\n127.0.0.1 kube-apiserver.kprep.internal " + endpointMarker + "\n"
	in := inputFor(c, 2, joinedWorkerState+steptest.FileRecord("etchosts", hosts))
	f := fakeCluster{self: &steptest.FakeHost{}, peers: map[string]*steptest.FakeHost{"cp1": {}, "cp2": {}}}
	s := ResetWorkerStep{ResetOptions{Resetting: []string{"w1"}}}
	if err := s.Apply(context.Background(), f.target(in.Host), in, nil); err != nil {
		t.Fatal(err)
	}
	// Drained and deleted through cp1, the first control plane that stays.
	if ran := strings.Join(f.peers["cp1"].Ran, "\n"); !strings.Contains(ran, "drain w1 --ignore-daemonsets --delete-emptydir-data --force --timeout=5m0s") ||
		!strings.Contains(ran, "delete node w1 --ignore-not-found") {
		t.Errorf("cp1 ran:\n%s", ran)
	}
	if len(f.peers["cp2"].Ran) != 0 {
		t.Errorf("cp2 ran %q", f.peers["cp2"].Ran)
	}
	var order []string
	for _, line := range f.self.Ran {
		order = append(order, strings.Fields(line)[0])
	}
	if diff := cmp.Diff([]string{"kubeadm", "systemctl", "{", "for", "for", "awk", "find"}, order); diff != "" {
		t.Errorf("commands (-want +got):\n%s\n%s", diff, strings.Join(f.self.Ran, "\n"))
	}
	if got := string(f.self.Written["/etc/hosts"]); got != "127.0.0.1 localhost\n" {
		t.Errorf("/etc/hosts: %q", got)
	}

	// No control plane that stays answers: refused, nothing done ...
	down := map[string]string{"kubectl": "The connection to the server was refused"}
	f = fakeCluster{self: &steptest.FakeHost{}, peers: map[string]*steptest.FakeHost{"cp1": {Fail: down}, "cp2": {Fail: down}}}
	err := s.Apply(context.Background(), f.target(in.Host), in, nil)
	if err == nil || !strings.Contains(err.Error(), "no control plane that stays answers") || len(f.self.Ran) != 0 {
		t.Fatalf("err = %v, ran %q", err, f.self.Ran)
	}
	// ... unless forced.
	s.Options.Force = true
	if err := s.Apply(context.Background(), f.target(in.Host), in, nil); err != nil || len(f.self.Ran) == 0 {
		t.Fatalf("forced: err = %v, ran %q", err, f.self.Ran)
	}
}

func TestResetControlPlaneApply(t *testing.T) {
	c := threeCPs()
	state := "node_rc=none\nkubelet_active=active\netc_kubernetes=admin.conf\nhas_kubeadm=0\n" + steptest.FileRecord("etchosts", "127.0.0.1 localhost\n")
	in := inputFor(c, 1, state) // cp2
	cp1 := healthyPeer()
	f := fakeCluster{self: &steptest.FakeHost{}, peers: map[string]*steptest.FakeHost{"cp1": cp1, "cp3": healthyPeer()}}
	s := ResetControlPlaneStep{ResetOptions{Resetting: []string{"cp2"}}}
	if err := s.Apply(context.Background(), f.target(in.Host), in, nil); err != nil {
		t.Fatal(err)
	}
	ran := strings.Join(cp1.Ran, "\n")
	for _, want := range []string{"/v3/cluster/member/list", "https://192.168.77.12:2379/health", "drain cp2", "delete node cp2",
		`/v3/cluster/member/remove -d '{"ID":"2"}'`} {
		if !strings.Contains(ran, want) {
			t.Errorf("cp1 did not run %q:\n%s", want, ran)
		}
	}
	if !strings.HasPrefix(f.self.Ran[0], "kubeadm reset -f") {
		t.Errorf("cp2 ran %q", f.self.Ran)
	}

	// cp3 is down: removing the healthy cp2 would leave cp1 alone of two.
	cp1 = healthyPeer()
	cp1.Fail = map[string]string{"curl -sS --max-time 5 --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key https://192.168.77.14": "timed out"}
	f = fakeCluster{self: &steptest.FakeHost{}, peers: map[string]*steptest.FakeHost{"cp1": cp1}}
	err := s.Apply(context.Background(), f.target(in.Host), in, nil)
	if err == nil || !strings.Contains(err.Error(), "etcd would lose its quorum") || len(f.self.Ran) != 0 {
		t.Fatalf("err = %v, ran %q", err, f.self.Ran)
	}
	s.Options.Force = true
	if err := s.Apply(context.Background(), f.target(in.Host), in, nil); err != nil || len(f.self.Ran) == 0 {
		t.Fatalf("forced: err = %v", err)
	}

	// The last control plane.
	one := cluster()
	one.Hosts = one.Hosts[:1]
	in = inputFor(one, 0, state)
	s = ResetControlPlaneStep{ResetOptions{Resetting: []string{"cp1"}}}
	if err := s.Apply(context.Background(), (&steptest.FakeHost{}).Target(in.Host), in, nil); err == nil || !strings.Contains(err.Error(), "last control plane") {
		t.Fatalf("err = %v", err)
	}
}

func TestWithoutEndpointLine(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb\n": "a\nb\n",
		"a\n127.0.0.1 x " + endpointMarker + "\nb\n": "a\nb\n",
		"127.0.0.1 x " + endpointMarker + "\n":       "",
	} {
		if got := withoutEndpointLine(in); got != want {
			t.Errorf("%q: %q", in, got)
		}
	}
}

// TestRemoveChainsDeletesOnlyKubeAndCNIChains runs the removal script
// with a stand-in iptables that prints recorded rules and logs what it is
// asked: jumps into the chains go first, then the chains; Docker's and
// firewalld's rules stay.
func TestRemoveChainsDeletesOnlyKubeAndCNIChains(t *testing.T) {
	dir := t.TempDir()
	rules := `-P PREROUTING ACCEPT
-N DOCKER
-N KUBE-SERVICES
-N CNI-HOSTPORT-DNAT
-N FLANNEL-POSTRTG
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A POSTROUTING -s 10.244.1.0/24 -m comment --comment "name: \"cbr0\" id: \"ab\"" -j CNI-1234
-A KUBE-SERVICES -d 10.96.0.1/32 -j KUBE-SVC-X
`
	script := fmt.Sprintf(`#!/bin/sh
case "$*" in
  *" -S") [ "$3" = nat ] && printf '%%s' %s ;;
  *) printf '%%s\n' "$*" >> %s/log ;;
esac
`, shell.Quote(rules), dir)
	if err := os.WriteFile(filepath.Join(dir, "iptables"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", removeChains())
	cmd.Env = append(os.Environ(), "PATH="+dir+":/usr/bin:/bin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	want := `-w -t nat -D PREROUTING -m comment --comment kubernetes service portals -j KUBE-SERVICES
-w -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-w -t nat -D POSTROUTING -m comment --comment flanneld masq -j FLANNEL-POSTRTG
-w -t nat -D POSTROUTING -s 10.244.1.0/24 -m comment --comment name: "cbr0" id: "ab" -j CNI-1234
-w -t nat -F KUBE-SERVICES
-w -t nat -F CNI-HOSTPORT-DNAT
-w -t nat -F FLANNEL-POSTRTG
-w -t nat -X KUBE-SERVICES
-w -t nat -X CNI-HOSTPORT-DNAT
-w -t nat -X FLANNEL-POSTRTG
`
	if diff := cmp.Diff(want, string(log)); diff != "" {
		t.Errorf("iptables calls (-want +got):\n%s", diff)
	}
}

// TestResetProbeRunsAndParses runs the reset probe with this machine's
// sh: valid POSIX sh that only reads.
func TestResetProbeRunsAndParses(t *testing.T) {
	c := labCluster(t)
	for _, s := range ResetSteps(ResetOptions{}) {
		out, err := exec.Command("sh", "-c", s.Probe(&c.Hosts[0], c)).CombinedOutput()
		if err != nil {
			t.Fatalf("%s probe: %v\n%s", s.Name(), err, out)
		}
		st, err := shell.Parse(string(out))
		if err != nil {
			t.Fatalf("%s probe output: %v\n%s", s.Name(), err, out)
		}
		for _, key := range []string{"kubelet_active", "chains", "links", "has_kubeadm", "node_rc"} {
			if _, ok := st.Values[key]; !ok {
				t.Errorf("%s probe printed no %s:\n%s", s.Name(), key, out)
			}
		}
	}
}
