// Package steptest helps the step packages test their Diff functions on
// recorded probe output: the facts of the OSes kprep supports, probe
// records, test data and the words of a list of changes.
package steptest

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
)

// Facts of hosts as the facts probe reports them (recorded on real hosts
// and on the lab's personalities).
var (
	CentOS7       = facts.Facts{OSID: "centos", OSVersion: "7", OSName: "CentOS Linux 7 (Core)", Family: facts.FamilyRHEL, Major: 7, Arch: "x86_64"}
	Rocky9        = facts.Facts{OSID: "rocky", OSVersion: "9.4", OSName: "Rocky Linux 9.4 (Blue Onyx)", Family: facts.FamilyRHEL, Major: 9, Arch: "x86_64"}
	OpenEuler2203 = facts.Facts{OSID: "openEuler", OSVersion: "22.03", OSName: "openEuler 22.03 (LTS-SP3)", Family: facts.FamilyRHEL, Major: 8, Arch: "aarch64"}
	Ubuntu2204    = facts.Facts{OSID: "ubuntu", OSVersion: "22.04", OSName: "Ubuntu 22.04.4 LTS", Family: facts.FamilyDebian, Major: 22, Codename: "jammy", Arch: "x86_64"}
)

// Input is what a step sees of the cluster's first host with these facts
// and this probe output.
func Input(c *inventory.Cluster, f facts.Facts, state string) provision.Input {
	return provision.Input{Cluster: c, Host: &c.Hosts[0], Facts: f, State: state}
}

// B64 encodes s as a probe's file record carries it.
func B64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// FileRecord is the line shell.File prints for a file with content.
func FileRecord(label, content string) string { return "file " + label + " " + B64(content) + "\n" }

// Testdata reads testdata/name of the calling package.
func Testdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// MustDiff runs a step's Diff and fails the test on an error.
func MustDiff[T any](t testing.TB, s provision.TypedStep[T], in provision.Input) []provision.Planned[T] {
	t.Helper()
	changes, err := s.Diff(in)
	if err != nil {
		t.Fatalf("%s: %v", s.Name(), err)
	}
	return changes
}

// Summaries lists the changes' summaries, in order.
func Summaries[T any](cs []provision.Planned[T]) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Summary)
	}
	return out
}

// Keys lists the changes' keys, in order.
func Keys[T any](cs []provision.Planned[T]) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Key)
	}
	return out
}
