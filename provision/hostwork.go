package provision

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

// hostWork is the state of the steps on one host.
type hostWork struct {
	run   *run
	host  *inventory.Host
	conn  Conn
	steps []Step
	res   *HostResult
	token string
	facts facts.Facts
	state map[string]sectionOutput
	// seen is, per step, how many hosts had changed it when this host last
	// probed: a later count means the probe may be stale.
	seen map[string]int64
	// changes counts the steps this run changed on this host; probedAt is,
	// per step, what it counted when the step's state was probed, and
	// changedAt what it counted right after the step's change. A step
	// probed before the latest change of a step it depends on is probed
	// again before it decides.
	changes   int
	probedAt  map[string]int
	changedAt map[string]int
	lock      *lockSession
	log       []runLogStep
	// results are the steps' results in step order, for the engine to
	// publish; a change applied but not verified yet (see Independent)
	// holds back its own and every later result until its verify.
	results []*queuedResult
	pending []pendingVerify
}

// queuedResult is a step's result waiting to be published.
type queuedResult struct {
	sr    StepResult
	ready bool
}

// pendingVerify is a change applied whose verify waits for the next probe
// round trip.
type pendingVerify struct {
	index int
	step  Step
	res   *queuedResult
	start time.Time
	// took is how long the step took up to the end of its Apply; the
	// verify's round trip is added when it comes.
	took time.Duration
}

const factsSection = "facts"

// probeAll learns the facts and every step's state in one round trip. In
// apply mode the same session takes the host's run lock and keeps it.
func (w *hostWork) probeAll(ctx context.Context) error {
	parts := []probePart{{name: factsSection, snippet: facts.Script}}
	for _, s := range w.steps {
		parts = append(parts, probePart{name: s.Name(), snippet: s.Probe(w.host, w.run.cluster)})
	}
	script := probeScript(w.token, parts)
	w.seen = w.changeCounts()
	defer w.timeProbe(w.run.now())
	var out string
	if starter, ok := w.conn.(Starter); ok && w.run.opts.Mode == ModeApply {
		lock, text, err := lockAndProbe(ctx, starter, w.token, script, probeLabel(parts))
		if err != nil {
			return err
		}
		w.lock, out = lock, text
	} else {
		res, err := w.conn.Run(ctx, transport.Command{Line: script, Label: probeLabel(parts)})
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		out = string(res.Stdout)
	}
	sections, err := splitProbe(w.token, out)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	factsOut, ok := sections[factsSection]
	if !ok {
		return fmt.Errorf("probe: the facts section is missing")
	}
	if err := factsOut.check(); err != nil {
		return fmt.Errorf("probe facts: %w", err)
	}
	f, err := facts.Parse(factsOut.text)
	w.res.Facts = &f
	if err != nil {
		return err
	}
	if len(w.steps) > 0 && f.Init != "systemd" {
		return fmt.Errorf("kprep needs systemd as the init system; PID 1 is %q", f.Init)
	}
	w.facts = f
	w.state = sections
	return nil
}

// timeProbe counts a probe round trip that began at start.
func (w *hostWork) timeProbe(start time.Time) {
	w.res.Time.Probe += w.run.now().Sub(start)
	w.res.Time.Probes++
}

// changeCounts snapshots the run's per-step change counters.
func (w *hostWork) changeCounts() map[string]int64 {
	out := make(map[string]int64, len(w.run.changed))
	for name, n := range w.run.changed {
		out[name] = n.Load()
	}
	return out
}

