package hostprep

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
)

// labCluster is a three-host cluster with the inventory defaults.
func labCluster() *inventory.Cluster {
	yes := true
	return &inventory.Cluster{
		Hosts: []inventory.Host{
			{Name: "cp1", Address: "192.168.77.11", Roles: []string{"control-plane"}},
			{Name: "w1", Address: "192.168.77.12", Roles: []string{"worker"}},
			{Name: "w2", Address: "w2.example.com", Roles: []string{"worker"}},
		},
		Hostprep:   inventory.Hostprep{Firewall: "disable", SELinux: "permissive", Swap: "off", Hostname: &yes},
		Kubernetes: inventory.Kubernetes{CNI: "flannel"},
	}
}

var (
	centos7 = facts.Facts{OSID: "centos", OSName: "CentOS Linux 7 (Core)", Family: facts.FamilyRHEL, Major: 7}
	rocky9  = facts.Facts{OSID: "rocky", OSName: "Rocky Linux 9.4 (Blue Onyx)", Family: facts.FamilyRHEL, Major: 9}
	ubuntu  = facts.Facts{OSID: "ubuntu", OSName: "Ubuntu 22.04.4 LTS", Family: facts.FamilyDebian, Major: 22}
)

func input(c *inventory.Cluster, f facts.Facts, state string) provision.Input {
	return provision.Input{Cluster: c, Host: &c.Hosts[0], Facts: f, State: state}
}

// probeOf runs a step's real probe snippet with sh against a fake root:
// every absolute path in the snippet is not rewritten, so tests use it only
// for snippets whose files they control through the environment. Most tests
// feed recorded probe output instead.
func runSnippet(t *testing.T, snippet string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", snippet).Output()
	if err != nil {
		t.Fatalf("snippet failed: %v\n%s", err, snippet)
	}
	return string(out)
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func summariesOf(cs []provision.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Summary)
	}
	return out
}
