package provision

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

func statuses(h HostResult) map[string]Status {
	out := map[string]Status{}
	for _, s := range h.Steps {
		out[s.Name] = s.Status
	}
	return out
}

func TestApplyChangesOnlyWhatDiffersAndVerifies(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{"p/one": "good", "p/two": "bad", "p/three": "good"})
	steps := []Step{&keyStep{name: "p/one", want: "good"}, &keyStep{name: "p/two", want: "good"}, &keyStep{name: "p/three", want: "good"}}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}}, Options{Mode: ModeApply, Steps: steps})

	want := map[string]Status{"p/one": StatusUnchanged, "p/two": StatusChanged, "p/three": StatusUnchanged}
	if diff := cmp.Diff(want, statuses(rep.Hosts[0])); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	if got := host.changingCommands(); !cmp.Equal(got, []string{"set p/two good"}) {
		t.Errorf("changing commands = %q, want only the one for p/two", got)
	}
	// One probe, one change, one re-probe of p/two and the steps after it.
	if n := host.roundTrips(); n != 3 {
		t.Errorf("round trips = %d, want 3", n)
	}
	if got := rep.Hosts[0].Steps[1].Commands; !cmp.Equal(got, []string{"set p/two good"}) {
		t.Errorf("step commands = %q", got)
	}

	// The second run finds nothing to do and runs one command: the probe.
	rep = runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}}, Options{Mode: ModeApply, Steps: steps})
	for _, s := range rep.Hosts[0].Steps {
		if s.Status != StatusUnchanged {
			t.Errorf("rerun: %s is %s, want unchanged", s.Name, s.Status)
		}
	}
	if n := host.roundTrips(); n != 4 {
		t.Errorf("rerun round trips = %d, want 1 more (4)", n-3)
	}
}

func TestPlanChangesNothing(t *testing.T) {
	c := testCluster("a", "b")
	hosts := map[string]*fakeHost{
		"a": newFakeHost("a", map[string]string{"p/one": "bad"}),
		"b": newFakeHost("b", map[string]string{"p/one": "good"}),
	}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: hosts}, Options{Mode: ModePlan, Steps: []Step{&keyStep{name: "p/one", want: "good"}}})
	if got := rep.Hosts[0].Steps[0]; got.Status != StatusPending || got.Changes[0].Summary != `p/one is "bad", want "good"` {
		t.Errorf("host a: %+v", got)
	}
	if got := rep.Hosts[1].Steps[0].Status; got != StatusUnchanged {
		t.Errorf("host b: %s", got)
	}
	if !rep.Pending() || rep.Failed() {
		t.Errorf("Pending=%v Failed=%v, want true false", rep.Pending(), rep.Failed())
	}
	for name, h := range hosts {
		if h.roundTrips() != 1 || len(h.changingCommands()) != 0 {
			t.Errorf("%s: %d round trips, changing %q; want 1 and none", name, h.roundTrips(), h.changingCommands())
		}
	}
}

func TestFailureIsIsolatedToItsHost(t *testing.T) {
	c := testCluster("a", "b", "c")
	hosts := map[string]*fakeHost{
		"a": newFakeHost("a", map[string]string{}),
		"b": newFakeHost("b", map[string]string{}),
		"c": newFakeHost("c", map[string]string{}),
	}
	hosts["b"].failSet["p/one"] = true
	steps := []Step{&keyStep{name: "p/one", want: "x"}, &keyStep{name: "p/two", want: "y"}}
	d := &fakeDialer{hosts: hosts, fail: map[string]error{"c": errors.New("connection refused")}}
	rep := runEngine(t, context.Background(), c, d, Options{Mode: ModeApply, Steps: steps})

	if diff := cmp.Diff(map[string]Status{"p/one": StatusChanged, "p/two": StatusChanged}, statuses(rep.Hosts[0])); diff != "" {
		t.Errorf("host a (-want +got):\n%s", diff)
	}
	b := rep.Hosts[1]
	if diff := cmp.Diff(map[string]Status{"p/one": StatusFailed, "p/two": StatusSkipped}, statuses(b)); diff != "" {
		t.Errorf("host b (-want +got):\n%s", diff)
	}
	if !strings.Contains(b.Steps[0].Error, "permission denied") || b.Steps[1].Error != "an earlier step failed: p/one" {
		t.Errorf("host b errors: %q / %q", b.Steps[0].Error, b.Steps[1].Error)
	}
	if got := rep.Hosts[2].Error; got != "connect: connection refused" {
		t.Errorf("host c error = %q", got)
	}
	if !rep.Failed() {
		t.Error("report should say failed")
	}
}