// reprobe refreshes the state of the steps in must and in fresh (step
// indices) in one round trip. It runs after a step changed the host (to
// verify it, with the next step, whose turn comes now, and any change whose
// verify waited), when a step's state predates a change this run made on
// the host (locallyStale; then to the end), and after a wait in which other
// hosts changed what a step depends on, so a step always decides on the
// host as it is now. The old sections of those steps are dropped first:
// state is never a mix of two probes.
//
// Probing only the next step after a change, not all later ones, keeps a
// fresh host's first apply from probing every later step once per change:
// at 50 hosts on 2 cores those probes were most of kprep's own share of
// the run. It costs a round trip more where a change is followed by an
// unchanged step.
//
// A ProbedOnce step in fresh whose state is kept keeps its first answer:
// nothing the run changes on the host changes what it asked.
func (w *hostWork) reprobe(ctx context.Context, must, fresh []int) error {
	var parts []probePart
	seen := map[int]bool{}
	add := func(i int, always bool) {
		s := w.steps[i]
		if seen[i] {
			return
		}
		seen[i] = true
		if _, kept := w.state[s.Name()]; kept && !always && probedOnce(s) {
			return
		}
		parts = append(parts, probePart{name: s.Name(), snippet: s.Probe(w.host, w.run.cluster)})
		delete(w.state, s.Name())
		w.probedAt[s.Name()] = w.changes
	}
	for _, i := range must {
		add(i, true)
	}
	for _, i := range fresh {
		add(i, false)
	}
	w.seen = w.changeCounts()
	// Through the lock session, the probe may update kprep's records too,
	// so that what a change made new (an installed package, a daemon's
	// binary) is asked once a run, not again by every later probe.
	line := probeScript(w.token, parts)
	probeStart := w.run.now()
	out, err := w.probeAgain(ctx, line, probeLabel(parts))
	w.timeProbe(probeStart)
	if err != nil {
		return fmt.Errorf("probe again: %w", err)
	}
	sections, err := splitProbe(w.token, out)
	if err != nil {
		return fmt.Errorf("probe again: %w", err)
	}
	for name, out := range sections {
		w.state[name] = out
	}
	return nil
}

// probeAgain runs a probe script through the lock session when the run
// holds one, else as a command of its own.
func (w *hostWork) probeAgain(ctx context.Context, line, label string) (string, error) {
	if w.lock != nil {
		return w.lock.probeLogged(line, label)
	}
	res, err := w.conn.Run(ctx, transport.Command{Line: line, Label: label})
	return string(res.Stdout), err
}

// waitTurn waits, in apply mode, for what s must wait for: the steps it is
// After on every host, then its turn if it is Serial. The host's
// concurrency slot is given back while it waits. It reports whether the
// host waited while another host changed something s depends on (so its
// probe is stale), and fails when a step it waits for failed somewhere.
func (w *hostWork) waitTurn(ctx context.Context, slot *heldSlot, s Step) (stale bool, err error) {
	if w.run.opts.Mode != ModeApply {
		return false, nil
	}
	after := w.run.graph.after[s.Name()]
	turn := w.run.serial[s.Name()]
	if len(after) == 0 && turn == nil {
		return false, nil
	}
	slot.giveBack()
	waitErr := w.run.barriers.wait(ctx, after)
	if waitErr == nil && turn != nil {
		turn.Lock() // unlocked by stepInTurn
	}
	if err := slot.take(ctx); err != nil {
		if waitErr == nil && turn != nil {
			turn.Unlock()
		}
		return false, err
	}
	if waitErr != nil {
		return false, waitErr
	}
	watched := after
	if turn != nil {
		watched = append(watched[:len(watched):len(watched)], s.Name())
	}
	for _, name := range watched {
		if n, ok := w.run.changed[name]; ok && n.Load() > w.seen[name] {
			return true, nil
		}
	}
	return false, nil
}

// stepInTurn runs step i, first probing again when the wait left its state
// stale, and gives a Serial step's turn to the next host afterwards. Its
// result, and those of the changes verified on the way, join w.results.
// It reports false when step i did not run because a change verified
// before it failed.
func (w *hostWork) stepInTurn(ctx context.Context, i int, s Step, stale bool) bool {
	if turn := w.run.serial[s.Name()]; turn != nil && w.run.opts.Mode == ModeApply {
		defer turn.Unlock()
	}
	w.run.observer.StepStarted(w.host.Name, s.Name())
	if stale || w.locallyStale(s) {
		fresh := make([]int, 0, len(w.steps)-i)
		for j := i; j < len(w.steps); j++ {
			fresh = append(fresh, j)
		}
		held, err := w.verifyPending(ctx, fresh[:1], fresh[1:])
		if err != nil {
			w.queue().done(w.finish(StepResult{Name: s.Name(), Changes: []Change{}}, w.run.now(), StatusFailed, err))
			return true
		}
		if !held {
			return false
		}
	}
	w.step(ctx, i, s)
	return true
}

