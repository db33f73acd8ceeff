package runtime

import (
	"testing"

	"github.com/kprep/kprep/provision/shell"
)

// Every step's probe runs under a real sh (on this machine, without
// docker or systemd, where each reads nothing), exits 0, and prints records
// that parse: a quoting slip in a snippet fails here, not on a host.
func TestProbesRunAndParse(t *testing.T) {
	for _, cri := range []string{"containerd", "cri-dockerd"} {
		c := labCluster()
		c.Kubernetes.CRI = cri
		for _, s := range Steps() {
			out := runSh(t, s.Probe(&c.Hosts[0], c))
			if _, err := shell.Parse(out); err != nil {
				t.Errorf("%s (%s): %v\n%s", s.Name(), cri, err, out)
			}
		}
	}
}

// Without the files the probes read, every diff still answers: a fresh host.
func TestFreshHostPlans(t *testing.T) {
	c := labCluster()
	for _, f := range []struct {
		name string
		fam  string
	}{{"rocky9", "rhel"}, {"ubuntu", "debian"}} {
		facts := rocky9
		if f.fam == "debian" {
			facts = ubuntu
		}
		for _, s := range Steps() {
			out := runSh(t, s.Probe(&c.Hosts[0], c))
			if _, err := s.Diff(input(c, facts, out)); err != nil {
				t.Errorf("%s on %s: %v", s.Name(), f.name, err)
			}
		}
	}
}