func TestApplyThatDoesNotConvergeFails(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{"p/one": "bad"})
	host.broken["p/one"] = true
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}},
		Options{Mode: ModeApply, Steps: []Step{&keyStep{name: "p/one", want: "good"}}})
	got := rep.Hosts[0].Steps[0]
	if got.Status != StatusFailed || got.Error != `still differs after apply: p/one is "bad", want "good"` {
		t.Errorf("got %s %q", got.Status, got.Error)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	names := []string{"h1", "h2", "h3", "h4", "h5", "h6", "h7"}
	c := testCluster(names...)
	var inFlight, maxInFlight atomic.Int32
	hosts := map[string]*fakeHost{}
	for _, n := range names {
		h := newFakeHost(n, map[string]string{})
		h.onRun = func() {
			now := inFlight.Add(1)
			for {
				old := maxInFlight.Load()
				if now <= old || maxInFlight.CompareAndSwap(old, now) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond) // give other hosts a chance to overlap
			inFlight.Add(-1)
		}
		hosts[n] = h
	}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: hosts},
		Options{Mode: ModeApply, Concurrency: 2, Steps: []Step{&keyStep{name: "p/one", want: "x"}}})
	if rep.Failed() {
		t.Fatalf("run failed: %+v", rep.Hosts)
	}
	if got := maxInFlight.Load(); got > 2 || got < 1 {
		t.Errorf("at most %d hosts ran commands at once, want 1..2", got)
	}
}

func TestCancelReportsHostsLeftMidStep(t *testing.T) {
	c := testCluster("a", "b")
	hosts := map[string]*fakeHost{"a": newFakeHost("a", map[string]string{}), "b": newFakeHost("b", map[string]string{})}
	hosts["a"].block["p/slow"] = true
	hosts["b"].block["p/slow"] = true
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 2)
	obs := &startObserver{step: "p/slow", started: started}
	go func() {
		<-started
		<-started
		cancel()
	}()
	rep := runEngine(t, ctx, c, &fakeDialer{hosts: hosts}, Options{Mode: ModeApply, Observer: obs,
		Steps: []Step{&keyStep{name: "p/slow", want: "x"}, &keyStep{name: "p/next", want: "y"}}})
	for _, h := range rep.Hosts {
		if h.Interrupted != "p/slow" {
			t.Errorf("%s: Interrupted = %q, want p/slow", h.Name, h.Interrupted)
		}
		if diff := cmp.Diff(map[string]Status{"p/slow": StatusFailed, "p/next": StatusSkipped}, statuses(h)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", h.Name, diff)
		}
	}
}

type startObserver struct {
	NopObserver
	step    string
	started chan struct{}
}

func (o *startObserver) StepStarted(host, step string) {
	if step == o.step {
		o.started <- struct{}{}
	}
}

func TestFailFastStopsOtherHosts(t *testing.T) {
	c := testCluster("a", "b")
	hosts := map[string]*fakeHost{"a": newFakeHost("a", map[string]string{}), "b": newFakeHost("b", map[string]string{})}
	hosts["a"].failSet["p/one"] = true
	hosts["b"].block["p/one"] = true
	// a fails only once b is inside the step, so b has something to stop.
	bStarted := make(chan struct{})
	hosts["a"].gate["p/one"] = bStarted
	obs := &startObserver{step: "p/one", started: make(chan struct{}, 2)}
	go func() {
		<-obs.started
		<-obs.started
		close(bStarted)
	}()
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: hosts}, Options{Mode: ModeApply, FailFast: true, Observer: obs,
		Steps: []Step{&keyStep{name: "p/one", want: "x"}}})
	if rep.Hosts[1].Interrupted != "p/one" {
		t.Errorf("host b was not stopped: %+v", rep.Hosts[1])
	}
}

