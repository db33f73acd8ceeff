package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

// Mode says what a run does to hosts.
type Mode string

// The modes of a run.
const (
	// ModeFacts connects and probes the facts only.
	ModeFacts Mode = "facts"
	// ModePlan probes every step and reports what differs; it changes nothing.
	ModePlan Mode = "plan"
	// ModeApply probes, applies what differs and verifies it.
	ModeApply Mode = "apply"
)

// Conn is an open connection to one host.
type Conn interface {
	Executor
	Close() error
}

// Dialer opens connections to hosts.
type Dialer interface {
	Dial(ctx context.Context, h *inventory.Host) (Conn, error)
}

// Starter is implemented by connections that can keep one command running
// beside the others. Apply uses it to hold the host's run lock, probe and
// append to the run log in a single session.
type Starter interface {
	Start(ctx context.Context, cmd transport.Command) (Process, error)
}

// Process is a command that keeps running while others run.
type Process = transport.Process

// Options configure one run.
type Options struct {
	Mode Mode
	// Steps in the order they run on each host.
	Steps []Step
	// Hosts limits the run to these hosts (nil: every host).
	Hosts []*inventory.Host
	// Concurrency is how many hosts are worked on at once (0: the inventory's).
	Concurrency int
	// FailFast stops every host at the first failure.
	FailFast bool
	// Observer hears of progress; nil ignores it.
	Observer Observer
	// Now is the clock (tests may fix it); nil means time.Now.
	Now func() time.Time
}

// Run works the steps over the hosts and reports what happened. Errors
// are in the report, per host and step; Run itself does not fail.
func Run(ctx context.Context, c *inventory.Cluster, d Dialer, o Options) *Report {
	r := newRun(c, d, o)
	return r.execute(ctx)
}

// run is the state of one Run.
type run struct {
	cluster  *inventory.Cluster
	dialer   Dialer
	opts     Options
	hosts    []*inventory.Host
	observer Observer
	now      func() time.Time
	slots    chan struct{}
	barriers *barriers
	cancel   context.CancelFunc

	mu    sync.Mutex
	conns map[string]Conn // every connection opened, for Peer and Close
}

func newRun(c *inventory.Cluster, d Dialer, o Options) *run {
	r := &run{cluster: c, dialer: d, opts: o, hosts: o.Hosts, observer: o.Observer, now: o.Now,
		conns: map[string]Conn{}}
	if r.hosts == nil {
		for i := range c.Hosts {
			r.hosts = append(r.hosts, &c.Hosts[i])
		}
	}
	if r.observer == nil {
		r.observer = NopObserver{}
	}
	if r.now == nil {
		r.now = time.Now
	}
	n := o.Concurrency
	if n <= 0 {
		n = c.Concurrency
	}
	if n <= 0 {
		n = 1
	}
	r.slots = make(chan struct{}, n)
	r.barriers = newBarriers(o.Steps, r.hosts, c)
	return r
}

func (r *run) execute(ctx context.Context) *Report {
	start := r.now()
	ctx, r.cancel = context.WithCancel(ctx)
	defer r.cancel()
	rep := &Report{Mode: r.opts.Mode, Hosts: make([]HostResult, len(r.hosts))}
	var wg sync.WaitGroup
	for i, h := range r.hosts {
		rep.Hosts[i] = HostResult{Name: h.Name, Address: h.Address, Steps: []StepResult{}}
		wg.Add(1)
		go func(res *HostResult, h *inventory.Host) {
			defer wg.Done()
			r.host(ctx, h, res)
		}(&rep.Hosts[i], h)
	}
	wg.Wait()
	r.closeAll()
	rep.Duration = r.now().Sub(start)
	rep.DurationMs = rep.Duration.Milliseconds()
	return rep
}

