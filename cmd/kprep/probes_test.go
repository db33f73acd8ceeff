package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/kprep/kprep/provision/inventory"
)

// Every probe snippet must exit 0 wherever it can report the state, since
// the engine fails a step whose snippet exits non-zero. This machine has
// none of what most steps look for (no firewalld, no docker service, no
// kubeadm), which is what a fresh host looks like.
func TestEveryProbeExitsZeroOnAFreshMachine(t *testing.T) {
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("no systemctl here")
	}
	for _, variant := range []string{"", "hostprep: {firewall: open-ports}\n", "kubernetes: {version: \"1.34.4\", cri: cri-dockerd}\n"} {
		body := strings.Replace(goodInventory, "kubernetes:\n  version: \"1.34.4\"\n", "", 1)
		if variant == "" {
			body += "kubernetes: {version: \"1.34.4\"}\n"
		} else if strings.HasPrefix(variant, "hostprep") {
			body += variant + "kubernetes: {version: \"1.34.4\"}\n"
		} else {
			body += variant
		}
		c, err := inventory.Load(writeInventory(t, body))
		if err != nil {
			t.Fatalf("%v\n%s", err, body)
		}
		for _, s := range allSteps() {
			snippet := s.Probe(&c.Hosts[0], c)
			out, err := exec.Command("sh", "-c", "("+snippet+"\n) </dev/null").CombinedOutput()
			if err != nil {
				t.Errorf("%s (inventory %q): probe failed: %v\n%s", s.Name(), variant, err, out)
			}
		}
	}
}