func TestCrossHostOrder(t *testing.T) {
	// join on every worker waits for init on the control plane, even with
	// one host at a time and the workers listed first.
	for _, concurrency := range []int{1, 3} {
		c := testCluster("cp", "w1", "w2")
		c.Hosts[0], c.Hosts[2] = c.Hosts[2], c.Hosts[0]
		hosts := map[string]*fakeHost{}
		for _, n := range []string{"cp", "w1", "w2"} {
			hosts[n] = newFakeHost(n, map[string]string{})
		}
		events := &eventLog{}
		steps := []Step{
			&keyStep{name: "kube/init", want: "done", only: []string{"cp"}, applied: events},
			&keyStep{name: "kube/join", want: "done", only: []string{"w1", "w2"}, after: []string{"kube/init"}, applied: events},
		}
		rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: hosts}, Options{Mode: ModeApply, Concurrency: concurrency, Steps: steps})
		if rep.Failed() {
			t.Fatalf("concurrency %d: failed: %+v", concurrency, rep.Hosts)
		}
		initEnd := events.index("cp:kube/init:end")
		for _, w := range []string{"w1", "w2"} {
			if j := events.index(w + ":kube/join:start"); j < initEnd || initEnd < 0 {
				t.Errorf("concurrency %d: %s joined at %d, before init ended at %d: %v", concurrency, w, j, initEnd, events.events)
			}
		}
	}
}

func TestCrossHostOrderSkipsWhenPrerequisiteFails(t *testing.T) {
	c := testCluster("cp", "w1")
	hosts := map[string]*fakeHost{"cp": newFakeHost("cp", map[string]string{}), "w1": newFakeHost("w1", map[string]string{})}
	hosts["cp"].failSet["kube/init"] = true
	steps := []Step{
		&keyStep{name: "kube/init", want: "done", only: []string{"cp"}},
		&keyStep{name: "kube/join", want: "done", only: []string{"w1"}, after: []string{"kube/init"}},
	}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: hosts}, Options{Mode: ModeApply, Steps: steps})
	got := rep.Hosts[1].Steps[0]
	if got.Status != StatusSkipped || got.Error != "waits for kube/init, which did not succeed on cp" {
		t.Errorf("join: %s %q", got.Status, got.Error)
	}
	if n := len(hosts["w1"].changingCommands()); n != 0 {
		t.Errorf("w1 ran %d changing commands", n)
	}
}

func TestUnknownOSFailsHostBeforeAnyStep(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{})
	host.facts = "os_id=alpine\nos_version=3.20\narch=x86_64\ninit=systemd\n"
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}},
		Options{Mode: ModeApply, Steps: []Step{&keyStep{name: "p/one", want: "x"}}})
	if h := rep.Hosts[0]; !strings.HasPrefix(h.Error, `unsupported operating system "alpine 3.20"`) || len(h.Steps) != 0 {
		t.Errorf("got error %q, steps %v", h.Error, h.Steps)
	}
	if n := len(host.changingCommands()); n != 0 {
		t.Errorf("ran %d changing commands", n)
	}
}

func TestPeerReachesHostsOutsideTheRun(t *testing.T) {
	c := testCluster("cp", "w1")
	hosts := map[string]*fakeHost{"cp": newFakeHost("cp", map[string]string{}), "w1": newFakeHost("w1", map[string]string{})}
	var mu sync.Mutex
	var peerErr error
	step := &peerStep{peer: "cp", check: func(err error) { mu.Lock(); peerErr = err; mu.Unlock() }}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: hosts},
		Options{Mode: ModeApply, Hosts: []*inventory.Host{&c.Hosts[1]}, Steps: []Step{step}})
	if rep.Failed() || peerErr != nil {
		t.Fatalf("failed: %v %+v", peerErr, rep.Hosts)
	}
	if got := hosts["cp"].changingCommands(); !cmp.Equal(got, []string{"set token-read yes"}) {
		t.Errorf("cp commands = %q", got)
	}
}

