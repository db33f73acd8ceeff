package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomicIsPrivateAndWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.conf")
	// An older, world-readable file is replaced, not written into.
	if err := os.WriteFile(path, []byte("old content that is longer than the new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Errorf("content %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	// A folder that does not exist is an error, and nothing is left.
	if err := writeFileAtomic(filepath.Join(dir, "no", "such"), []byte("x"), 0o600); err == nil {
		t.Error("wrote into a missing folder")
	}
}

func TestKubeconfigNeedsAnInventory(t *testing.T) {
	code, out, errOut := run(t, "kubeconfig", "-i", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || out != "" || errOut == "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
