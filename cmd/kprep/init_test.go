package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTool puts an executable script named name first on PATH.
func fakeTool(t *testing.T, name, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// initThenValidate runs kprep init with args, writes what it printed and
// checks it with kprep validate, as a user would.
func initThenValidate(t *testing.T, args ...string) (string, string) {
	t.Helper()
	t.Setenv("HOME", t.TempDir()) // no ~/.ssh keys: the agent
	code, out, stderr := run(t, append([]string{"init"}, args...)...)
	if code != 0 {
		t.Fatalf("kprep init %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	path := writeInventory(t, out)
	if code, vout, verr := run(t, "validate", "-i", path); code != 0 {
		t.Fatalf("kprep validate of kprep init's output: exit %d: %s%s\n%s", code, vout, verr, out)
	}
	return out, stderr
}

func TestInitMultipassThroughTheRealCommandLine(t *testing.T) {
	list, err := os.ReadFile("../../provision/starter/testdata/multipass-list.json")
	if err != nil {
		t.Fatal(err)
	}
	fixture := filepath.Join(t.TempDir(), "list.json")
	if err := os.WriteFile(fixture, list, 0o600); err != nil {
		t.Fatal(err)
	}
	fakeTool(t, "multipass", `[ "$*" = "list --format json" ] || { echo "unexpected: $*" >&2; exit 9; }
cat `+fixture+"\n")
	out, stderr := initThenValidate(t, "--multipass", "--control-planes", "2")
	for _, want := range []string{"  - name: cp1\n    address: 10.21.124.56\n    roles: [control-plane, worker]",
		"  - name: noteworthy-alewife\n    address: 10.130.108.191\n", "user: kprep"} {
		if !strings.Contains(out, want) {
			t.Errorf("inventory lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "kprep init: left out bombastic: Stopped") {
		t.Errorf("stderr does not report the stopped instance: %q", stderr)
	}
}

func TestInitMultipassNotRunningIsAClearError(t *testing.T) {
	fakeTool(t, "multipass", `echo "list failed: cannot connect to the multipass socket" >&2; exit 2`+"\n")
	code, out, stderr := run(t, "init", "--multipass")
	if code != 1 || out != "" || !strings.Contains(stderr, "`multipass list --format json` exited 2; it printed:\n  list failed: cannot connect to the multipass socket") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	t.Setenv("PATH", t.TempDir())
	code, _, stderr = run(t, "init", "--multipass")
	if code != 1 || !strings.Contains(stderr, "multipass is not installed (not found on PATH)") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestInitVagrantNotRunningNamesTheMachines(t *testing.T) {
	fakeTool(t, "vagrant", `case "$*" in
"ssh-config") echo "The provider for this Vagrant-managed machine is reporting that it
is not yet ready for SSH." >&2; exit 1 ;;
"status --machine-readable") echo "1,node1,state,poweroff"; echo "1,node2,state,running" ;;
esac
`)
	code, _, stderr := run(t, "init", "--vagrant", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "`vagrant ssh-config` (in ") || !strings.Contains(stderr, "not running: node1 (poweroff); start them with `vagrant up`") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := run(t, "init", "--vagrant", "a", "b"); code != 1 || !strings.Contains(stderr, "--vagrant takes one folder") {
		t.Errorf("two folders: exit %d, %q", code, stderr)
	}
}

func TestInitFromArgumentsAndStdin(t *testing.T) {
	out, _ := initThenValidate(t, "root@192.168.56.10", "vagrant@192.168.56.11:2222")
	if !strings.Contains(out, "    ssh: {port: 2222, user: vagrant}") {
		t.Errorf("inventory:\n%s", out)
	}
	keyDir := t.TempDir()
	key := filepath.Join(keyDir, "id_test")
	if err := os.WriteFile(key, []byte("not checked by validate"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ = initThenValidate(t, "--key", key, "--name", "edge", "10.1.0.5")
	if !strings.Contains(out, "privateKeyFile: "+key) || !strings.Contains(out, "name: edge") {
		t.Errorf("inventory:\n%s", out)
	}
	code, _, stderr := run(t, "init", "--key", filepath.Join(keyDir, "absent"), "10.1.0.5")
	if code != 1 || !strings.Contains(stderr, "absent does not exist") {
		t.Errorf("a missing key: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, "init", "--multipass", "--vagrant")
	if code != 1 || !strings.Contains(stderr, "none of the others can be") {
		t.Errorf("both sources: exit %d, %q", code, stderr)
	}
}

func TestInitReadsLinesFromStandardInput(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(&stdout, &stderr)
	cmd.SetIn(strings.NewReader("# the rack\nroot@10.1.0.5\nroot@10.1.0.6\nroot@10.1.0.7\n"))
	cmd.SetArgs([]string{"init", "--control-planes", "3"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	path := writeInventory(t, stdout.String())
	if code, _, verr := run(t, "validate", "-i", path); code != 0 {
		t.Fatalf("validate: %s\n%s", verr, stdout.String())
	}
	for _, want := range []string{"name: cp3\n    address: 10.1.0.7\n    roles: [control-plane, worker]", "controlPlaneEndpoint: 10.1.0.5:6443", "from the machines given on standard input"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("inventory lacks %q:\n%s", want, stdout.String())
		}
	}
}