// onceStep is a keyStep whose probe the engine asks once per run.
type onceStep struct{ keyStep }

func (*onceStep) ProbedOnce() bool { return true }

func TestProbedOnceStepKeepsItsFirstAnswerThroughReprobes(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{"p/one": "bad", "p/two": "bad", "p/registry": "good", "p/after": "good"})
	steps := []Step{&keyStep{name: "p/one", want: "good"}, &keyStep{name: "p/two", want: "good"},
		&onceStep{keyStep{name: "p/registry", want: "good"}}, &keyStep{name: "p/after", want: "good"}}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}}, Options{Mode: ModeApply, Steps: steps})
	want := map[string]Status{"p/one": StatusChanged, "p/two": StatusChanged, "p/registry": StatusUnchanged, "p/after": StatusUnchanged}
	if diff := cmp.Diff(want, statuses(rep.Hosts[0])); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	// The first probe; after p/one and p/two each a probe of that step and
	// the next; then p/after before it decides, its state older than the
	// changes. p/registry is only in the first.
	probes := len(host.probes())
	var registry, after int
	for _, cmd := range host.probes() {
		if strings.Contains(cmd, "begin p/registry'") {
			registry++
		}
		if strings.Contains(cmd, "begin p/after'") {
			after++
		}
	}
	if probes != 4 || registry != 1 || after != 2 {
		t.Errorf("%d probes, p/registry in %d, p/after in %d; want 4, 1, 2", probes, registry, after)
	}
}

// sideEffectStep is a keyStep whose apply also sets another step's key, as
// installing a package changes what a later step finds.
type sideEffectStep struct {
	keyStep
	alsoSets string
}

func (s *sideEffectStep) Apply(ctx context.Context, t Target, in Input, changes []Change) error {
	if err := s.keyStep.Apply(ctx, t, in, changes); err != nil {
		return err
	}
	_, err := t.Run(ctx, transport.Command{Line: "set " + s.alsoSets + " good"})
	return err
}

// A change is verified with a probe of that step and the next only; a later
// step still decides on the host as the change left it, probed again when
// its turn comes, and no step is probed more than once per change.
func TestLaterStepsDecideOnTheHostAnEarlierChangeLeft(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{"p/a": "bad", "p/b": "good", "p/c": "bad", "p/d": "bad", "p/e": "bad"})
	steps := []Step{&sideEffectStep{keyStep{name: "p/a", want: "good"}, "p/c"}, &keyStep{name: "p/b", want: "good"},
		&keyStep{name: "p/c", want: "good"}, &keyStep{name: "p/d", want: "good"}, &keyStep{name: "p/e", want: "good"}}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}}, Options{Mode: ModeApply, Steps: steps})
	want := map[string]Status{"p/a": StatusChanged, "p/b": StatusUnchanged, "p/c": StatusUnchanged, "p/d": StatusChanged, "p/e": StatusChanged}
	if diff := cmp.Diff(want, statuses(rep.Hosts[0])); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	if got := host.changingCommands(); !cmp.Equal(got, []string{"set p/a good", "set p/c good", "set p/d good", "set p/e good"}) {
		t.Errorf("commands = %q", got)
	}
	// The first probe (5 steps); after p/a, p/a and p/b; p/c, p/d and p/e
	// before p/c decides; after p/d, p/d and p/e; after p/e, p/e.
	var probed []int
	for _, cmd := range host.commands {
		if n := strings.Count(cmd, " begin p/"); n > 0 {
			probed = append(probed, n)
		}
	}
	if !cmp.Equal(probed, []int{5, 2, 3, 2, 1}) {
		t.Errorf("steps per probe %v, want [5 2 3 2 1]", probed)
	}
}

