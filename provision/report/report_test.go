package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kprep/kprep/provision"
)

func sampleReport() *provision.Report {
	return &provision.Report{Mode: provision.ModeApply, Duration: 3 * time.Second,
		Time: provision.HostTime{Connect: 100 * time.Millisecond, Probe: 500 * time.Millisecond, Probes: 2, Apply: 2 * time.Second, Own: time.Second},
		Hosts: []provision.HostResult{
			{Name: "cp1", Address: "10.0.0.1", Steps: []provision.StepResult{
				{Name: "hostprep/swap", Status: provision.StatusChanged, Duration: 800 * time.Millisecond,
					Changes:  []provision.Change{{Key: "swapoff", Summary: "swap is on: /dev/dm-1, 2.0 GiB", Action: "swapoff -a"}},
					Commands: []string{"swapoff -a"}},
				{Name: "hostprep/sysctl", Status: provision.StatusFailed, Changes: []provision.Change{},
					Error: "cp1: command exited 1: sysctl -p /etc/sysctl.d/k8s.conf\nsysctl: permission denied"},
				{Name: "runtime/docker", Status: provision.StatusSkipped, Changes: []provision.Change{}, Error: "an earlier step failed: hostprep/sysctl"},
			}},
			{Name: "w1", Address: "10.0.0.2", Error: "connect: dial tcp 10.0.0.2:22: connection refused", Steps: []provision.StepResult{}},
		}}
}

func TestSummaryListsFailuresLast(t *testing.T) {
	var buf bytes.Buffer
	Summary(&buf, sampleReport(), Style{})
	out := buf.String()
	for _, want := range []string{
		"HOST  STEP             RESULT   DURATION",
		"cp1   hostprep/swap    changed  800ms",
		"w1    -                failed",
		"Changed:\n  cp1 hostprep/swap\n      - swap is on: /dev/dm-1, 2.0 GiB\n        -> swapoff -a\n",
		"Failures:\n  cp1 hostprep/sysctl: cp1: command exited 1: sysctl -p /etc/sysctl.d/k8s.conf\n      sysctl: permission denied\n  w1: connect: dial tcp 10.0.0.2:22: connection refused\n",
		"Host time: 2.0 s applying changes, 1.0 s kprep's own (33%: 0.5 s in 2 probes, 0.1 s connecting)",
		"apply: 2 hosts, 1 changed, 1 failed, 1 skipped, 2 hosts failed in 3s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "Failures:") < strings.Index(out, "Changed:") {
		t.Error("failures must come last")
	}
}

func TestJSONShape(t *testing.T) {
	var buf bytes.Buffer
	rep := sampleReport()
	rep.Hosts[0].Steps[0].DurationMs = 800
	if err := JSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Mode  string `json:"mode"`
		Hosts []struct {
			Name  string `json:"name"`
			Error string `json:"error"`
			Steps []struct {
				Name       string              `json:"name"`
				Status     string              `json:"status"`
				Changes    []map[string]string `json:"changes"`
				Error      string              `json:"error"`
				DurationMs *int64              `json:"durationMs"`
			} `json:"steps"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Hosts[0].Steps[0]
	if doc.Mode != "apply" || s.Name != "hostprep/swap" || s.Status != "changed" || s.DurationMs == nil || *s.DurationMs != 800 ||
		s.Changes[0]["Summary"] != "swap is on: /dev/dm-1, 2.0 GiB" || doc.Hosts[1].Steps == nil {
		t.Errorf("unexpected document:\n%s", buf.String())
	}
}

func TestNoColourWithoutStyle(t *testing.T) {
	var buf bytes.Buffer
	l := NewLines(&buf, Style{}, 4)
	l.StepFinished("cp1", sampleReport().Hosts[0].Steps[0])
	if strings.Contains(buf.String(), "\033[") {
		t.Errorf("escape codes without colour: %q", buf.String())
	}
	buf.Reset()
	NewLines(&buf, Style{Color: true}, 4).StepFinished("cp1", sampleReport().Hosts[0].Steps[0])
	if !strings.Contains(buf.String(), "\033[33mchanged\033[0m") {
		t.Errorf("no colour with colour on: %q", buf.String())
	}
}
