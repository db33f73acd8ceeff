package e2e

// The suites' shared harness: a lab per test (under the lab tests' lock),
// kprep run as the user runs it with -o json, and shell lines run inside
// the hosts without SSH, so checks never go through the tool under test.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kprep/kprep/test/lab/lab"
)

func skipUnlessE2E(t *testing.T) {
	t.Helper()
	if os.Getenv("KPREP_E2E") != "1" {
		t.Skip("set KPREP_E2E=1 to run the end-to-end tests on the lab (root)")
	}
	if os.Geteuid() != 0 {
		t.Skip("the lab needs root")
	}
}

// bootLab boots a lab of the given personalities, one host each, and takes
// it down when the test ends.
func bootLab(t *testing.T, personalities ...string) *lab.Lab {
	t.Helper()
	return bootLabWith(t, lab.Options{OS: personalities}, 30*time.Minute)
}

// bootLabWith boots the lab o describes (its Log is the test's), within
// timeout, and takes it down when the test ends.
func bootLabWith(t *testing.T, o lab.Options, timeout time.Duration) *lab.Lab {
	t.Helper()
	skipUnlessE2E(t)
	holdLabLock(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var log bytes.Buffer
	o.Log = &log
	start := time.Now()
	l, err := lab.Up(ctx, o)
	t.Cleanup(func() {
		if err := lab.Down(context.Background(), lab.StateDirFromEnv()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, log.String())
	}
	t.Logf("lab up (%s): %s", strings.Join(append(append([]string{}, o.OS...), o.VMs...), ", "), time.Since(start).Round(time.Millisecond))
	if len(o.VMs) > 0 {
		t.Logf("lab up's log:\n%s", log.String())
	}
	return l
}

// labInventory writes a copy of the lab's inventory with the docker section
// edited, and returns its path.
func labInventory(t *testing.T, l *lab.Lab, edit func(docker map[string]any)) string {
	t.Helper()
	return editInventory(t, l, func(doc map[string]any) {
		docker, _ := doc["docker"].(map[string]any)
		if docker == nil {
			docker = map[string]any{}
			doc["docker"] = docker
		}
		if v, ok := docker["version"]; ok {
			docker["version"] = fmt.Sprint(v)
		}
		// CentOS 7's base repos from the lab's copy of the vault.
		docker["centos7Vault"] = map[string]any{"url": l.MirrorURL() + "/centos-vault"}
		if edit != nil {
			edit(docker)
		}
	})
}

// editInventory writes a copy of the lab's inventory, changed by edit,
// and returns its path.
func editInventory(t *testing.T, l *lab.Lab, edit func(doc map[string]any)) string {
	t.Helper()
	return editInventoryFile(t, l.InventoryPath(), edit)
}

var (
	kprepBinOnce sync.Once
	kprepBinPath string
	kprepBinErr  error
)

// kprepBinary is KPREP_BIN, or kprep built once for this test run.
func kprepBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("KPREP_BIN"); bin != "" {
		return bin
	}
	kprepBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kprep-e2e-")
		if err != nil {
			kprepBinErr = err
			return
		}
		kprepBinPath = filepath.Join(dir, "kprep")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", kprepBinPath, "./cmd/kprep")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			kprepBinErr = fmt.Errorf("go build ./cmd/kprep: %v\n%s", err, out)
		}
	})
	if kprepBinErr != nil {
		t.Fatal(kprepBinErr)
	}
	return kprepBinPath
}

// kprepReport is kprep's -o json report, the fields these tests read.
type kprepReport struct {
	Hosts []struct {
		Name  string
		Error string
		Steps []reportStep
		// Time is the host's time split; Probes counts its probe round trips.
		Time struct{ Probes int }
	}
}

type reportStep struct {
	Name    string
	Status  string
	Error   string
	Changes []struct{ Summary, Action string }
	// Commands is what apply ran for the step.
	Commands []string
	// DurationMs is how long the step took on the host.
	DurationMs int64
}

// kprepCommand is kprep with args, given the lab's sudo password in the
// environment variable the lab's inventory names.
func kprepCommand(t *testing.T, l *lab.Lab, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(kprepBinary(t), args...)
	cmd.Env = os.Environ()
	if pw, err := l.SudoPassword(); err == nil && pw != "" {
		cmd.Env = append(cmd.Env, l.SudoPasswordEnv()+"="+pw)
	}
	return cmd
}

// runKprep runs kprep with -o json, wants the exit code, and returns the
// report.
func runKprep(t *testing.T, l *lab.Lab, wantExit int, args ...string) kprepReport {
	t.Helper()
	cmd := kprepCommand(t, l, append(args, "-o", "json", "--no-color")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kprep %s: %v", strings.Join(args, " "), err)
	}
	var rep kprepReport
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("kprep %s: exit %d, report not JSON (%v)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, jerr, stdout.String(), stderr.String())
	}
	if code != wantExit {
		t.Fatalf("kprep %s: exit %d, want %d\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantExit, rep.failures(), stderr.String())
	}
	return rep
}

func (r kprepReport) failures() string {
	var b strings.Builder
	for _, h := range r.Hosts {
		if h.Error != "" {
			fmt.Fprintf(&b, "%s: %s\n", h.Name, h.Error)
		}
		for _, s := range h.Steps {
			if s.Status == "failed" {
				fmt.Fprintf(&b, "%s %s: %s\n", h.Name, s.Name, s.Error)
			}
		}
	}
	return b.String()
}

func (r kprepReport) requireNoFailures(t *testing.T) {
	t.Helper()
	if f := r.failures(); f != "" {
		t.Fatalf("failures:\n%s", f)
	}
}

// requireUnchanged checks that every step of the phase (the step name's
// prefix, "runtime/") was unchanged on every host and ran no command.
func (r kprepReport) requireUnchanged(t *testing.T, phase string) {
	t.Helper()
	for _, h := range r.Hosts {
		seen := 0
		for _, s := range h.Steps {
			if !strings.HasPrefix(s.Name, phase) {
				continue
			}
			seen++
			if s.Status != "unchanged" || len(s.Commands) > 0 {
				t.Errorf("%s %s: %s, changes %+v, commands %q", h.Name, s.Name, s.Status, s.Changes, s.Commands)
			}
		}
		if seen == 0 {
			t.Errorf("%s: no %s steps in the report", h.Name, phase)
		}
	}
}

func (r kprepReport) step(t *testing.T, host, name string) reportStep {
	t.Helper()
	for _, h := range r.Hosts {
		if h.Name != host {
			continue
		}
		for _, s := range h.Steps {
			if s.Name == name {
				return s
			}
		}
	}
	t.Fatalf("no step %s on %s in the report", name, host)
	return reportStep{}
}

// hostShErr runs a shell line inside a host, without SSH.
func hostShErr(l *lab.Lab, host, line string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, errOut, err := l.Exec(ctx, host, "sh", "-c", line)
	return strings.TrimSpace(string(out) + string(errOut)), err
}

func hostSh(t *testing.T, l *lab.Lab, host, line string) string {
	t.Helper()
	out, err := hostShErr(l, host, line)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", host, line, err, out)
	}
	return out
}

func hostShInput(t *testing.T, l *lab.Lab, host string, stdin []byte, line string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, errOut, err := l.ExecInput(ctx, host, stdin, "sh", "-c", line); err != nil {
		t.Fatalf("%s: %s: %v\n%s%s", host, line, err, out, errOut)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