// The report splits each host's time: the steps' Apply (the work the host
// needed) apart from connecting and probing (kprep's own) and from waits.
func TestHostTimeSplitsApplyFromProbes(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{"p/one": "good", "p/two": "bad", "p/three": "bad"})
	var mu sync.Mutex
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	// A probe takes a second on the host, a change ten.
	host.onCommand = func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(line, "set ") {
			now = now.Add(10 * time.Second)
		} else {
			now = now.Add(time.Second)
		}
	}
	steps := []Step{&keyStep{name: "p/one", want: "good"}, &keyStep{name: "p/two", want: "good"}, &keyStep{name: "p/three", want: "good"}}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}}, Options{Mode: ModeApply, Steps: steps, Now: clock})
	h := rep.Hosts[0]
	// The first probe, a verify after p/two (with p/three), one after p/three.
	want := HostTime{Probe: 3 * time.Second, Apply: 20 * time.Second, Own: 3 * time.Second, Probes: 3, ProbeMs: 3000, ApplyMs: 20000, OwnMs: 3000}
	if diff := cmp.Diff(want, h.Time); diff != "" {
		t.Errorf("time (-want +got):\n%s", diff)
	}
	if h.Duration != 23*time.Second {
		t.Errorf("duration %v, want 23s", h.Duration)
	}
	if diff := cmp.Diff(want, rep.Time); diff != "" {
		t.Errorf("the report's sum of one host (-want +got):\n%s", diff)
	}
}

// Probes under the run's lock may update kprep's records (the first one,
// in the lock session, and every later one of an apply); a plan's never.
func TestProbesRecordOnlyUnderTheLock(t *testing.T) {
	c := testCluster("a")
	for _, mode := range []Mode{ModeApply, ModePlan} {
		host := newFakeHost("a", map[string]string{"p/one": "bad", "p/two": "good"})
		steps := []Step{&keyStep{name: "p/one", want: "good"}, &keyStep{name: "p/two", want: "good"}}
		runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}, locking: true}, Options{Mode: mode, Steps: steps})
		probes, recording := len(host.probes()), 0
		for _, line := range host.probes() {
			if strings.HasPrefix(line, "kprep_recording=1\n") || strings.Contains(line, "\nkprep_recording=1\n") {
				recording++
			}
		}
		want := map[Mode][2]int{ModeApply: {2, 2}, ModePlan: {1, 0}}[mode]
		if probes != want[0] || recording != want[1] {
			t.Errorf("%s: %d probes, %d of them recording; want %d and %d", mode, probes, recording, want[0], want[1])
		}
	}
}

// An apply that changed a host records the runtimes' versions before it
// lets the lock go (so the next run's facts need not ask the programs); a
// converged apply sends no such script.
func TestApplyRecordsVersionsOnlyWhereItChanged(t *testing.T) {
	c := testCluster("a")
	for _, tc := range []struct {
		state  string
		record bool
	}{{"bad", true}, {"good", false}} {
		host := newFakeHost("a", map[string]string{"p/one": tc.state})
		steps := []Step{&keyStep{name: "p/one", want: "good"}}
		runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}, locking: true}, Options{Mode: ModeApply, Steps: steps})
		host.mu.Lock()
		cmds := slices.Clone(host.commands)
		host.mu.Unlock()
		recorded := slices.IndexFunc(cmds, func(l string) bool { return strings.HasSuffix(l, facts.RecordVersions) })
		switch {
		case tc.record && recorded != len(cmds)-1:
			t.Errorf("p/one %s: the versions were recorded at command %d of %d, want last (after the verify):\n%s", tc.state, recorded, len(cmds), strings.Join(cmds, "\n---\n"))
		case !tc.record && recorded >= 0:
			t.Errorf("p/one %s: a converged apply recorded the versions", tc.state)
		}
		if !strings.Contains(host.runLog.String(), `"p/one"`) {
			t.Errorf("p/one %s: no run log after the last script: %q", tc.state, host.runLog.String())
		}
	}
}

// indepStep is a keyStep that says it needs nothing earlier steps change.
type indepStep struct{ keyStep }

func (*indepStep) Independent() bool { return true }

// finishOrder lists the steps' results in the order they were shown.
type finishOrder struct {
	Observer
	mu    sync.Mutex
	names []string
}

func (o *finishOrder) StepFinished(host string, sr StepResult) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.names = append(o.names, sr.Name+"="+string(sr.Status))
}

