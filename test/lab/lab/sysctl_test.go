package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kprep/kprep/test/lab/instance"
)

// fakeSysctls is sharedSysctls over files in a temporary folder, with the
// machine's other labs (by bridge) given by the test.
func fakeSysctls(t *testing.T, others *[]instance.ID) (sharedSysctls, func() string) {
	t.Helper()
	dir := t.TempDir()
	limit := filepath.Join(dir, "max_user_instances")
	if err := os.WriteFile(limit, []byte("128\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := sharedSysctls{
		limits: []sysctlLimit{{limit, 8192}},
		record: filepath.Join(dir, "run", "sysctls.json"),
		lock:   filepath.Join(dir, "sysctls.lock"),
		labsUp: func() []instance.ID { return append([]instance.ID(nil), *others...) },
	}
	read := func() string {
		b, err := os.ReadFile(limit)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	return s, read
}

func TestSysctlsStayRaisedUntilTheLastLabIsDown(t *testing.T) {
	var bridges []instance.ID
	s, value := fakeSysctls(t, &bridges)
	step := func(what string, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := value(); got != want {
			t.Fatalf("after %s the limit is %s, want %s", what, got, want)
		}
	}
	step("lab 5 up", s.raiseSysctls(5), "8192")
	bridges = []instance.ID{5}
	step("lab 6 up", s.raiseSysctls(6), "8192")
	// Lab 5 raised the limit, but lab 6 still needs it (down removes a
	// lab's bridge before it releases the limits).
	bridges = []instance.ID{6}
	step("lab 5 down", s.releaseSysctls(5, nil), "8192")
	bridges = nil
	step("lab 6 down", s.releaseSysctls(6, nil), "128")
	if _, err := os.Stat(s.record); !os.IsNotExist(err) {
		t.Errorf("the record is still there after the last down: %v", err)
	}
	step("lab 6 down again", s.releaseSysctls(6, nil), "128")
}

func TestSysctlsStayRaisedForALabThatDidNotRegister(t *testing.T) {
	// A lab started by older code raises the limits without the record;
	// its bridge is what shows it is up.
	bridges := []instance.ID{0}
	s, value := fakeSysctls(t, &bridges)
	if err := s.raiseSysctls(7); err != nil {
		t.Fatal(err)
	}
	if err := s.releaseSysctls(7, nil); err != nil {
		t.Fatal(err)
	}
	if got := value(); got != "8192" {
		t.Errorf("lab 7's down lowered the limit to %s while lab 0 is up", got)
	}
	// Lab 0's own down then restores what lab 7 recorded, and what its
	// old state record lists.
	bridges = nil
	if err := s.releaseSysctls(0, nil); err != nil {
		t.Fatal(err)
	}
	if got := value(); got != "128" {
		t.Errorf("the last down left the limit at %s, want 128", got)
	}
}

func TestSysctlsChangedByHandAreLeftAlone(t *testing.T) {
	var bridges []instance.ID
	s, value := fakeSysctls(t, &bridges)
	if err := s.raiseSysctls(8); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.limits[0].path, []byte("10000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.releaseSysctls(8, nil); err != nil {
		t.Fatal(err)
	}
	if got := value(); got != "10000" {
		t.Errorf("down overwrote a value set by hand: %s", got)
	}
}

func TestSysctlsFromAnOldStateRecord(t *testing.T) {
	var bridges []instance.ID
	s, value := fakeSysctls(t, &bridges)
	// Up before instances raised the limit and kept the change in its
	// own state, not in the shared record.
	if err := os.WriteFile(s.limits[0].path, []byte("8192\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := []sysctlChange{{Path: s.limits[0].path, Original: "128", Set: "8192"}}
	if err := s.releaseSysctls(0, old); err != nil {
		t.Fatal(err)
	}
	if got := value(); got != "128" {
		t.Errorf("the old record's change was not restored: %s", got)
	}
}

func TestSysctlsRaisedByAnotherLabLeaveNoRecord(t *testing.T) {
	// Lab 0 (older code, no record) raised the limit before lab 5 came up.
	bridges := []instance.ID{0}
	s, value := fakeSysctls(t, &bridges)
	if err := os.WriteFile(s.limits[0].path, []byte("8192\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.raiseSysctls(5); err != nil {
		t.Fatal(err)
	}
	if err := s.releaseSysctls(5, nil); err != nil {
		t.Fatal(err)
	}
	if got := value(); got != "8192" {
		t.Errorf("lab 5's down changed lab 0's limit to %s", got)
	}
	if _, err := os.Stat(s.record); !os.IsNotExist(err) {
		t.Errorf("a record with nothing to restore is left: %v", err)
	}
}

func TestSysctlsOfAnOldStateRecordWaitForTheLastLab(t *testing.T) {
	// Lab 0's state from before instances lists its change; lab 6 is up
	// when lab 0 goes down, so lab 6's down restores it.
	bridges := []instance.ID{6}
	s, value := fakeSysctls(t, &bridges)
	if err := os.WriteFile(s.limits[0].path, []byte("8192\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.raiseSysctls(6); err != nil {
		t.Fatal(err)
	}
	old := []sysctlChange{{Path: s.limits[0].path, Original: "128", Set: "8192"}}
	if err := s.releaseSysctls(0, old); err != nil {
		t.Fatal(err)
	}
	if got := value(); got != "8192" {
		t.Fatalf("lab 0's down lowered the limit to %s while lab 6 is up", got)
	}
	bridges = nil
	if err := s.releaseSysctls(6, nil); err != nil {
		t.Fatal(err)
	}
	if got := value(); got != "128" {
		t.Errorf("the last down left the limit at %s, want 128", got)
	}
}
