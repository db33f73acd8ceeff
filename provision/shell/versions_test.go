package shell

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The snippet runs each program's --version once per file: later probes
// read the record, an upgrade (a new file) asks again, a plan (no
// recording) never writes, and a program not in PATH prints empty.
func TestBinaryVersionsAskOncePerFile(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(dir, "calls")
	record := filepath.Join(dir, "versions")
	writeProgram := func(name, version string) {
		// A new file each time, as a package upgrade writes one.
		tmp := filepath.Join(bin, "."+name)
		script := "#!/bin/sh\necho " + name + " >> " + calls + "\necho '" + version + "'\necho 'second line'\n"
		if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	writeProgram("containerd", "containerd containerd.io 1.7.27 05044ec")
	writeProgram("cri-dockerd", "cri-dockerd 0.3.16 (e1a7bd3)")
	snippet := binaryVersions(record, "version_", "containerd", "dockerd", "cri-dockerd")
	run := func(recording bool) string {
		t.Helper()
		script := "PATH=" + bin + ":/usr/bin:/bin\n"
		if recording {
			script += RecordingVar + "=1\n"
		}
		out, err := exec.Command("sh", "-c", script+snippet).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return string(out)
	}
	callCount := func() int {
		b, _ := os.ReadFile(calls)
		return strings.Count(string(b), "\n")
	}
	want := "version_containerd=containerd containerd.io 1.7.27 05044ec\nversion_dockerd=\nversion_cri-dockerd=cri-dockerd 0.3.16 (e1a7bd3)\n"

	if got := run(false); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("a plan wrote the record (%v)", err)
	}
	if got := run(true); got != want || callCount() != 4 {
		t.Fatalf("apply: %d calls\n%s", callCount(), got)
	}
	if got := run(true); got != want || callCount() != 4 {
		t.Fatalf("a second apply asked again: %d calls\n%s", callCount(), got)
	}
	if got := run(false); got != want || callCount() != 4 {
		t.Fatalf("a plan after the record asked again: %d calls\n%s", callCount(), got)
	}

	writeProgram("containerd", "containerd containerd.io 2.1.4 75cb2b7")
	want2 := strings.Replace(want, "1.7.27 05044ec", "2.1.4 75cb2b7", 1)
	if got := run(true); got != want2 || callCount() != 5 {
		t.Fatalf("after an upgrade: %d calls\n%s", callCount(), got)
	}
	if got := run(true); got != want2 || callCount() != 5 {
		t.Fatalf("after an upgrade, again: %d calls\n%s", callCount(), got)
	}
	rec, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(rec), "\n"); n != 2 || strings.Contains(string(rec), "1.7.27") {
		t.Errorf("the record keeps one line per program:\n%s", rec)
	}
}

// A program named by its path is that file, wherever PATH points, and
// shares the record with the same file found through PATH.
func TestBinaryVersionsByPath(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	record := filepath.Join(dir, "versions")
	for _, sub := range []string{"usr-bin", "local-bin"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, version string) {
		script := "#!/bin/sh\necho " + path + " >> " + calls + "\necho '" + version + "'\n"
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mine := filepath.Join(dir, "usr-bin", "cri-dockerd")
	write(mine, "cri-dockerd 0.3.16 (e1a7bd3)")
	write(filepath.Join(dir, "local-bin", "cri-dockerd"), "cri-dockerd 0.2.0 (stray)")
	run := func(snippet string) string {
		t.Helper()
		script := "PATH=" + filepath.Join(dir, "local-bin") + ":" + filepath.Join(dir, "usr-bin") + ":/usr/bin:/bin\n" + RecordingVar + "=1\n"
		out, err := exec.Command("sh", "-c", script+snippet).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return string(out)
	}
	if got, want := run(binaryVersions(record, "v_", mine)), "v_cri-dockerd=cri-dockerd 0.3.16 (e1a7bd3)\n"; got != want {
		t.Errorf("by path: %q, want %q", got, want)
	}
	if got, want := run(binaryVersions(record, "v_", "cri-dockerd")), "v_cri-dockerd=cri-dockerd 0.2.0 (stray)\n"; got != want {
		t.Errorf("through PATH: %q, want %q", got, want)
	}
	if got, want := run(binaryVersions(record, "v_", mine, filepath.Join(dir, "missing"))), "v_cri-dockerd=cri-dockerd 0.3.16 (e1a7bd3)\nv_missing=\n"; got != want {
		t.Errorf("by path again: %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(calls); strings.Count(string(b), mine) != 1 {
		t.Errorf("%s asked %d times, want once (the record vouches after):\n%s", mine, strings.Count(string(b), mine), b)
	}
}