// A run of Independent changes is applied one after another and verified
// in one round trip with the next step's probe: four changes, three probes
// (five when every change is verified on its own). Results still come in
// step order, each verified.
func TestIndependentChangesAreVerifiedTogether(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{"p/one": "bad", "p/two": "bad", "p/three": "bad", "p/four": "bad"})
	steps := []Step{&indepStep{keyStep{name: "p/one", want: "good"}}, &indepStep{keyStep{name: "p/two", want: "good"}},
		&indepStep{keyStep{name: "p/three", want: "good"}}, &keyStep{name: "p/four", want: "good"}}
	obs := &finishOrder{Observer: NopObserver{}}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}, locking: true},
		Options{Mode: ModeApply, Steps: steps, Observer: obs})
	want := []string{"p/one=changed", "p/two=changed", "p/three=changed", "p/four=changed"}
	if diff := cmp.Diff(want, obs.names); diff != "" {
		t.Errorf("results shown (-want +got):\n%s", diff)
	}
	if got := statusList(rep.Hosts[0]); !slices.Equal(got, want) {
		t.Errorf("report %v, want %v", got, want)
	}
	// The first probe; one/two/three verified with four's fresh probe; four's verify.
	if probes := host.probes(); len(probes) != 3 || !strings.Contains(probes[1], "begin p/one'") || !strings.Contains(probes[1], "begin p/four'") {
		t.Errorf("%d probes, want 3 (the second verifying p/one to p/three with p/four's probe):\n%s", len(probes), strings.Join(probes, "\n---\n"))
	}
	if rep.Hosts[0].Time.Probes != 3 {
		t.Errorf("the report counts %d probes, want 3", rep.Hosts[0].Time.Probes)
	}
	// A step that is not Independent after a change is probed again first:
	// without the interface, every change is verified before the next.
	plain := newFakeHost("a", map[string]string{"p/one": "bad", "p/two": "bad", "p/three": "bad", "p/four": "bad"})
	runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": plain}, locking: true},
		Options{Mode: ModeApply, Steps: []Step{&keyStep{name: "p/one", want: "good"}, &keyStep{name: "p/two", want: "good"},
			&keyStep{name: "p/three", want: "good"}, &keyStep{name: "p/four", want: "good"}}})
	if n := len(plain.probes()); n != 5 {
		t.Errorf("without Independent steps: %d probes, want 5", n)
	}
}

// A change whose late verify finds it did not hold fails its step; the
// Independent step applied meanwhile keeps its own verified result, and
// the rest of the host's steps are skipped.
func TestLateVerifyThatFailsStopsTheHost(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{"p/one": "bad", "p/two": "bad", "p/three": "bad"})
	host.broken["p/one"] = true
	steps := []Step{&keyStep{name: "p/one", want: "good"}, &indepStep{keyStep{name: "p/two", want: "good"}},
		&keyStep{name: "p/three", want: "good"}}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}, locking: true},
		Options{Mode: ModeApply, Steps: steps})
	want := []string{"p/one=failed", "p/two=changed", "p/three=skipped"}
	if got := statusList(rep.Hosts[0]); !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	if err := rep.Hosts[0].Steps[0].Error; !strings.Contains(err, "still differs after apply") {
		t.Errorf("p/one's error %q", err)
	}
	if got := host.changingCommands(); !slices.Equal(got, []string{"set p/one good", "set p/two good"}) {
		t.Errorf("commands %v: p/three must not run", got)
	}
}

// A step that fails while an earlier change waits for its verify: the
// change is verified before the host stops, and reported in order.
func TestFailureBehindALateVerify(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{"p/one": "bad", "p/two": "bad", "p/three": "bad"})
	host.failSet["p/two"] = true
	steps := []Step{&keyStep{name: "p/one", want: "good"}, &indepStep{keyStep{name: "p/two", want: "good"}},
		&indepStep{keyStep{name: "p/three", want: "good"}}}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}, locking: true},
		Options{Mode: ModeApply, Steps: steps})
	want := []string{"p/one=changed", "p/two=failed", "p/three=skipped"}
	if got := statusList(rep.Hosts[0]); !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	if n := len(host.probes()); n != 2 {
		t.Errorf("%d probes, want 2 (the first, p/one's verify)", n)
	}
}

