package kube

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/steptest"
)

// proxyState is the proxy step's probe output on w1 (host 2 of cluster()).
type proxyState struct {
	config, manifest string // "" when missing
	running          []string
	proxyRC          string
	hosts            string
	joined           bool
}

func (s proxyState) String() string {
	var b strings.Builder
	for _, f := range []struct{ label, content string }{{"proxycfg", s.config}, {"proxymanifest", s.manifest}, {"etchosts", s.hosts}} {
		if f.content == "" {
			b.WriteString("file " + f.label + " -\n")
		} else {
			b.WriteString(steptest.FileRecord(f.label, f.content))
		}
	}
	b.WriteString("proxy_running=" + strings.Join(s.running, " ") + "\n")
	if s.joined {
		b.WriteString("has_kubelet_conf=0\n")
	} else {
		b.WriteString("has_kubelet_conf=1\n")
	}
	b.WriteString("proxy_rc=" + s.proxyRC + "\n")
	return b.String()
}

// convergedProxy is w1 as the step leaves it in cluster c.
func convergedProxy(t *testing.T, c *inventory.Cluster) proxyState {
	t.Helper()
	config, err := proxyConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := proxyManifest(c, config)
	if err != nil {
		t.Fatal(err)
	}
	return proxyState{config: string(config), manifest: string(manifest), running: []string{sha256Hex(config)}, proxyRC: "0",
		hosts: "127.0.0.1 localhost\n127.0.0.1 " + c.Kubernetes.LocalEndpoint.Name + " " + endpointMarker + "\n", joined: true}
}

func proxyCluster() *inventory.Cluster {
	c := cluster()
	c.Kubernetes.LocalEndpoint.ProxyImage = "docker.io/library/haproxy:3.2.3-alpine"
	return c
}

