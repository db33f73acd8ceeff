package e2e

// The engine's cross-host orchestration on real hosts: a step on lab1
// that others wait for, a one-at-a-time step after it on lab2 and lab3
// that makes a secret once on lab1 through Peer, and what the run logs
// and the report then say. The steps are the test's own: the engine knows
// no step, so this proves the engine, and the kube phase's steps rely on it.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

const orchestrationDir = "/var/lib/kprep-e2e"

// firstStep stands for kubeadm init: it runs on lab1 only.
type firstStep struct{}

func (firstStep) Name() string { return "e2e/first" }
func (firstStep) AppliesTo(h *inventory.Host, _ *inventory.Cluster) bool {
	return h.Name == "lab1"
}
func (firstStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return shell.File("done", orchestrationDir+"/first")
}
func (firstStep) Diff(in provision.Input) ([]provision.Planned[struct{}], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	if _, ok := st.File("done"); ok {
		return nil, nil
	}
	return []provision.Planned[struct{}]{{Key: "first", Summary: "lab1 has not run the first step"}}, nil
}
func (firstStep) Apply(ctx context.Context, t provision.Target, in provision.Input, _ []provision.Planned[struct{}]) error {
	_, err := t.Run(ctx, transport.Command{Line: "mkdir -p " + orchestrationDir + " && echo done > " + orchestrationDir + "/first"})
	return err
}

// joinStep stands for a control-plane join: after the first step, one host
// at a time, with a secret made once on lab1 through Peer.
type joinStep struct{}

func (joinStep) Name() string    { return "e2e/join" }
func (joinStep) After() []string { return []string{"e2e/first"} }
func (joinStep) Serial() bool    { return true }
func (joinStep) AppliesTo(h *inventory.Host, _ *inventory.Cluster) bool {
	return h.Name != "lab1"
}
func (joinStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return shell.File("joined", orchestrationDir+"/joined")
}
func (joinStep) Diff(in provision.Input) ([]provision.Planned[struct{}], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	if _, ok := st.File("joined"); ok {
		return nil, nil
	}
	return []provision.Planned[struct{}]{{Key: "join", Summary: in.Host.Name + " has not joined"}}, nil
}
func (joinStep) Apply(ctx context.Context, t provision.Target, in provision.Input, _ []provision.Planned[struct{}]) error {
	lab1, err := t.Peer("lab1")
	if err != nil {
		return err
	}
	token, err := t.Once(ctx, "e2e-token", func(ctx context.Context) (provision.Shared, error) {
		res, err := lab1.Run(ctx, transport.Command{Line: "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'"})
		if err != nil {
			return provision.Shared{}, err
		}
		return provision.Shared{Value: string(res.Stdout), Secret: true, Release: func(ctx context.Context) error {
			_, err := lab1.Run(ctx, transport.Command{Line: "echo released >> " + orchestrationDir + "/tokens"})
			return err
		}}, nil
	})
	if err != nil {
		return err
	}
	if len(token) != 32 {
		return fmt.Errorf("token has %d characters", len(token))
	}
	// The token goes on a command line (masked in every log) and into a
	// file on the joining host.
	if _, err := lab1.Run(ctx, transport.Command{Line: "echo " + in.Host.Name + " " + token + " >> " + orchestrationDir + "/tokens"}); err != nil {
		return err
	}
	_, err = t.Run(ctx, transport.Command{Line: "mkdir -p " + orchestrationDir + " && echo " + token + " > " + orchestrationDir + "/joined"})
	return err
}

// logLines keeps what -v would print: every command line as the
// transport logs it.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(c transport.CommandLog) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, c.Host+": "+c.Line)
}