// An Independent step that waits for other hosts does not go ahead of an
// unverified change: the change is verified first, so the hosts waiting
// for it are not held up by the wait.
func TestLateVerifyComesBeforeAWait(t *testing.T) {
	c := testCluster("a", "b")
	a := newFakeHost("a", map[string]string{"p/one": "bad", "p/two": "good", "p/three": "bad"})
	b := newFakeHost("b", map[string]string{"p/one": "good", "p/two": "good", "p/three": "good"})
	steps := []Step{&keyStep{name: "p/one", want: "good"}, &indepStep{keyStep{name: "p/two", want: "good"}},
		&indepStep{keyStep{name: "p/three", want: "good", after: []string{"p/one"}}}}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": a, "b": b}, locking: true},
		Options{Mode: ModeApply, Steps: steps})
	want := []string{"p/one=changed", "p/two=unchanged", "p/three=changed"}
	if got := statusList(rep.Hosts[0]); !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	// The first probe, p/one's verify before p/three's wait, p/three's verify.
	if n := len(a.probes()); n != 3 {
		t.Errorf("%d probes, want 3", n)
	}
}

func statusList(h HostResult) []string {
	var out []string
	for _, s := range h.Steps {
		out = append(out, s.Name+"="+string(s.Status))
	}
	return out
}

// A change whose verify waited goes with the probe of the next step that
// needs fresh state, not in a round trip of its own.
func TestLateVerifyGoesWithTheNextStaleProbe(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{"p/one": "bad", "p/two": "good", "p/three": "bad"})
	steps := []Step{&keyStep{name: "p/one", want: "good"}, &indepStep{keyStep{name: "p/two", want: "good"}},
		&keyStep{name: "p/three", want: "good"}}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}, locking: true},
		Options{Mode: ModeApply, Steps: steps})
	want := []string{"p/one=changed", "p/two=unchanged", "p/three=changed"}
	if got := statusList(rep.Hosts[0]); !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	// The first; p/one's verify with p/three's fresh probe; p/three's verify.
	probes := host.probes()
	if len(probes) != 3 || !strings.Contains(probes[1], "begin p/one'") || !strings.Contains(probes[1], "begin p/three'") {
		t.Errorf("%d probes, want 3 (the second verifying p/one with p/three's probe):\n%s", len(probes), strings.Join(probes, "\n---\n"))
	}
}

// depStep is a keyStep that depends on what the named earlier steps change
// and on nothing else.
type depStep struct {
	keyStep
	on []string
}

func (s *depStep) DependsOn() []string { return s.on }

// A step that depends on another decides on a probe taken after that
// step's change: p/conf looked right before p/pkg went in, and p/pkg's
// install made it wrong (p/pkg verified with p/same, p/other's change
// waiting for its verify when p/conf's turn comes).
func TestDependentStepDecidesAfterItsDependency(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{"p/pkg": "bad", "p/same": "good", "p/other": "bad", "p/conf": "good"})
	host.onSet = func(key string) {
		if key == "p/pkg" {
			host.mu.Lock()
			host.state["p/conf"] = "stock"
			host.mu.Unlock()
		}
	}
	steps := []Step{&keyStep{name: "p/pkg", want: "good"}, &keyStep{name: "p/same", want: "good"},
		&indepStep{keyStep{name: "p/other", want: "good"}}, &depStep{keyStep{name: "p/conf", want: "good"}, []string{"p/pkg"}}}
	rep := runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}, locking: true},
		Options{Mode: ModeApply, Steps: steps})
	want := []string{"p/pkg=changed", "p/same=unchanged", "p/other=changed", "p/conf=changed"}
	if got := statusList(rep.Hosts[0]); !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	if got := host.state["p/conf"]; got != "good" {
		t.Errorf("p/conf is %q after the run, want good", got)
	}
}

