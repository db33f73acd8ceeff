package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

func TestBadStepGraphIsRefusedAtStart(t *testing.T) {
	cases := map[string]struct {
		steps []Step
		want  string
	}{
		"unknown after": {
			[]Step{&keyStep{name: "kube/init"}, &keyStep{name: "kube/join", after: []string{"kube/int"}}},
			`step "kube/join" waits for "kube/int", which is not a step`,
		},
		"later after": {
			[]Step{&keyStep{name: "kube/join", after: []string{"kube/init"}}, &keyStep{name: "kube/init"}},
			`step "kube/join" waits for "kube/init", which comes later in the list; move "kube/init" before it`,
		},
		"cycle": {
			[]Step{&keyStep{name: "a/one", after: []string{"a/two"}}, &keyStep{name: "a/two", after: []string{"a/one"}}},
			"steps wait for each other in a cycle: a/one -> a/two -> a/one",
		},
		"itself": {
			[]Step{&keyStep{name: "a/one", after: []string{"a/one"}}},
			`step "a/one" waits for itself`,
		},
		"duplicate": {
			[]Step{&keyStep{name: "a/one"}, &keyStep{name: "a/one"}},
			`step "a/one" is listed twice (steps 1 and 2)`,
		},
		"no phase": {
			[]Step{&keyStep{name: "swap"}},
			`step 1 is named "swap": want phase/concern`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			host := newFakeHost("a", map[string]string{})
			rep, err := Run(context.Background(), testCluster("a"), &fakeDialer{hosts: map[string]*fakeHost{"a": host}},
				Options{Mode: ModeApply, Steps: tc.steps})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if rep != nil || host.roundTrips() != 0 {
				t.Errorf("a refused run touched the host: %d commands", host.roundTrips())
			}
		})
	}
}

// tokenStep joins a worker with a token that the first worker to ask
// makes on the control plane; the others read the same one.
type tokenStep struct {
	made atomic.Int32
}

const testToken = "abcdef.0123456789abcdef"

func (s *tokenStep) Name() string                                     { return "kube/join" }
func (s *tokenStep) Probe(*inventory.Host, *inventory.Cluster) string { return "cat /state/kube/join" }
func (s *tokenStep) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	return h.HasRole(inventory.RoleWorker)
}
func (s *tokenStep) Diff(in Input) ([]Change, error) {
	if strings.TrimSpace(in.State) == "joined" {
		return nil, nil
	}
	return []Change{{Key: "join", Summary: "not joined"}}, nil
}
func (s *tokenStep) Apply(ctx context.Context, t Target, in Input, changes []Change) error {
	token, err := t.Once(ctx, "join-token", func(ctx context.Context) (Shared, error) {
		s.made.Add(1)
		cp, err := t.Peer("cp")
		if err != nil {
			return Shared{}, err
		}
		if _, err := cp.Run(ctx, transport.Command{Line: "set token-made " + testToken}); err != nil {
			return Shared{}, err
		}
		return Shared{Value: testToken, Secret: true, Release: func(ctx context.Context) error {
			_, err := cp.Run(ctx, transport.Command{Line: "set token-deleted " + testToken})
			return err
		}}, nil
	})
	if err != nil {
		return err
	}
	if _, err := t.Run(ctx, transport.Command{Line: "set used-token " + token}); err != nil {
		return err
	}
	if in.Host.Name == "w3" {
		return fmt.Errorf("w3 could not join with %s", token)
	}
	_, err = t.Run(ctx, transport.Command{Line: "set kube/join joined"})
	return err
}

