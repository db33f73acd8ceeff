package runtime

import (
	"os/exec"
	"testing"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/steptest"
)

// labCluster is a two-host cluster as the inventory loader leaves it
// after defaults, with the lab's mirror.
func labCluster() *inventory.Cluster {
	yes, vault := true, true // separate switches: a test flips one
	return &inventory.Cluster{
		Hosts: []inventory.Host{
			{Name: "cp1", Address: "192.168.77.11", Roles: []string{"control-plane"}},
			{Name: "w1", Address: "192.168.77.12", Roles: []string{"worker"}},
		},
		Docker: inventory.Docker{
			Version:            "24.0.9",
			Repo:               "http://192.168.77.1:8080/docker-ce",
			RegistryMirrors:    []string{"http://192.168.77.1:5000"},
			InsecureRegistries: []string{"192.168.77.1:5000"},
			LogDriver:          "json-file",
			LogOpts:            map[string]string{"max-size": "50m", "max-file": "3"},
			GPGCheck:           &yes,
			CentOS7Vault:       inventory.CentOS7Vault{Enabled: &vault, URL: "http://192.168.77.1:8080/centos-vault"},
		},
		Kubernetes: inventory.Kubernetes{
			Version: "1.34.4", ImageRepository: "192.168.77.1:5000/google_containers", CRI: "containerd",
			PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/12", CNI: "flannel",
			CRIDockerd: inventory.CRIDockerd{Version: "0.3.16",
				URL: "https://github.com/Mirantis/cri-dockerd/releases/download/v{version}/cri-dockerd-{version}.{arch}.tgz"},
		},
	}
}

// The shared fixtures and helpers of step tests (provision/steptest).
var (
	centos7    = steptest.CentOS7
	rocky9     = steptest.Rocky9
	openEuler  = steptest.OpenEuler2203
	ubuntu     = steptest.Ubuntu2204
	input      = steptest.Input
	fileRecord = steptest.FileRecord
)

func readTestdata(t *testing.T, name string) string { return steptest.Testdata(t, name) }

// mustDiff runs a step's diff and fails the test on an error.
func mustDiff[T any](t *testing.T, s provision.TypedStep[T], in provision.Input) []provision.Planned[T] {
	t.Helper()
	return steptest.MustDiff(t, s, in)
}

// runSh runs a snippet with the machine's sh.
func runSh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v\n%s\n%s", err, out, script)
	}
	return string(out)
}

// execSh runs a snippet and returns its output and error.
func execSh(script string) (string, error) {
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	return string(out), err
}

// summariesOf lists the changes' summaries (steptest.Summaries).
func summariesOf[T any](cs []provision.Planned[T]) []string { return steptest.Summaries(cs) }

// keysOf lists the changes' keys (steptest.Keys).
func keysOf[T any](cs []provision.Planned[T]) []string { return steptest.Keys(cs) }