// A dependent step is probed along with the verify of the last step it
// depends on, and then goes ahead of the verify of a change it does not
// depend on: pkg, a (on pkg), b (independent), c (on pkg), svc (on
// everything) all change in four round trips, where c without DependsOn
// takes five.
func TestDependentStepGoesAheadOfAnUnrelatedVerify(t *testing.T) {
	c := testCluster("a")
	steps := func(declared bool) []Step {
		var third Step = &keyStep{name: "p/c", want: "good"}
		if declared {
			third = &depStep{keyStep{name: "p/c", want: "good"}, []string{"p/pkg"}}
		}
		return []Step{&keyStep{name: "p/pkg", want: "good"}, &depStep{keyStep{name: "p/a", want: "good"}, []string{"p/pkg"}},
			&indepStep{keyStep{name: "p/b", want: "good"}}, third, &keyStep{name: "p/svc", want: "good"}}
	}
	for _, declared := range []bool{true, false} {
		host := newFakeHost("a", map[string]string{"p/pkg": "bad", "p/a": "bad", "p/b": "bad", "p/c": "bad", "p/svc": "bad"})
		obs := &finishOrder{Observer: NopObserver{}}
		runEngine(t, context.Background(), c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}, locking: true},
			Options{Mode: ModeApply, Steps: steps(declared), Observer: obs})
		want := []string{"p/pkg=changed", "p/a=changed", "p/b=changed", "p/c=changed", "p/svc=changed"}
		if diff := cmp.Diff(want, obs.names); diff != "" {
			t.Errorf("declared %v: results shown (-want +got):\n%s", declared, diff)
		}
		probes := host.probes()
		wantProbes := map[bool]int{true: 4, false: 5}[declared]
		if len(probes) != wantProbes {
			t.Errorf("declared %v: %d probes, want %d:\n%s", declared, len(probes), wantProbes, strings.Join(probes, "\n---\n"))
			continue
		}
		if declared && (!strings.Contains(probes[1], "begin p/a'") || !strings.Contains(probes[1], "begin p/c'")) {
			t.Errorf("the verify of p/pkg probes p/a and p/c along:\n%s", probes[1])
		}
	}
}

// A dependency on a step that is not before it is a bug in kprep, caught
// before anything runs.
func TestDependsOnALaterStepIsRefused(t *testing.T) {
	steps := []Step{&depStep{keyStep{name: "p/a", want: "good"}, []string{"p/b"}}, &keyStep{name: "p/b", want: "good"},
		&depStep{keyStep{name: "p/c", want: "good"}, []string{"p/typo"}}}
	err := CheckSteps(steps)
	if err == nil || !strings.Contains(err.Error(), `"p/a" depends on "p/b"`) || !strings.Contains(err.Error(), `"p/c" depends on "p/typo"`) {
		t.Fatalf("CheckSteps: %v, want both dependencies named", err)
	}
}

// Ctrl-C while a change waits for its verify: the host is reported cut in
// the step that was running, and the change before it as made but not
// verified, not as failed.
func TestCancelBehindALateVerify(t *testing.T) {
	c := testCluster("a")
	host := newFakeHost("a", map[string]string{"p/first": "bad", "p/slow": "bad", "p/next": "bad"})
	host.block["p/slow"] = true
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 1)
	go func() {
		<-started
		cancel()
	}()
	rep := runEngine(t, ctx, c, &fakeDialer{hosts: map[string]*fakeHost{"a": host}, locking: true},
		Options{Mode: ModeApply, Observer: &startObserver{step: "p/slow", started: started},
			Steps: []Step{&indepStep{keyStep{name: "p/first", want: "good"}}, &indepStep{keyStep{name: "p/slow", want: "good"}},
				&keyStep{name: "p/next", want: "good"}}})
	h := rep.Hosts[0]
	if h.Interrupted != "p/slow" {
		t.Errorf("Interrupted = %q, want p/slow", h.Interrupted)
	}
	if diff := cmp.Diff(map[string]Status{"p/first": StatusChanged, "p/slow": StatusFailed, "p/next": StatusSkipped}, statuses(h)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if w := h.Steps[0].Warnings; len(w) != 1 || !strings.Contains(w[0], "not verified") {
		t.Errorf("p/first's warnings %q, want one saying it was not verified", w)
	}
}