func TestOnceValueIsMadeOnceReadByAllAndNeverShown(t *testing.T) {
	c := testCluster("cp", "w1", "w2", "w3")
	hosts := map[string]*fakeHost{}
	for _, n := range []string{"cp", "w1", "w2", "w3"} {
		hosts[n] = newFakeHost(n, map[string]string{})
	}
	step := &tokenStep{}
	d := &fakeDialer{hosts: hosts, locking: true}
	rep := runEngine(t, context.Background(), c, d, Options{Mode: ModeApply, Steps: []Step{step}})

	if n := step.made.Load(); n != 1 {
		t.Errorf("the token was made %d times, want once", n)
	}
	for _, w := range []string{"w1", "w2", "w3"} {
		if got := hosts[w].state["used-token"]; got != testToken {
			t.Errorf("%s used %q, want the shared token", w, got)
		}
		if !cmp.Equal(hosts[w].secrets, []string{testToken}) {
			t.Errorf("%s's connection was told to mask %q, want the token", w, hosts[w].secrets)
		}
	}
	if hosts["cp"].state["token-deleted"] != testToken {
		t.Errorf("the token was not released at the end: cp state %v", hosts["cp"].state)
	}
	if n := d.dialsOf("cp"); n != 1 {
		t.Errorf("cp was dialled %d times, want once (shared by its own work and its peers)", n)
	}
	// The token is nowhere in what the run shows or logs: report (JSON,
	// commands, errors) and every host's run log.
	out, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"report": string(out), "w1 run log": hosts["w1"].runLog.String(),
		"w3 run log": hosts["w3"].runLog.String(), "cp run log": hosts["cp"].runLog.String()} {
		if strings.Contains(text, testToken) {
			t.Errorf("%s shows the token:\n%s", what, text)
		}
	}
	w3 := rep.Hosts[3].Steps[0]
	if w3.Status != StatusFailed || w3.Error != "w3 could not join with ***" {
		t.Errorf("w3: %s %q, want a failure with the token masked", w3.Status, w3.Error)
	}
	// The peer's commands are in the step's commands, named by the peer.
	var peerCmds []string
	for _, h := range rep.Hosts[1:] {
		for _, c := range h.Steps[0].Commands {
			if strings.HasPrefix(c, "cp: ") {
				peerCmds = append(peerCmds, h.Name+" "+c)
			}
		}
	}
	if len(peerCmds) != 1 || !strings.HasSuffix(peerCmds[0], "cp: set token-made ***") {
		t.Errorf("peer commands in the report = %q, want the one token-made, masked", peerCmds)
	}
	if !strings.Contains(hosts["w1"].runLog.String()+hosts["w2"].runLog.String()+hosts["w3"].runLog.String(), `"cp: set token-made ***"`) {
		t.Errorf("the peer command is in no worker's run log")
	}
}

func TestPlanMakesNoSharedValues(t *testing.T) {
	c := testCluster("cp", "w1", "w2")
	hosts := map[string]*fakeHost{}
	for _, n := range []string{"cp", "w1", "w2"} {
		hosts[n] = newFakeHost(n, map[string]string{})
	}
	step := &tokenStep{}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: hosts}, Options{Mode: ModePlan, Steps: []Step{step}})
	if !rep.Pending() || step.made.Load() != 0 {
		t.Errorf("plan: pending %v, token made %d times; want pending and none", rep.Pending(), step.made.Load())
	}
	for n, h := range hosts {
		if h.roundTrips() != 1 {
			t.Errorf("%s: %d round trips in plan, want 1", n, h.roundTrips())
		}
	}
}

// serialStep records how many hosts are inside its Apply at once.
type serialStep struct {
	keyStep
	serial bool
	// arrive, when set, is a barrier every host's Apply waits at: with
	// serial off it proves the hosts do overlap.
	arrive *sync.WaitGroup
	// probed, when set, is waited for before the first change: every host
	// has probed by then, so every later host's probe is stale.
	probed  chan struct{}
	inside  atomic.Int32
	maxSeen atomic.Int32
	order   eventLog
}

func (s *serialStep) Serial() bool { return s.serial }