// locallyStale reports whether s was probed before a change this run made
// on the host that s depends on (see dependencies). A ProbedOnce step's
// answer does not go stale, nor does an Independent step's: what earlier
// steps change is not what it reads.
func (w *hostWork) locallyStale(s Step) bool {
	probed := w.probedAt[s.Name()]
	_, kept := w.state[s.Name()]
	if !kept {
		return probed < w.changes
	}
	if probedOnce(s) {
		return false
	}
	deps, declared := dependencies(s)
	if !declared {
		return probed < w.changes
	}
	for _, d := range deps {
		if w.changedAt[d] > probed {
			return true
		}
	}
	return false
}

// dependsOnPending reports whether s depends on a change still waiting
// for its verify.
func (w *hostWork) dependsOnPending(s Step) bool {
	deps, declared := dependencies(s)
	if !declared {
		return len(w.pending) > 0
	}
	for _, p := range w.pending {
		if slices.Contains(deps, p.step.Name()) {
			return true
		}
	}
	return false
}

// settledBy returns the steps after i+1 whose probe is stale and that
// depend on no step after i: probed now, with the verify of step i's
// change, their state stays right for the rest of the run, where waiting
// for their turn would cost a round trip of its own when a change comes
// between.
func (w *hostWork) settledBy(i int) []int {
	index := make(map[string]int, len(w.steps))
	for j, s := range w.steps {
		index[s.Name()] = j
	}
	var out []int
	for j := i + 2; j < len(w.steps); j++ {
		s := w.steps[j]
		deps, declared := dependencies(s)
		if !declared || len(deps) == 0 || !w.locallyStale(s) {
			continue
		}
		settled := true
		for _, d := range deps {
			if k, on := index[d]; on && k > i {
				settled = false
				break
			}
		}
		if settled {
			out = append(out, j)
		}
	}
	return out
}

func (w *hostWork) input(s Step) Input {
	return Input{Cluster: w.run.cluster, Host: w.host, Facts: w.facts, State: w.state[s.Name()].text}
}

// sectionFor returns the step's probe output, or why there is none usable.
func (w *hostWork) sectionFor(s Step) error {
	sec, ok := w.state[s.Name()]
	if !ok {
		return fmt.Errorf("the probe printed nothing for this step (was the probe script cut short?)")
	}
	return sec.check()
}

