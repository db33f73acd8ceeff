package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kprep/kprep/provision/shell"
)

// TestUnitSnippetOnARunningProcess runs a unit's probe against a real
// process, with systemctl answering for it: the executable is named without
// readlink while it is the unit's file and "(deleted)" once replaced, and
// the start and the config's mtime are asked only while kprep has no record
// for that process.
func TestUnitSnippetOnARunningProcess(t *testing.T) {
	dir := t.TempDir()
	sleepPath, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	daemon := filepath.Join(dir, "daemon")
	copyFile(t, sleepPath, daemon, 0o755)
	proc := exec.Command(daemon, "300")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Process.Kill(); proc.Wait() })
	pid := strconv.Itoa(proc.Process.Pid)

	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	systemctl := "#!/bin/sh\necho \"$*\" >> " + dir + "/calls\ncat <<EOF\nMainPID=" + pid +
		"\nActiveState=active\nActiveEnterTimestamp=Wed 2026-12-02 12:00:00 UTC\nExecStart={ path=" + daemon + " ; argv[]=" + daemon + " 300 ; }\nEOF\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(systemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.toml")
	copyFile(t, sleepPath, config, 0o644)
	record := filepath.Join(dir, "containerd.loaded")
	u := managedUnit{Name: "containerd", Service: "containerd.service", Config: config}
	snippet := strings.ReplaceAll(unitSnippet(u), loadedPath("containerd"), record)
	probe := func() shell.State {
		t.Helper()
		st, err := shell.Parse(runSh(t, "PATH="+bin+":$PATH\n"+snippet))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	st := probe()
	if got := st.Values["containerd.exe"]; got != daemon {
		t.Errorf("exe = %q, want %q", got, daemon)
	}
	if st.Values["containerd.started"] == "" || st.Values["containerd.mtime"] == "" {
		t.Errorf("no record: want started and mtime, got %q and %q", st.Values["containerd.started"], st.Values["containerd.mtime"])
	}

	if err := os.WriteFile(record, []byte(pid+"\ncontent\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st = probe()
	if st.Values["containerd.started"] != "" || st.Values["containerd.mtime"] != "" {
		t.Errorf("a record for this process: want no started and mtime, got %q and %q", st.Values["containerd.started"], st.Values["containerd.mtime"])
	}

	// An upgrade replaces the file under the running process.
	copyFile(t, sleepPath, daemon+".new", 0o755)
	if err := os.Rename(daemon+".new", daemon); err != nil {
		t.Fatal(err)
	}
	st = probe()
	if got := st.Values["containerd.exe"]; got != daemon+" (deleted)" {
		t.Errorf("after the upgrade exe = %q, want %q", got, daemon+" (deleted)")
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestDockerInfoVouchedByTheRecord: docker info is skipped exactly while
// kprep's record names the running dockerd and holds daemon.json byte for
// byte, its last line's end included.
func TestDockerInfoVouchedByTheRecord(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	tools := map[string]string{
		"systemctl": "#!/bin/sh\nprintf 'MainPID=4242\\nActiveState=active\\n'\n",
		"docker":    "#!/bin/sh\necho info >> " + dir + "/docker-calls\necho '{}'\n",
	}
	for name, body := range tools {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf, record := filepath.Join(dir, "daemon.json"), filepath.Join(dir, "docker.loaded")
	u := managedUnit{Name: "docker", Service: "docker.service", Config: conf, DockerInfo: true}
	snippet := strings.ReplaceAll(unitSnippet(u), loadedPath("docker"), record)
	const content = "{\n  \"log-driver\": \"json-file\"\n}\n"
	for _, c := range []struct {
		name, record, conf string
		vouched            bool
	}{
		{"same file", "4242\n" + content, content, true},
		{"one byte changed", "4242\n" + content, strings.Replace(content, "json", "jsox", 1), false},
		{"last newline gone", "4242\n" + content, strings.TrimSuffix(content, "\n"), false},
		{"a line more", "4242\n" + content, content + "\n", false},
		{"another dockerd", "4243\n" + content, content, false},
		{"an empty file, both", "4242\n", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "docker-calls"))
			if err := os.WriteFile(conf, []byte(c.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			// The record is written after the file, as apply writes it.
			if err := os.WriteFile(record, []byte(c.record), 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := shell.Parse(runSh(t, "PATH="+bin+":$PATH\n"+snippet))
			if err != nil {
				t.Fatal(err)
			}
			_, askedDocker := os.Stat(filepath.Join(dir, "docker-calls"))
			if got := st.Values["docker.info_vouched"] == "1"; got != c.vouched || (askedDocker == nil) == c.vouched {
				t.Errorf("vouched %v, docker info asked %v; want vouched %v", got, askedDocker == nil, c.vouched)
			}
		})
	}
}