func (s *serialStep) Apply(ctx context.Context, t Target, in Input, changes []Change) error {
	n := s.inside.Add(1)
	defer s.inside.Add(-1)
	for {
		old := s.maxSeen.Load()
		if n <= old || s.maxSeen.CompareAndSwap(old, n) {
			break
		}
	}
	s.order.add(in.Host.Name)
	if s.probed != nil {
		<-s.probed
	}
	if s.arrive != nil {
		s.arrive.Done()
		s.arrive.Wait()
	}
	for range 100 {
		runtime.Gosched() // let any other host that could enter do so
	}
	_, err := t.Run(ctx, transport.Command{Line: "set " + s.name + " " + s.want})
	return err
}

func TestSerialStepNeverOverlapsItself(t *testing.T) {
	names := []string{"cp1", "cp2", "cp3", "cp4"}
	run := func(serial bool) (*serialStep, map[string]*fakeHost, *Report) {
		c := testCluster(names...)
		hosts := map[string]*fakeHost{}
		for _, n := range names {
			hosts[n] = newFakeHost(n, map[string]string{})
		}
		s := &serialStep{keyStep: keyStep{name: "kube/join-control-plane", want: "joined"}, serial: serial}
		if !serial {
			s.arrive = &sync.WaitGroup{}
			s.arrive.Add(len(names))
		} else {
			s.probed = make(chan struct{})
			var probes atomic.Int32
			for _, h := range hosts {
				h.onRun = func() {
					if probes.Add(1) == int32(len(names)) {
						close(s.probed) // the 4th command of the run is the last first probe
					}
				}
			}
		}
		rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: hosts}, Options{Mode: ModeApply, Steps: []Step{s}})
		if rep.Failed() {
			t.Fatalf("serial=%v: failed: %+v", serial, rep.Hosts)
		}
		return s, hosts, rep
	}
	// The measurement works: without Serial, all four are inside at once.
	if s, _, _ := run(false); s.maxSeen.Load() != int32(len(names)) {
		t.Fatalf("without Serial at most %d hosts were inside Apply, want %d", s.maxSeen.Load(), len(names))
	}
	s, hosts, _ := run(true)
	if got := s.maxSeen.Load(); got != 1 {
		t.Errorf("a Serial step had %d hosts inside Apply at once, want 1 (order %v)", got, s.order.events)
	}
	// Each host after the first waited while another changed the step, so
	// it probed again before it decided: 1 probe + reprobe + apply + verify.
	first := s.order.events[0]
	for n, h := range hosts {
		want := 4
		if n == first {
			want = 3
		}
		if got := h.roundTrips(); got != want {
			t.Errorf("%s: %d round trips, want %d", n, got, want)
		}
	}
}

func TestStepThatWaitedSeesFreshState(t *testing.T) {
	// The worker's join reads what init left on it (the fake's shared key
	// stands for "the cluster answers"); it must decide after init ran.
	c := testCluster("cp", "w1")
	cp := newFakeHost("cp", map[string]string{})
	w1 := newFakeHost("w1", map[string]string{})
	steps := []Step{
		&keyStep{name: "kube/init", want: "done", only: []string{"cp"}},
		&keyStep{name: "kube/join", want: "done", only: []string{"w1"}, after: []string{"kube/init"}},
	}
	// join wants kube/join == done on w1. To make it depend on init, the
	// fake's "set kube/init" on cp also marks it done on w1.
	cp.onSet = func(key string) {
		if key == "kube/init" {
			w1.mu.Lock()
			w1.state["kube/join"] = "done"
			w1.mu.Unlock()
		}
	}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"cp": cp, "w1": w1}},
		Options{Mode: ModeApply, Steps: steps})
	if diff := cmp.Diff(map[string]Status{"kube/join": StatusUnchanged}, statuses(rep.Hosts[1])); diff != "" {
		t.Errorf("join decided on a stale probe (-want +got):\n%s", diff)
	}
	if n := len(w1.changingCommands()); n != 0 {
		t.Errorf("w1 ran %v", w1.changingCommands())
	}

	// When init changes nothing, join's probe is not stale: no re-probe.
	rep = runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"cp": cp, "w1": w1}},
		Options{Mode: ModeApply, Steps: steps})
	if rep.Failed() {
		t.Fatal(rep.Hosts)
	}
	before := w1.roundTrips()
	runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"cp": cp, "w1": w1}},
		Options{Mode: ModeApply, Steps: steps})
	if n := w1.roundTrips() - before; n != 1 {
		t.Errorf("a rerun cost w1 %d round trips, want 1", n)
	}
}