func TestProxyDiff(t *testing.T) {
	c := proxyCluster()
	ok := convergedProxy(t, c)
	oldConfig := ok.running[0]
	withCP3 := proxyCluster()
	withCP3.Hosts = append(withCP3.Hosts, inventory.Host{Name: "cp3", Address: "192.168.77.14", Roles: []string{inventory.RoleControlPlane}})
	for _, tc := range []struct {
		name  string
		c     *inventory.Cluster
		state func(s *proxyState)
		want  []string
	}{
		{"converged", c, func(*proxyState) {}, nil},
		{"fresh worker", c, func(s *proxyState) {
			*s = proxyState{hosts: "127.0.0.1 localhost\n", proxyRC: "none"}
		}, []string{"/etc/kubernetes/kprep/haproxy.cfg is missing", "/etc/kubernetes/manifests/kprep-apiserver-proxy.yaml is missing",
			"/etc/hosts does not resolve kube-apiserver.kprep.internal (want 127.0.0.1)"}},
		{"joined through the first control plane", c, func(s *proxyState) {
			*s = proxyState{hosts: "192.168.77.11 kube-apiserver.kprep.internal " + endpointMarker + "\n", proxyRC: "none", joined: true}
		}, []string{"/etc/kubernetes/kprep/haproxy.cfg is missing", "/etc/kubernetes/manifests/kprep-apiserver-proxy.yaml is missing",
			"/etc/hosts resolves kube-apiserver.kprep.internal to 192.168.77.11, want 127.0.0.1"}},
		{"a control plane added", withCP3, func(*proxyState) {}, []string{
			"/etc/kubernetes/kprep/haproxy.cfg differs from what it should hold",
			"/etc/kubernetes/manifests/kprep-apiserver-proxy.yaml differs from what it should hold"}},
		{"the pod not started yet", c, func(s *proxyState) { s.running = nil; s.proxyRC = "1" }, []string{"the proxy is not running"}},
		{"the old pod still running", c, func(s *proxyState) { s.running = []string{"0123", oldConfig} }, []string{"the proxy runs with an older configuration"}},
		{"no API server answers", c, func(s *proxyState) { s.proxyRC = "1" }, []string{"no API server answers through the proxy on https://127.0.0.1:6443"}},
		{"manifest edited by hand", c, func(s *proxyState) { s.manifest = strings.Replace(s.manifest, "haproxy:3.2.3", "haproxy:2.8", 1) }, []string{
			"/etc/kubernetes/manifests/kprep-apiserver-proxy.yaml differs from what it should hold"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.state(&s)
			changes := mustDiff(t, APIServerProxyStep{}, inputFor(tc.c, 2, s.String()))
			if diff := cmp.Diff(tc.want, steptest.Summaries(changes)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// A line of the user's for the name is theirs to remove.
	s := ok
	s.hosts = "10.1.1.1 kube-apiserver.kprep.internal\n"
	if _, err := (APIServerProxyStep{}).Diff(inputFor(c, 2, s.String())); err == nil || !strings.Contains(err.Error(), "maps kube-apiserver.kprep.internal to 10.1.1.1") {
		t.Errorf("err = %v", err)
	}
}

func TestProxyApplyWritesWaitsThenMovesTheLine(t *testing.T) {
	c := proxyCluster()
	s := proxyState{hosts: "127.0.0.1 localhost\n192.168.77.11 kube-apiserver.kprep.internal " + endpointMarker + "\n", proxyRC: "none", joined: true}
	in := inputFor(c, 2, s.String())
	changes := mustDiff(t, APIServerProxyStep{}, in)
	host := &steptest.FakeHost{}
	apply(t, APIServerProxyStep{}, in, changes, host)
	want := convergedProxy(t, c)
	if got := string(host.Written[proxyConfigPath]); got != want.config {
		t.Errorf("haproxy.cfg:\n%s", got)
	}
	if got := string(host.Written[proxyManifestPath]); got != want.manifest {
		t.Errorf("manifest:\n%s", got)
	}
	if got := string(host.Written["/etc/hosts"]); got != want.hosts {
		t.Errorf("/etc/hosts:\n%s", got)
	}
	// It waited for the new configuration's haproxy and an answer through it.
	if len(host.Ran) != 1 || !strings.Contains(host.Ran[0], want.running[0]) || !strings.Contains(host.Ran[0], "--server=https://127.0.0.1:6443") {
		t.Errorf("ran %q", host.Ran)
	}
	// A proxy that never answers leaves the line alone.
	host = &steptest.FakeHost{Fail: map[string]string{"i=0; until": ""}}
	if err := (APIServerProxyStep{}).Apply(context.Background(), host.Target(in.Host), in, changes); err == nil {
		t.Fatal("apply did not fail")
	}
	if _, wrote := host.Written["/etc/hosts"]; wrote {
		t.Error("/etc/hosts moved to a proxy that does not answer")
	}
	// Before the join, kubeadm join wants the manifests folder empty.
	s.joined = false
	in = inputFor(c, 2, s.String())
	host = &steptest.FakeHost{}
	if err := (APIServerProxyStep{}).Apply(context.Background(), host.Target(in.Host), in, changes); err == nil || !strings.Contains(err.Error(), "has not joined") {
		t.Fatalf("err = %v", err)
	}
	if len(host.Written) != 0 {
		t.Errorf("wrote %v before the join", host.Written)
	}
}

func TestProxyConfigFollowsTheControlPlanes(t *testing.T) {
	c := proxyCluster()
	c.Kubernetes.LocalEndpoint.Port = 7443
	c.Hosts = append(c.Hosts, inventory.Host{Name: "cp6", Address: "fd00::6", Roles: []string{inventory.RoleControlPlane, inventory.RoleWorker}})
	config, err := proxyConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	var servers []string
	for _, line := range strings.Split(string(config), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "server ") {
			servers = append(servers, strings.TrimSpace(line))
		}
	}
	want := []string{"server cp1 192.168.77.11:7443 check verify none", "server cp2 192.168.77.12:7443 check verify none", "server cp6 [fd00::6]:7443 check verify none"}
	if diff := cmp.Diff(want, servers); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(config), "bind 127.0.0.1:7443\n") {
		t.Errorf("bind:\n%s", config)
	}
	if !strings.Contains(strings.SplitN(string(config), "\n", 2)[0], proxyConfigMark) {
		t.Errorf("the first line lacks %q, which tells the proxy's haproxy from others", proxyConfigMark)
	}
}

func TestProxyManifestIsAStaticPodOfTheConfig(t *testing.T) {
	c := proxyCluster()
	c.Kubernetes.LocalEndpoint.Port = 7443
	config, _ := proxyConfig(c)
	manifest, err := proxyManifest(c, config)
	if err != nil {
		t.Fatal(err)
	}
	var pod map[string]any
	if err := yaml.Unmarshal(manifest, &pod); err != nil {
		t.Fatal(err)
	}
	get := func(path ...any) any {
		var v any = pod
		for _, p := range path {
			switch k := p.(type) {
			case string:
				v = v.(map[string]any)[k]
			case int:
				v = v.([]any)[k]
			}
		}
		return v
	}
	for _, tc := range []struct {
		path []any
		want any
	}{
		{[]any{"kind"}, "Pod"},
		{[]any{"metadata", "namespace"}, "kube-system"},
		{[]any{"metadata", "annotations", "kprep.io/haproxy-cfg-sha256"}, sha256Hex(config)},
		{[]any{"spec", "hostNetwork"}, true},
		{[]any{"spec", "containers", 0, "image"}, "docker.io/library/haproxy:3.2.3-alpine"},
		{[]any{"spec", "containers", 0, "livenessProbe", "tcpSocket", "port"}, 7443},
		{[]any{"spec", "containers", 0, "volumeMounts", 0, "mountPath"}, proxyConfigInPod},
		{[]any{"spec", "volumes", 0, "hostPath", "path"}, proxyConfigPath},
	} {
		if got := get(tc.path...); got != tc.want {
			t.Errorf("%v = %v, want %v", tc.path, got, tc.want)
		}
	}
	// Another configuration is another manifest: the kubelet restarts the pod.
	c.Hosts = c.Hosts[:1]
	other, _ := proxyConfig(c)
	if m2, _ := proxyManifest(c, other); string(m2) == string(manifest) {
		t.Error("the manifest does not change with the configuration")
	}
}

func TestProxyRunsOnWorkersInLocalModeOnly(t *testing.T) {
	c := proxyCluster()
	for i, want := range []bool{false, false, true} {
		if got := (APIServerProxyStep{}).AppliesTo(&c.Hosts[i], c); got != want {
			t.Errorf("%s: %v", c.Hosts[i].Name, got)
		}
	}
	c.Kubernetes.ControlPlaneEndpoint = "lb.example.com:6443"
	if (APIServerProxyStep{}).AppliesTo(&c.Hosts[2], c) {
		t.Error("the proxy runs behind a load balancer")
	}
}

func TestProxyFileModes(t *testing.T) {
	c := proxyCluster()
	changes := mustDiff(t, APIServerProxyStep{}, inputFor(c, 2, proxyState{hosts: "", proxyRC: "none", joined: true}.String()))
	modes := map[string]fs.FileMode{}
	for _, ch := range changes {
		if ch.Data.Path != "" {
			modes[ch.Data.Path] = ch.Data.Mode
		}
	}
	// haproxy runs as its own user in the official image and reads the
	// configuration; the manifest is root's, like kubeadm's.
	if modes[proxyConfigPath] != 0o644 || modes[proxyManifestPath] != 0o600 {
		t.Errorf("modes %v", modes)
	}
}
