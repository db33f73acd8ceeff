package hostfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestHeaderAndOwned(t *testing.T) {
	h := Header("kernel modules Kubernetes needs.", "Edits are overwritten.")
	if h != "# Written by kprep: kernel modules Kubernetes needs.\n# Edits are overwritten.\n" {
		t.Errorf("Header = %q", h)
	}
	if !Owned([]byte(h+"overlay\n")) || Owned([]byte("overlay\n"+h)) {
		t.Error("Owned must look at the first line only")
	}
}

func TestCompare(t *testing.T) {
	want := []byte(Header("x") + "a=1\n")
	for _, tc := range []struct {
		have   string
		exists bool
		want   string
	}{
		{"", false, "/etc/x.conf is missing"},
		{string(want), true, ""},
		{Header("x") + "a=2\n", true, "/etc/x.conf differs from what it should hold"},
		{"a=1\n", true, "/etc/x.conf was not written by kprep and differs from what it should hold (it is backed up before kprep replaces it)"},
	} {
		if got := Compare("/etc/x.conf", []byte(tc.have), tc.exists, want); got != tc.want {
			t.Errorf("Compare(%q, %v) = %q, want %q", tc.have, tc.exists, got, tc.want)
		}
	}
}

func TestCheckCandidateRunsTheCheckOnATempFileBesideThePath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub dir", "daemon.json")
	for _, tc := range []struct {
		input string
		ok    bool
	}{{"good\n", true}, {"bad\n", false}} {
		cmd := exec.Command("sh", "-c", CheckCandidate(path, `grep -q good "$f" && [ "$(dirname "$f")" = `+"'"+filepath.Dir(path)+"'"+` ]`))
		cmd.Stdin = strings.NewReader(tc.input)
		err := cmd.Run()
		if (err == nil) != tc.ok {
			t.Errorf("input %q: err = %v, want ok=%v", tc.input, err, tc.ok)
		}
		left, _ := os.ReadDir(filepath.Dir(path))
		if len(left) != 0 {
			t.Errorf("input %q left %v behind", tc.input, left)
		}
	}
}