// panicStep panics in Diff on one host.
type panicStep struct{ keyStep }

func (s *panicStep) Diff(in Input) ([]Change, error) {
	if in.Host.Name == "b" {
		panic("boom")
	}
	return s.keyStep.Diff(in)
}

func TestPanickingStepFailsAloneOnItsHost(t *testing.T) {
	for _, debug := range []bool{false, true} {
		c := testCluster("a", "b", "c")
		hosts := map[string]*fakeHost{}
		for _, n := range []string{"a", "b", "c"} {
			hosts[n] = newFakeHost(n, map[string]string{})
		}
		steps := []Step{&panicStep{keyStep{name: "p/one", want: "x"}}, &keyStep{name: "p/two", want: "y"}}
		rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: hosts}, Options{Mode: ModeApply, Steps: steps, Debug: debug})
		for _, i := range []int{0, 2} {
			if diff := cmp.Diff(map[string]Status{"p/one": StatusChanged, "p/two": StatusChanged}, statuses(rep.Hosts[i])); diff != "" {
				t.Errorf("host %s (-want +got):\n%s", rep.Hosts[i].Name, diff)
			}
		}
		b := rep.Hosts[1]
		if b.Steps[0].Status != StatusFailed || !strings.Contains(b.Steps[0].Error, "p/one.Diff panicked: boom") {
			t.Errorf("b: %s %q", b.Steps[0].Status, b.Steps[0].Error)
		}
		if hasStack := strings.Contains(b.Steps[0].Error, "goroutine "); hasStack != debug {
			t.Errorf("debug=%v: stack in the error = %v", debug, hasStack)
		}
		if b.Steps[1].Status != StatusSkipped {
			t.Errorf("b: p/two is %s, want skipped", b.Steps[1].Status)
		}
	}
}

func TestProbeSectionsAreCheckedStrictly(t *testing.T) {
	c := testCluster("a")
	steps := []Step{&keyStep{name: "p/one", want: "x"}, &keyStep{name: "p/two", want: "x"}, &keyStep{name: "p/three", want: "x"}}

	host := newFakeHost("a", map[string]string{"p/one": "x", "p/two": "x", "p/three": "x"})
	host.probeStatus["p/two"] = 2
	host.probeStderr["p/two"] = "cat: /state/p/two: Permission denied"
	host.dropSection["p/three"] = true
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}}, Options{Mode: ModePlan, Steps: steps})
	got := rep.Hosts[0].Steps
	if got[0].Status != StatusUnchanged {
		t.Errorf("p/one: %s", got[0].Status)
	}
	if got[1].Status != StatusFailed || got[1].Error != "the probe exited 2: cat: /state/p/two: Permission denied" {
		t.Errorf("p/two: %s %q", got[1].Status, got[1].Error)
	}
	if len(got) != 3 || got[2].Status != StatusSkipped {
		t.Errorf("p/three should be skipped after p/two failed: %+v", got)
	}

	// A section missing from the re-probe after a change fails the
	// verification; the first probe's section is not used in its place.
	host = newFakeHost("a", map[string]string{"p/one": "bad"})
	host.onSet = func(key string) {
		host.mu.Lock()
		host.dropSection["p/one"] = true
		host.mu.Unlock()
	}
	rep = runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}},
		Options{Mode: ModeApply, Steps: []Step{&keyStep{name: "p/one", want: "x"}}})
	if s := rep.Hosts[0].Steps[0]; s.Status != StatusFailed || !strings.Contains(s.Error, "verify: the probe printed nothing for this step") {
		t.Errorf("p/one: %s %q", s.Status, s.Error)
	}
}

