package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kprep/kprep/provision"
)

// run runs kprep with args and returns its exit status and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(&stdout, &stderr)
	cmd.SetArgs(args)
	err := cmd.Execute()
	code := 0
	var exit *exitError
	switch {
	case errors.As(err, &exit):
		code = exit.code
		if exit.msg != "" {
			stderr.WriteString(exit.msg)
		}
	case err != nil:
		code = 1
		stderr.WriteString(err.Error())
	}
	return code, stdout.String(), stderr.String()
}

func writeInventory(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodInventory = `apiVersion: kprep/v1
kind: Cluster
metadata: {name: t}
ssh: {connectTimeout: 1s}
hosts:
  - {name: cp1, address: 127.0.0.1, roles: [control-plane]}
  - {name: w1, address: 127.0.0.2, roles: [worker]}
kubernetes:
  version: "1.34.4"
`

func TestValidate(t *testing.T) {
	code, out, _ := run(t, "validate", "-i", writeInventory(t, goodInventory))
	if code != 0 || !strings.Contains(out, "valid (2 hosts, 2 selected)") {
		t.Errorf("good file: exit %d, %q", code, out)
	}
	bad := strings.Replace(goodInventory, "127.0.0.2", "127.0.0.1", 1)
	bad += "  podSubnet: 10.96.0.0/16\n"
	path := writeInventory(t, bad)
	code, _, errOut := run(t, "validate", "-i", path)
	if code != 1 {
		t.Errorf("bad file: exit %d", code)
	}
	for _, want := range []string{path + ":7:25: hosts[1].address", "already the address of hosts[0] (cp1)", path + ":10:14: kubernetes.podSubnet", "overlaps kubernetes.serviceSubnet"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("errors lack %q:\n%s", want, errOut)
		}
	}
}

func TestValidateHostSelection(t *testing.T) {
	code, out, _ := run(t, "validate", "-i", writeInventory(t, goodInventory), "--hosts", "w1")
	if code != 0 || !strings.Contains(out, "1 selected") {
		t.Errorf("exit %d, %q", code, out)
	}
	code, _, errOut := run(t, "validate", "-i", writeInventory(t, goodInventory), "--hosts", "w9")
	if code != 1 || !strings.Contains(errOut, "w9") {
		t.Errorf("unknown host: exit %d, %q", code, errOut)
	}
}

func TestBadFlags(t *testing.T) {
	inv := writeInventory(t, goodInventory)
	for _, args := range [][]string{
		{"plan", "-i", inv, "--phase", "nope"},
		{"plan", "-i", inv, "-o", "yaml"},
	} {
		if code, _, errOut := run(t, args...); code != 1 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

func TestPlanUnreachableHostsExitOneWithJSON(t *testing.T) {
	// Port 1 on loopback refuses at once: every host fails to connect.
	inv := writeInventory(t, strings.Replace(goodInventory, "ssh: {connectTimeout: 1s}", "ssh: {connectTimeout: 1s, port: 1}", 1))
	code, out, _ := run(t, "plan", "-i", inv, "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var rep struct {
		Mode  string
		Hosts []struct {
			Name  string
			Error string
			Steps []any
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out)
	}
	if rep.Mode != "plan" || len(rep.Hosts) != 2 || !strings.Contains(rep.Hosts[0].Error, "connect") || rep.Hosts[0].Steps == nil {
		t.Errorf("report: %+v", rep)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "kprep dev (commit ") || !strings.Contains(out, "go1.") {
		t.Errorf("exit %d, %q", code, out)
	}
}

func TestCompletesHostsAndPhases(t *testing.T) {
	inv := writeInventory(t, goodInventory)
	_, out, _ := run(t, "__complete", "plan", "-i", inv, "--hosts", "")
	if !strings.HasPrefix(out, "cp1\nw1\n") {
		t.Errorf("--hosts completion: %q", out)
	}
	_, out, _ = run(t, "__complete", "plan", "--phase", "")
	if !strings.HasPrefix(out, "hostprep\nruntime\n") {
		t.Errorf("--phase completion: %q", out)
	}
}

func TestEveryStepListIsWellFormed(t *testing.T) {
	if err := provision.CheckSteps(allSteps()); err != nil {
		t.Fatal(err)
	}
}
