package e2e

// The engine on real hosts: the host lock keeps a second run off a host
// that is being worked on, and Ctrl-C stops a run cleanly, naming the host
// left mid-step and killing what it ran there.

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHostLockAndInterrupt(t *testing.T) {
	l := bootLab(t, "centos7", "rocky9")
	inv := l.InventoryPath()
	// lab1's swapoff hangs, so the first apply stays inside hostprep/swap.
	hostSh(t, l, "lab1", `printf '#!/bin/sh\nsleep 600\n' > /usr/local/sbin/swapoff && chmod +x /usr/local/sbin/swapoff`)

	first := exec.Command(kprepBinary(t), "apply", "-i", inv, "--phase", "hostprep", "-o", "json")
	var stdout, stderr bytes.Buffer
	first.Stdout, first.Stderr = &stdout, &stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lab1 to hang in swapoff", func() bool {
		out, _ := hostShErr(l, "lab1", "pgrep -f 'sleep 60[0]'")
		return out != ""
	})
	waitFor(t, "the first run to finish on lab2 (its run log line)", func() bool {
		_, err := hostShErr(l, "lab2", "test -s /var/lib/kprep/run.log && flock -n /var/lib/kprep/lock true")
		return err == nil
	})

	// A second run finds lab1 locked and says so; lab2 is free (the first
	// run finished there) and converges as usual.
	second := runKprep(t, l, 1, "apply", "-i", inv, "--phase", "hostprep")
	for _, h := range second.Hosts {
		locked := strings.Contains(h.Error, "another kprep run holds /var/lib/kprep/lock")
		if locked != (h.Name == "lab1") {
			t.Errorf("second run on %s: error %q", h.Name, h.Error)
		}
	}

	// Ctrl-C: the first run stops, names lab1's step, exits 1.
	if err := first.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute): // a hang guard, not a timing assertion
		first.Process.Kill()
		t.Fatalf("apply did not stop within 5 minutes of SIGINT\n%s", stderr.String())
	}
	if code := first.ProcessState.ExitCode(); code != 1 {
		t.Errorf("interrupted apply exited %d, want 1", code)
	}
	var rep struct {
		Hosts []struct {
			Name        string
			Interrupted string
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.String())
	}
	if len(rep.Hosts) == 0 || rep.Hosts[0].Name != "lab1" || rep.Hosts[0].Interrupted != "hostprep/swap" {
		t.Errorf("report hosts %+v, want lab1 interrupted during hostprep/swap", rep.Hosts)
	}
	// What kprep ran on lab1 is gone, and so is the lock with it.
	waitFor(t, "the hung swapoff to be killed on lab1", func() bool {
		out, _ := hostShErr(l, "lab1", "pgrep -f 'sleep 60[0]'")
		return out == ""
	})
	hostSh(t, l, "lab1", "rm /usr/local/sbin/swapoff")
	runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep").requireNoFailures(t)
}