// step diffs one step and, in apply mode, applies and verifies it. A
// change whose verify can wait (verifyCanWait) is verified with a later
// one, in one round trip.
func (w *hostWork) step(ctx context.Context, i int, s Step) {
	start := w.run.now()
	res := w.queue()
	sr := StepResult{Name: s.Name(), Changes: []Change{}}
	if err := w.sectionFor(s); err != nil {
		res.done(w.finish(sr, start, StatusFailed, err))
		return
	}
	changes, err := w.diff(s)
	if warner, ok := s.(Warner); ok {
		sr.Warnings = warner.Warnings(w.input(s))
	}
	if err != nil {
		res.done(w.finish(sr, start, StatusFailed, err))
		return
	}
	sr.Changes = changes
	if len(changes) == 0 {
		res.done(w.finish(sr, start, StatusUnchanged, nil))
		return
	}
	if w.run.opts.Mode != ModeApply {
		res.done(w.finish(sr, start, StatusPending, nil))
		return
	}
	cmds := &commandList{}
	rec := &recordingExecutor{Executor: w.conn, secrets: &w.run.secrets, into: cmds}
	target := Target{Executor: rec, Host: w.host,
		Peer: func(name string) (Executor, error) {
			conn, err := w.run.peer(ctx, name)
			if err != nil {
				return nil, err
			}
			return &recordingExecutor{Executor: conn, secrets: &w.run.secrets, into: cmds, prefix: name + ": "}, nil
		},
		Once: func(ctx context.Context, key string, mk MakeShared) (string, error) {
			return w.run.shared.get(ctx, key, mk, &w.run.secrets)
		},
	}
	applyStart := w.run.now()
	err = w.apply(ctx, s, target, changes)
	w.res.Time.Apply += w.run.now().Sub(applyStart)
	sr.Commands = cmds.list()
	if err != nil {
		res.done(w.finish(sr, start, StatusFailed, err))
		return
	}
	w.changes++
	w.changedAt[s.Name()] = w.changes
	// Counted before a Serial step's turn passes on, so the next host sees
	// the change.
	w.run.changed[s.Name()].Add(1)
	res.sr = sr
	w.pending = append(w.pending, pendingVerify{index: i, step: s, res: res, start: start, took: w.run.now().Sub(start)})
	if w.verifyCanWait(i) {
		return
	}
	var next []int
	if i+1 < len(w.steps) {
		next = append([]int{i + 1}, w.settledBy(i)...)
	}
	w.verifyPending(ctx, nil, next)
}

// verifyCanWait reports whether the change step i just applied may be
// verified later, with the next change: the next step must depend on no
// change waiting for its verify (Independent, DependsOn), its probe must
// be fresh for what it depends on, it must not wait for other hosts, and
// step i must not be Serial (the next host's turn comes only once its
// change is checked).
func (w *hostWork) verifyCanWait(i int) bool {
	if i+1 >= len(w.steps) || isSerial(w.steps[i]) {
		return false
	}
	next := w.steps[i+1]
	return !waitsForOthers(next, &w.run.graph) && !w.dependsOnPending(next) && !w.locallyStale(next)
}

// failedAhead reports whether a finished result waits behind a change
// still to be verified and failed.
func (w *hostWork) failedAhead() bool {
	if len(w.pending) == 0 {
		return false
	}
	for _, q := range w.results {
		if q.ready && q.sr.Status == StatusFailed {
			return true
		}
	}
	return false
}

// verifyPending probes every change not verified yet and the steps in
// must and fresh (see reprobe) in one round trip, and finishes each change:
// changed, or failed when it still differs. held is false when one failed;
// err is the round trip's error (every pending change fails with it).
func (w *hostWork) verifyPending(ctx context.Context, must, fresh []int) (held bool, err error) {
	pending := w.pending
	w.pending = nil
	verify := make([]int, 0, len(pending)+len(must))
	for _, p := range pending {
		verify = append(verify, p.index)
	}
	verify = append(verify, must...)
	if len(verify) == 0 && len(fresh) == 0 {
		return true, nil
	}
	probeStart := w.run.now()
	err = w.reprobe(ctx, verify, fresh)
	took := w.run.now().Sub(probeStart)
	held = err == nil
	// An interrupted run cannot verify: its changes were made, and the
	// report says so and that nobody checked them; the step that was
	// running when the interrupt came is the one reported as cut.
	interrupted := err != nil && ctx.Err() != nil
	for _, p := range pending {
		var verifyErr error
		switch {
		case interrupted:
			p.res.sr.Warnings = append(p.res.sr.Warnings, "applied but not verified: the run was interrupted before its verify")
		case err != nil:
			verifyErr = err
		default:
			verifyErr = w.verified(p.step)
		}
		st := StatusChanged
		if verifyErr != nil {
			st, held = StatusFailed, false
		}
		p.res.done(w.finishTook(p.res.sr, p.start, p.took+took, st, verifyErr))
	}
	return held, err
}

// verified checks that a step's fresh state wants no more change.
func (w *hostWork) verified(s Step) error {
	if err := w.sectionFor(s); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	left, err := w.diff(s)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if len(left) > 0 {
		return fmt.Errorf("still differs after apply: %s", strings.Join(summaries(left), "; "))
	}
	return nil
}

