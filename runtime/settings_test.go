package runtime

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/facts"
)

func TestSandboxImageFollowsKubeadm(t *testing.T) {
	tests := []struct {
		version, repo, override, want string
	}{
		{"1.37.2", "", "", "registry.k8s.io/pause:3.10.2"}, // kubeadm v1.36.1 and v1.37.2's PauseVersion
		{"1.35.4", "", "", "registry.k8s.io/pause:3.10.1"},
		{"1.34.4", "registry.aliyuncs.com/google_containers", "", "registry.aliyuncs.com/google_containers/pause:3.10.1"},
		{"1.33.1", "", "", "registry.k8s.io/pause:3.10"},
		{"1.31.0", "mirror.example/k8s/", "", "mirror.example/k8s/pause:3.10"},
		{"1.29.3", "", "", "registry.k8s.io/pause:3.9"},
		{"1.24.0", "", "", "registry.k8s.io/pause:3.7"},
		{"1.34.4", "", "my.registry/pause:custom", "my.registry/pause:custom"},
	}
	for _, tt := range tests {
		c := labCluster()
		c.Kubernetes.Version, c.Kubernetes.ImageRepository, c.Kubernetes.SandboxImage = tt.version, tt.repo, tt.override
		if got := sandboxImage(c); got != tt.want {
			t.Errorf("sandboxImage(%s, %q, %q) = %s, want %s", tt.version, tt.repo, tt.override, got, tt.want)
		}
	}
}

func TestDockerYumTree(t *testing.T) {
	kylin := facts.Facts{OSID: "kylin", OSName: "Kylin Linux Advanced Server V10", Family: facts.FamilyRHEL, Major: 8}
	alma := facts.Facts{OSID: "almalinux", Family: facts.FamilyRHEL, Major: 8}
	tests := []struct {
		f       facts.Facts
		tree    string
		release int
	}{
		{centos7, "centos", 7}, {rocky9, "rhel", 9}, {alma, "rhel", 8}, {openEuler, "centos", 8}, {kylin, "centos", 8},
	}
	for _, tt := range tests {
		tree, release, err := dockerYumTree(tt.f)
		if err != nil || tree != tt.tree || release != tt.release {
			t.Errorf("%s: %s/%d %v, want %s/%d", tt.f.OSID, tree, release, err, tt.tree, tt.release)
		}
	}
	if _, _, err := dockerYumTree(facts.Facts{OSID: "centos", OSName: "CentOS release 6.10", Major: 6}); err == nil {
		t.Error("EL6 got a Docker CE tree")
	}
}

func TestNoProxyCoversTheCluster(t *testing.T) {
	c := labCluster()
	c.Kubernetes.ControlPlaneEndpoint = "k8s-api.corp.example:6443"
	c.Docker.Proxy.NoProxy = []string{".corp.example", "localhost"}
	want := []string{"localhost", "127.0.0.1", "192.168.77.11", "cp1", "192.168.77.12", "w1", "k8s-api.corp.example",
		"10.96.0.0/12", "10.244.0.0/16", ".svc", ".cluster.local", ".corp.example"}
	if diff := cmp.Diff(want, noProxy(c)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	c.Kubernetes.PodSubnet = "10.244.0.0/16,fd00:10:244::/56"
	if got := strings.Join(noProxy(c), ","); !strings.Contains(got, "10.244.0.0/16,fd00:10:244::/56") {
		t.Errorf("dual-stack pod ranges not both listed: %s", got)
	}
	if proxyEnv(labCluster()) != nil {
		t.Error("no proxy in the inventory, but an environment")
	}
}
