package provision

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
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
	// per step, what it counted when the step's state was probed. A step
	// probed before the latest change is probed again before it decides.
	changes  int
	probedAt map[string]int
	lock     Process
	log      []runLogStep
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

// reprobe refreshes the state of steps[from:to] in one round trip. It runs
// after a step changed the host (to verify it, with the next step, whose
// turn comes now), when a step's state predates a change this run made on
// the host (locallyStale; then to the end), and after a wait in which
// other hosts changed what a step depends on, so a step always decides on
// the host as it is now. The old sections of those steps are dropped
// first: state is never a mix of two probes.
//
// Probing only the next step after a change, not all later ones, keeps a
// fresh host's first apply from probing every later step once per change:
// at 50 hosts on 2 cores those probes were most of kprep's own share of
// the run. It costs a round trip more where a change is followed by an
// unchanged step.
//
// A ProbedOnce step after steps[from] keeps its first answer: nothing the
// run changes on the host changes what it asked.
func (w *hostWork) reprobe(ctx context.Context, from, to int) error {
	var parts []probePart
	for i, s := range w.steps[from:to] {
		if _, kept := w.state[s.Name()]; kept && i > 0 && probedOnce(s) {
			continue
		}
		parts = append(parts, probePart{name: s.Name(), snippet: s.Probe(w.host, w.run.cluster)})
		delete(w.state, s.Name())
		w.probedAt[s.Name()] = w.changes
	}
	w.seen = w.changeCounts()
	line := probeScript(w.token, parts)
	if w.lock != nil {
		// This run holds the host's lock, as its first probe did: the
		// probe may update kprep's records too, so that what a change made
		// new (an installed package, a daemon's binary) is asked once a
		// run, not again by every later probe.
		line = shell.RecordingVar + "=1\n" + line
	}
	probeStart := w.run.now()
	res, err := w.conn.Run(ctx, transport.Command{Line: line, Label: probeLabel(parts)})
	w.timeProbe(probeStart)
	if err != nil {
		return fmt.Errorf("probe again: %w", err)
	}
	sections, err := splitProbe(w.token, string(res.Stdout))
	if err != nil {
		return fmt.Errorf("probe again: %w", err)
	}
	for name, out := range sections {
		w.state[name] = out
	}
	return nil
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
// stale, and gives a Serial step's turn to the next host afterwards.
func (w *hostWork) stepInTurn(ctx context.Context, i int, s Step, stale bool) StepResult {
	if turn := w.run.serial[s.Name()]; turn != nil && w.run.opts.Mode == ModeApply {
		defer turn.Unlock()
	}
	w.run.observer.StepStarted(w.host.Name, s.Name())
	if stale || w.locallyStale(s) {
		if err := w.reprobe(ctx, i, len(w.steps)); err != nil {
			return w.finish(StepResult{Name: s.Name(), Changes: []Change{}}, w.run.now(), StatusFailed, err)
		}
	}
	sr := w.step(ctx, i, s)
	// Counted before the turn passes on, so the next host sees the change.
	if sr.Status == StatusChanged {
		w.run.changed[s.Name()].Add(1)
	}
	return sr
}

// locallyStale reports whether s was probed before a change this run made
// on the host. A ProbedOnce step's answer does not go stale.
func (w *hostWork) locallyStale(s Step) bool {
	if _, kept := w.state[s.Name()]; kept && probedOnce(s) {
		return false
	}
	return w.probedAt[s.Name()] < w.changes
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

// step diffs one step and, in apply mode, applies and verifies it.
func (w *hostWork) step(ctx context.Context, i int, s Step) StepResult {
	start := w.run.now()
	sr := StepResult{Name: s.Name(), Changes: []Change{}}
	if err := w.sectionFor(s); err != nil {
		return w.finish(sr, start, StatusFailed, err)
	}
	changes, err := w.diff(s)
	if warner, ok := s.(Warner); ok {
		sr.Warnings = warner.Warnings(w.input(s))
	}
	if err != nil {
		return w.finish(sr, start, StatusFailed, err)
	}
	sr.Changes = changes
	if len(changes) == 0 {
		return w.finish(sr, start, StatusUnchanged, nil)
	}
	if w.run.opts.Mode != ModeApply {
		return w.finish(sr, start, StatusPending, nil)
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
		return w.finish(sr, start, StatusFailed, err)
	}
	w.changes++
	if err := w.reprobe(ctx, i, min(i+2, len(w.steps))); err != nil {
		return w.finish(sr, start, StatusFailed, err)
	}
	if err := w.sectionFor(s); err != nil {
		return w.finish(sr, start, StatusFailed, fmt.Errorf("verify: %w", err))
	}
	left, err := w.diff(s)
	if err != nil {
		return w.finish(sr, start, StatusFailed, fmt.Errorf("verify: %w", err))
	}
	if len(left) > 0 {
		return w.finish(sr, start, StatusFailed, fmt.Errorf("still differs after apply: %s", strings.Join(summaries(left), "; ")))
	}
	return w.finish(sr, start, StatusChanged, nil)
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
	sr.Duration = w.run.now().Sub(start)
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
func (w *hostWork) close() {
	if w.lock == nil {
		return
	}
	writeRunLog(w.lock.Stdin(), w.run.now(), w.run.opts.Mode, w.log)
	w.lock.Stdin().Close()
	w.lock.Wait()
}

func summaries(cs []Change) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Summary)
	}
	return out
}