// queue reserves the next step's place in the results.
func (w *hostWork) queue() *queuedResult {
	q := &queuedResult{}
	w.results = append(w.results, q)
	return q
}

func (q *queuedResult) done(sr StepResult) {
	q.sr, q.ready = sr, true
}

// ready takes the results that can be published: those in step order up
// to the first change still waiting for its verify.
func (w *hostWork) ready() []*queuedResult {
	n := 0
	for n < len(w.results) && w.results[n].ready {
		n++
	}
	out := w.results[:n:n]
	w.results = w.results[n:]
	return out
}

// diff calls the step's Diff; a panic fails the step on this host only.
func (w *hostWork) diff(s Step) (changes []Change, err error) {
	defer w.recoverStep(s, "Diff", &err)
	return s.Diff(w.input(s))
}

// apply calls the step's Apply; a panic fails the step on this host only.
func (w *hostWork) apply(ctx context.Context, s Step, t Target, changes []Change) (err error) {
	defer w.recoverStep(s, "Apply", &err)
	return s.Apply(ctx, t, w.input(s), changes)
}

func (w *hostWork) recoverStep(s Step, method string, err *error) {
	p := recover()
	if p == nil {
		return
	}
	msg := fmt.Sprintf("internal error: %s.%s panicked: %v (a bug in kprep; run with -v for the stack)", s.Name(), method, p)
	if w.run.opts.Debug {
		msg = fmt.Sprintf("internal error: %s.%s panicked: %v\n%s", s.Name(), method, p, debug.Stack())
	}
	*err = fmt.Errorf("%s", msg)
}

// finish completes a step's result: status, error and duration, every
// secret of the run masked, and the record for the host's run log.
func (w *hostWork) finish(sr StepResult, start time.Time, st Status, err error) StepResult {
	return w.finishTook(sr, start, w.run.now().Sub(start), st, err)
}

// finishTook is finish for a step that took d (a change verified later
// does not count the steps applied meanwhile).
func (w *hostWork) finishTook(sr StepResult, start time.Time, d time.Duration, st Status, err error) StepResult {
	sr.Status = st
	if err != nil {
		sr.Error = w.run.secrets.redact(err.Error())
	}
	for i := range sr.Changes {
		sr.Changes[i].Summary = w.run.secrets.redact(sr.Changes[i].Summary)
		sr.Changes[i].Action = w.run.secrets.redact(sr.Changes[i].Action)
	}
	for i := range sr.Commands {
		sr.Commands[i] = w.run.secrets.redact(sr.Commands[i])
	}
	sr.Duration = d
	sr.DurationMs = sr.Duration.Milliseconds()
	w.log = append(w.log, runLogStep{Name: sr.Name, Status: st, Start: start.UTC(), DurationMs: sr.DurationMs,
		Changes: summaries(sr.Changes), Commands: sr.Commands, Error: sr.Error})
	return sr
}

// skipRest marks steps[from:] skipped.
func (w *hostWork) skipRest(from int, why string) {
	for _, s := range w.steps[from:] {
		sr := StepResult{Name: s.Name(), Status: StatusSkipped, Changes: []Change{}, Error: why}
		w.res.Steps = append(w.res.Steps, sr)
		w.run.observer.StepFinished(w.host.Name, sr)
	}
}

func (w *hostWork) interrupted(s Step, i int, err error) {
	w.res.Interrupted = s.Name()
	w.skipRest(i, "run cancelled: "+err.Error())
}

// close writes the run log through the lock session and lets the lock go.
// On a host the run changed, it first records the versions of the
// runtimes the run may have installed (facts.RecordVersions).
func (w *hostWork) close() {
	if w.lock == nil {
		return
	}
	last := ""
	if w.changes > 0 {
		last = facts.RecordVersions
	}
	w.lock.close(last, runLogLine(w.run.now(), w.run.opts.Mode, w.log))
}

func summaries(cs []Change) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Summary)
	}
	return out
}