func TestReverseRunsTeardownBackwards(t *testing.T) {
	// Declared as they are built: init on cp, then join on the workers.
	// Reversed: the workers' step first on every worker, then cp's.
	c := testCluster("cp", "w1", "w2")
	hosts := map[string]*fakeHost{}
	for _, n := range []string{"cp", "w1", "w2"} {
		hosts[n] = newFakeHost(n, map[string]string{})
	}
	events := &eventLog{}
	steps := []Step{
		&keyStep{name: "kube/reset-control-plane", want: "gone", only: []string{"cp"}, applied: events},
		&keyStep{name: "kube/reset-worker", want: "gone", only: []string{"w1", "w2"}, after: []string{"kube/reset-control-plane"}, applied: events},
	}
	for _, concurrency := range []int{1, 3} {
		rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: hosts}, Options{Mode: ModeApply, Reverse: true, Concurrency: concurrency, Steps: steps})
		if rep.Failed() {
			t.Fatal(rep.Hosts)
		}
		cp := events.index("cp:kube/reset-control-plane:start")
		for _, w := range []string{"w1", "w2"} {
			if end := events.index(w + ":kube/reset-worker:end"); end < 0 || end > cp {
				t.Errorf("concurrency %d: %s was reset at %d, after cp at %d: %v", concurrency, w, end, cp, events.events)
			}
		}
		for _, h := range hosts {
			h.state = map[string]string{}
		}
		events.events = nil
	}
}

func TestPeerIsDialledOncePerRun(t *testing.T) {
	c := testCluster("cp", "w1", "w2", "w3")
	hosts := map[string]*fakeHost{}
	for _, n := range []string{"cp", "w1", "w2", "w3"} {
		hosts[n] = newFakeHost(n, map[string]string{})
	}
	var errs []error
	var mu sync.Mutex
	step := &peerStep{peer: "cp", check: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }}
	d := &fakeDialer{hosts: hosts}
	// cp is outside the run: three workers reach it at once.
	rep := runEngine(t, context.Background(), c, d, Options{Mode: ModeApply, Hosts: []*inventory.Host{&c.Hosts[1], &c.Hosts[2], &c.Hosts[3]}, Steps: []Step{step}})
	if rep.Failed() || len(errs) > 0 {
		t.Fatalf("%v %+v", errs, rep.Hosts)
	}
	if n := d.dialsOf("cp"); n != 1 {
		t.Errorf("cp dialled %d times, want 1", n)
	}
	if n := len(hosts["cp"].changingCommands()); n != 3 {
		t.Errorf("cp ran %d commands, want one per worker", n)
	}
	for _, h := range rep.Hosts {
		if !cmp.Equal(h.Steps[0].Commands, []string{"cp: set token-read yes", "set kube/join yes"}) {
			t.Errorf("%s commands = %q", h.Name, h.Steps[0].Commands)
		}
	}
}

func TestPeerUnknownHost(t *testing.T) {
	c := testCluster("cp", "w1")
	hosts := map[string]*fakeHost{"cp": newFakeHost("cp", map[string]string{}), "w1": newFakeHost("w1", map[string]string{})}
	var got error
	step := &peerStep{peer: "cp9", check: func(err error) { got = err }}
	runEngine(t, context.Background(), c, &fakeDialer{hosts: hosts}, Options{Mode: ModeApply, Hosts: []*inventory.Host{&c.Hosts[1]}, Steps: []Step{step}})
	if got == nil || got.Error() != `no host "cp9" in the inventory` {
		t.Errorf("err = %v", got)
	}
}
