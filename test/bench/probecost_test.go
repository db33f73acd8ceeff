package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// costScript runs under this machine's sh and its output parses: the
// children's time grows with the work the snippet does.
func TestCostScriptMeasuresChildren(t *testing.T) {
	if _, err := exec.LookPath("getconf"); err != nil {
		t.Skip("no getconf")
	}
	run := func(snippet string) time.Duration {
		out, err := exec.Command("sh", "-c", strings.ReplaceAll(strings.ReplaceAll(costScript, "%d", "3"), "%s", snippet)).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		d, err := parseCost(string(out))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	idle, busy := run(":"), run("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")
	if busy <= idle {
		t.Errorf("a busy snippet cost %v, an empty one %v", busy, idle)
	}
}

func TestParseCost(t *testing.T) {
	for out, want := range map[string]time.Duration{
		"daemons 100 103 100\n0m0.010000s 0m0.020000s\n0m1.500000s 0m0.250000s\n": 1810 * time.Millisecond,
		"daemons 5 5 100\n0m0.01s 0m0.02s\n1m0.00s 0m0.00s\n":                     60030 * time.Millisecond,
	} {
		got, err := parseCost(out)
		if err != nil || got != want {
			t.Errorf("parseCost(%q) = %v, %v; want %v", out, got, err, want)
		}
	}
	if _, err := parseCost("garbage"); err == nil {
		t.Error("no error for output without a cost")
	}
}

// The first apply's overhead is kprep's own time on the hosts against the
// steps' Apply, waits for other hosts left out.
func TestFreshSplitsOwnTimeFromApply(t *testing.T) {
	r := kprepResult{wall: 30}
	report := `{"hosts": [
		{"durationMs": 20000, "time": {"connectMs": 500, "probeMs": 1000, "probes": 4, "applyMs": 18000}},
		{"durationMs": 30000, "time": {"connectMs": 500, "probeMs": 1500, "probes": 5, "applyMs": 17000, "waitMs": 10000}}]}`
	if err := json.Unmarshal([]byte(report), &r.report); err != nil {
		t.Fatal(err)
	}
	got := r.fresh()
	want := fresh{Wall: 30, Apply: 35, Own: 5, Probe: 2.5, Connect: 1, Probes: 9, Overhead: 0.125}
	if got != want {
		t.Errorf("fresh = %+v, want %+v", got, want)
	}
}
