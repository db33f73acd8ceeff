package hostprep

import (
	"os/exec"
	"testing"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/steptest"
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
		Kubernetes: inventory.Kubernetes{CNI: "flannel", PodSubnet: "10.244.0.0/16"},
	}
}

// The shared fixtures and helpers of step tests (provision/steptest).
var (
	centos7 = steptest.CentOS7
	rocky9  = steptest.Rocky9
	ubuntu  = steptest.Ubuntu2204
	input   = steptest.Input
	b64     = steptest.B64
)

// runSnippet runs a snippet with the machine's sh (the probes' syntax
// check); the Diff tests feed recorded probe output instead.
func runSnippet(t *testing.T, snippet string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", snippet).Output()
	if err != nil {
		t.Fatalf("snippet failed: %v\n%s", err, snippet)
	}
	return string(out)
}

func readFile(t *testing.T, name string) string { return steptest.Testdata(t, name) }

// summariesOf lists the changes' summaries (steptest.Summaries).
func summariesOf[T any](cs []provision.Planned[T]) []string { return steptest.Summaries(cs) }
