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

// The first apply's split is read from kprep's own account in its report.
func TestFreshSplitsOwnTimeFromApply(t *testing.T) {
	r := kprepResult{wall: 30, cpu: 2}
	report := `{"hosts": [], "time": {"connectMs": 1000, "probeMs": 2500, "probes": 9, "applyMs": 35000, "waitMs": 10000, "ownMs": 5000}}`
	if err := json.Unmarshal([]byte(report), &r.report); err != nil {
		t.Fatal(err)
	}
	got := r.fresh()
	want := fresh{Wall: 30, CPU: 2, Apply: 35, Own: 5, Probe: 2.5, Connect: 1, Probes: 9, Overhead: 0.125}
	if got != want {
		t.Errorf("fresh = %+v, want %+v", got, want)
	}
}

// A run stopped after some rounds still gets medians and ratios of what it
// measured; a tool with no sample yet stays zero, its ratio too.
func TestSummarizeStoppedRow(t *testing.T) {
	r := row{Hosts: 200, Samples: samples{
		Floor: []figures{{Wall: 38}, {Wall: 29}},
		Plan:  []figures{{Wall: 44}, {Wall: 32}},
		Apply: []figures{{Wall: 40, ClientCPU: 3, HostsCPU: 61}, {Wall: 32, ClientCPU: 3, HostsCPU: 51}},
	}}
	r.summarize([]int64{50 * 1024, 62 * 1024}, true)
	if r.Floor.Wall != 33.5 || r.Plan.Wall != 38 || r.Apply.Wall != 36 || r.PlanRatio != 38/33.5 || r.RSSMiB != 62 || r.RSSPerHost != 62*1024/200.0 {
		t.Errorf("summarized %+v", r)
	}
	if r.AnsibleRatio != 0 || r.AnsibleCPURatio != 0 || r.AnsibleFloorRatio != 0 {
		t.Errorf("no Ansible sample, yet ratios %v, %v and %v", r.AnsibleRatio, r.AnsibleCPURatio, r.AnsibleFloorRatio)
	}
	r.Samples.Ansible = []figures{{Wall: 1190, ClientCPU: 473, HostsCPU: 1456}}
	r.summarize(nil, true)
	if r.AnsibleRatio != 1190/36.0 || r.AnsibleCPURatio != (473+1456)/59.0 || r.AnsibleFloorRatio != 1190/33.5 {
		t.Errorf("Ansible ratios %v, %v and %v", r.AnsibleRatio, r.AnsibleCPURatio, r.AnsibleFloorRatio)
	}
}
