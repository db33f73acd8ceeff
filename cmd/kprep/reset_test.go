package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kprep/kprep/provision/inventory"
)

func TestResetNeedsAConfirmationWithoutATerminal(t *testing.T) {
	// The test's stdin is not a terminal: refused before any host is touched.
	code, _, errOut := run(t, "reset", "-i", writeInventory(t, goodInventory), "--hosts", "w1")
	if code != 1 || !strings.Contains(errOut, "reset needs a confirmation: run it on a terminal, or add --yes") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestResetRefusesTheLastControlPlane(t *testing.T) {
	for _, args := range [][]string{{"--hosts", "cp1"}, {}, {"--hosts", "cp1,w1", "--yes"}} {
		code, _, errOut := run(t, append([]string{"reset", "-i", writeInventory(t, goodInventory)}, args...)...)
		if code != 1 || !strings.Contains(errOut, "refusing to reset every control plane (cp1)") {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
	}
	code, _, errOut := run(t, "reset", "-i", writeInventory(t, goodInventory), "--phase", "kube", "--yes")
	if code != 1 || !strings.Contains(errOut, "--phase does not apply to reset") {
		t.Errorf("--phase: exit %d: %s", code, errOut)
	}
}

func TestConfirmReset(t *testing.T) {
	c, err := inventory.Parse("c.yaml", []byte(goodInventory), offlineOptions)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []*inventory.Host{&c.Hosts[1]}
	var out bytes.Buffer
	if err := confirmReset(strings.NewReader("yes\n"), &out, true, c, hosts); err != nil {
		t.Errorf("yes: %v", err)
	}
	if !strings.Contains(out.String(), "w1 (127.0.0.2, worker)") || !strings.HasSuffix(out.String(), "Type yes to go on: ") {
		t.Errorf("prompt:\n%s", out.String())
	}
	for _, answer := range []string{"y\n", "no\n", ""} {
		if err := confirmReset(strings.NewReader(answer), &out, true, c, hosts); err == nil || !strings.Contains(err.Error(), "reset cancelled") {
			t.Errorf("%q: %v", answer, err)
		}
	}
}
