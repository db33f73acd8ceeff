package kube

import (
	"context"
	"os/exec"
	"testing"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/steptest"
)

// labCluster is the lab's inventory as the loader leaves it: its mirror's
// Kubernetes repo, a control plane and a worker.
func labCluster(t *testing.T) *inventory.Cluster {
	t.Helper()
	text := `apiVersion: kprep/v1
kind: Cluster
metadata: {name: lab}
hosts:
  - {name: cp1, address: 192.168.77.11, roles: [control-plane]}
  - {name: w1, address: 192.168.77.12, roles: [worker]}
kubernetes:
  version: "1.34.4"
  repo: http://192.168.77.1:8080/kubernetes-new/core/stable/
`
	c, err := inventory.Parse("lab.yaml", []byte(text), inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	rocky9  = steptest.Rocky9
	centos7 = steptest.CentOS7
	ubuntu  = steptest.Ubuntu2204
	input   = steptest.Input
)

func mustDiff[T any](t *testing.T, s provision.TypedStep[T], in provision.Input) []provision.Planned[T] {
	t.Helper()
	return steptest.MustDiff(t, s, in)
}

func apply[T any](t *testing.T, s provision.TypedStep[T], in provision.Input, changes []provision.Planned[T], host *steptest.FakeHost) {
	t.Helper()
	if err := s.Apply(context.Background(), host.Target(in.Host), in, changes); err != nil {
		t.Fatalf("%s apply: %v", s.Name(), err)
	}
}

// TestProbesRunAndParse runs each step's probe with this machine's sh: it
// must be valid POSIX sh and print only records shell.Parse reads.
func TestProbesRunAndParse(t *testing.T) {
	c := labCluster(t)
	for _, s := range Steps() {
		out, err := exec.Command("sh", "-c", s.Probe(&c.Hosts[0], c)).CombinedOutput()
		if err != nil {
			t.Errorf("%s probe: %v\n%s", s.Name(), err, out)
			continue
		}
		if _, err := shell.Parse(string(out)); err != nil {
			t.Errorf("%s probe output: %v\n%s", s.Name(), err, out)
		}
	}
}