// acquire takes a concurrency slot; it fails only when ctx ends first.
func (r *run) acquire(ctx context.Context) error {
	select {
	case r.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *run) release() { <-r.slots }

// host works one host from connect to the last step.
func (r *run) host(ctx context.Context, h *inventory.Host, res *HostResult) {
	steps := r.stepsFor(h)
	// Whatever happens here, the steps that others wait for must be marked
	// done, or a join would wait forever for an init that never ran.
	finished := map[string]bool{}
	defer func() {
		for _, s := range steps {
			if !finished[s.Name()] {
				r.barriers.done(s.Name(), h.Name, false)
			}
		}
	}()

	if err := r.acquire(ctx); err != nil {
		res.Error = "not started: " + err.Error()
		return
	}
	held := true
	defer func() {
		if held {
			r.release()
		}
	}()

	start := r.now()
	r.observer.HostStarted(h.Name)
	defer func() {
		res.Duration = r.now().Sub(start)
		res.DurationMs = res.Duration.Milliseconds()
		if res.Failed() && r.opts.FailFast {
			r.cancel()
		}
		r.observer.HostFinished(h.Name, *res)
	}()

	conn, err := r.connect(ctx, h)
	if err != nil {
		res.Error = err.Error()
		return
	}
	w := &hostWork{run: r, host: h, conn: conn, steps: steps, res: res, token: probeToken()}
	defer w.close()
	if err := w.probeAll(ctx); err != nil {
		res.Error = err.Error()
		return
	}
	for i, s := range steps {
		if after := afterOf(s); len(after) > 0 && r.opts.Mode == ModeApply {
			r.release()
			held = false
			waitErr := r.barriers.wait(ctx, after)
			if err := r.acquire(ctx); err != nil {
				w.interrupted(s, i, err)
				return
			}
			held = true
			if waitErr != nil {
				w.skipRest(i, waitErr.Error())
				return
			}
		}
		r.observer.StepStarted(h.Name, s.Name())
		sr := w.step(ctx, i, s)
		res.Steps = append(res.Steps, sr)
		finished[s.Name()] = true
		r.barriers.done(s.Name(), h.Name, sr.Status != StatusFailed)
		r.observer.StepFinished(h.Name, sr)
		if sr.Status == StatusFailed {
			if ctx.Err() != nil {
				res.Interrupted = s.Name()
			}
			w.skipRest(i+1, "an earlier step failed: "+s.Name())
			return
		}
	}
}

// stepsFor returns the steps that apply to h, in order.
func (r *run) stepsFor(h *inventory.Host) []Step {
	if r.opts.Mode == ModeFacts {
		return nil
	}
	var out []Step
	for _, s := range r.opts.Steps {
		if appliesTo(s, h, r.cluster) {
			out = append(out, s)
		}
	}
	return out
}

func appliesTo(s Step, h *inventory.Host, c *inventory.Cluster) bool {
	if f, ok := s.(HostFilter); ok {
		return f.AppliesTo(h, c)
	}
	return true
}

func afterOf(s Step) []string {
	if q, ok := s.(Sequenced); ok {
		return q.After()
	}
	return nil
}

// connect dials h once for the whole run and files the connection for Peer.
func (r *run) connect(ctx context.Context, h *inventory.Host) (Conn, error) {
	conn, err := r.dialer.Dial(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	r.mu.Lock()
	r.conns[h.Name] = conn
	r.mu.Unlock()
	return conn, nil
}

// peer returns the connection to another host, dialling it when it is not
// part of this run (adding a node reads the join token from a control plane
// that the run does not otherwise touch).
func (r *run) peer(ctx context.Context, name string) (Executor, error) {
	r.mu.Lock()
	conn, ok := r.conns[name]
	r.mu.Unlock()
	if ok {
		return conn, nil
	}
	for i := range r.cluster.Hosts {
		if h := &r.cluster.Hosts[i]; h.Name == name {
			return r.connect(ctx, h)
		}
	}
	return nil, fmt.Errorf("no host %q in the inventory", name)
}

func (r *run) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}

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
	lock  Process
	log   []runLogStep
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
	f, err := facts.Parse(sections[factsSection].text)
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

// reprobe refreshes the state of steps[from:] in one round trip. It runs
// after a step changed the host, so later steps (and the verification of
// the changed one) see the host as it is now, not as it was.
func (w *hostWork) reprobe(ctx context.Context, from int) error {
	var parts []probePart
	for _, s := range w.steps[from:] {
		parts = append(parts, probePart{name: s.Name(), snippet: s.Probe(w.host, w.run.cluster)})
	}
	res, err := w.conn.Run(ctx, transport.Command{Line: probeScript(w.token, parts), Label: probeLabel(parts)})
	if err != nil {
		return fmt.Errorf("probe after change: %w", err)
	}
	sections, err := splitProbe(w.token, string(res.Stdout))
	if err != nil {
		return fmt.Errorf("probe after change: %w", err)
	}
	for name, out := range sections {
		w.state[name] = out
	}
	return nil
}

func (w *hostWork) input(s Step) Input {
	return Input{Cluster: w.run.cluster, Host: w.host, Facts: w.facts, State: w.state[s.Name()].text}
}

// step diffs one step and, in apply mode, applies and verifies it.
func (w *hostWork) step(ctx context.Context, i int, s Step) StepResult {
	start := w.run.now()
	sr := StepResult{Name: s.Name(), Changes: []Change{}}
	finish := func(st Status, err error) StepResult {
		sr.Status = st
		if err != nil {
			sr.Error = err.Error()
		}
		sr.Duration = w.run.now().Sub(start)
		sr.DurationMs = sr.Duration.Milliseconds()
		w.log = append(w.log, runLogStep{Name: sr.Name, Status: st, Changes: summaries(sr.Changes), Commands: sr.Commands, Error: sr.Error})
		return sr
	}
	if _, ok := w.state[s.Name()]; !ok {
		return finish(StatusFailed, errors.New("probe printed nothing for this step"))
	}
	changes, err := s.Diff(w.input(s))
	if err != nil {
		return finish(StatusFailed, err)
	}
	sr.Changes = changes
	if len(changes) == 0 {
		return finish(StatusUnchanged, nil)
	}
	if w.run.opts.Mode != ModeApply {
		return finish(StatusPending, nil)
	}
	rec := &recordingExecutor{Executor: w.conn}
	target := Target{Executor: rec, Host: w.host, Peer: func(name string) (Executor, error) {
		return w.run.peer(ctx, name)
	}}
	err = s.Apply(ctx, target, w.input(s), changes)
	sr.Commands = rec.lines
	if err != nil {
		return finish(StatusFailed, err)
	}
	if err := w.reprobe(ctx, i); err != nil {
		return finish(StatusFailed, err)
	}
	left, err := s.Diff(w.input(s))
	if err != nil {
		return finish(StatusFailed, fmt.Errorf("verify: %w", err))
	}
	if len(left) > 0 {
		return finish(StatusFailed, fmt.Errorf("still differs after apply: %s", strings.Join(summaries(left), "; ")))
	}
	return finish(StatusChanged, nil)
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