func TestOrchestrationOnLabHosts(t *testing.T) {
	l := bootLab(t, "centos7", "rocky9", "openeuler22")
	c := loadLabInventory(t, l)
	steps := []provision.Step{provision.Typed(firstStep{}), provision.Typed(joinStep{})}
	verbose := &logLines{}
	run := func(mode provision.Mode) (*provision.Report, *countingDialer) {
		d := &countingDialer{SSHDialer: provision.SSHDialer{LookupEnv: labEnv(l), LogCommand: verbose.add}}
		rep, err := provision.Run(context.Background(), c, d, provision.Options{Mode: mode, Steps: steps})
		if err != nil {
			t.Fatal(err)
		}
		return rep, d
	}

	rep, d := run(provision.ModeApply)
	if rep.Failed() {
		t.Fatalf("apply failed: %+v", rep.Hosts)
	}
	token := strings.TrimSpace(hostSh(t, l, "lab2", "cat "+orchestrationDir+"/joined"))
	if token3 := strings.TrimSpace(hostSh(t, l, "lab3", "cat "+orchestrationDir+"/joined")); token3 != token || len(token) != 32 {
		t.Fatalf("lab2 and lab3 joined with %q and %q: want one token made once", token, token3)
	}
	tokens := hostSh(t, l, "lab1", "cat "+orchestrationDir+"/tokens")
	if !strings.HasSuffix(strings.TrimSpace(tokens), "released") {
		t.Errorf("the token was not released at the end of the run:\n%s", tokens)
	}

	// Order, read from the hosts' own run logs: lab1's first step ended
	// before either join started, and the joins did not overlap.
	type span struct{ start, end time.Time }
	spans := map[string]span{}
	for host, step := range map[string]string{"lab1": "e2e/first", "lab2": "e2e/join", "lab3": "e2e/join"} {
		raw := hostSh(t, l, host, "tail -n1 /var/lib/kprep/run.log")
		if strings.Contains(raw, token) {
			t.Errorf("%s's run log shows the token:\n%s", host, raw)
		}
		var rec struct {
			Steps []struct {
				Name       string
				Start      time.Time
				DurationMs int64
				Commands   []string
			}
		}
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			t.Fatalf("%s run log %q: %v", host, raw, err)
		}
		for _, s := range rec.Steps {
			if s.Name == step {
				spans[host] = span{s.Start, s.Start.Add(time.Duration(s.DurationMs) * time.Millisecond)}
				if host != "lab1" && !containsPrefix(s.Commands, "lab1: echo "+host+" *** >> ") {
					t.Errorf("%s's run log lacks its Peer command on lab1 (masked): %q", host, s.Commands)
				}
			}
		}
	}
	if len(spans) != 3 {
		t.Fatalf("run logs: %+v", spans)
	}
	for _, w := range []string{"lab2", "lab3"} {
		if spans[w].start.Before(spans["lab1"].end) {
			t.Errorf("%s joined at %s, before lab1's first step ended at %s", w, spans[w].start, spans["lab1"].end)
		}
	}
	a, b := spans["lab2"], spans["lab3"]
	if a.start.Before(b.end) && b.start.Before(a.end) {
		t.Errorf("the one-at-a-time step overlapped: lab2 %v, lab3 %v", a, b)
	}
	// Both joiners waited while another host changed what they wait for
	// (lab1's first step; the second also the first joiner's step), so each
	// probed again before deciding: lock+probe, re-probe, join, verify. The
	// re-probe and the verify go through the session that holds the lock,
	// so the host sees two command sessions: that one and the join.
	for _, hr := range rep.Hosts {
		if hr.Name == "lab1" {
			continue
		}
		if hr.Time.Probes != 3 {
			t.Errorf("%s: %d probe round trips, want 3 (the first, one re-probe after its waits, the verify)", hr.Name, hr.Time.Probes)
		}
		// Stats counts completed command sessions; the lock session is
		// counted when it ends, at the end of the run.
		if got := d.conns[hr.Name].Stats().Commands; got != 2 {
			t.Errorf("%s ran %d command sessions, want 2 (the lock session and the join)", hr.Name, got)
		}
	}
	if got := d.conns["lab1"].Stats().Commands; got < 3 {
		t.Errorf("lab1 ran %d command sessions, want its own 3 and the peers' commands", got)
	}
	for _, h := range rep.Hosts {
		for _, s := range h.Steps {
			for _, line := range s.Commands {
				if strings.Contains(line, token) {
					t.Errorf("report shows the token: %s %s %q", h.Name, s.Name, line)
				}
			}
		}
	}
	verbose.mu.Lock()
	for _, line := range verbose.lines {
		if strings.Contains(line, token) {
			t.Errorf("-v output shows the token: %s", line)
		}
	}
	verbose.mu.Unlock()

	// A rerun changes nothing: one round trip per host, no re-probe.
	rep, d = run(provision.ModeApply)
	for _, h := range rep.Hosts {
		for _, s := range h.Steps {
			if s.Status != provision.StatusUnchanged || len(s.Commands) > 0 {
				t.Errorf("rerun: %s %s is %s, ran %q", h.Name, s.Name, s.Status, s.Commands)
			}
		}
		if got := d.conns[h.Name].Stats().Commands; got != 1 {
			t.Errorf("rerun: %s ran %d command sessions, want 1 (the lock and probe session)", h.Name, got)
		}
	}
	plan, _ := run(provision.ModePlan)
	if plan.Pending() || plan.Failed() {
		t.Errorf("plan after the rerun: %+v", plan.Hosts)
	}
}

func containsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
