package provision

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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

// releaseTimeout bounds the clean-up of the run's shared values (deleting
// a join token) once every host is done.
const releaseTimeout = 2 * time.Minute

// Options configure one run.
type Options struct {
	Mode Mode
	// Steps is every step kprep knows, in the order they run on each host.
	// Run checks the whole list (see CheckSteps) before it touches a host.
	Steps []Step
	// Phases selects the steps that run by phase (the part of a step's name
	// before the slash); nil runs them all. A step may wait for a step of a
	// phase that is not selected: the host's state decides then.
	Phases []string
	// Reverse runs the steps backwards and turns every After around, for
	// teardown (see newStepGraph).
	Reverse bool
	// Hosts limits the run to these hosts (nil: every host).
	Hosts []*inventory.Host
	// Concurrency is how many hosts are worked on at once (0: the inventory's).
	Concurrency int
	// FailFast stops every host at the first failure.
	FailFast bool
	// Debug adds the stack of a step that panicked to its error.
	Debug bool
	// Observer hears of progress; nil ignores it.
	Observer Observer
	// Now is the clock (tests may fix it); nil means time.Now.
	Now func() time.Time
}

// Run works the steps over the hosts and reports what happened. Errors on
// hosts are in the report, per host and step; Run itself fails only when
// the step list is broken, before any host is touched.
func Run(ctx context.Context, c *inventory.Cluster, d Dialer, o Options) (*Report, error) {
	if err := CheckSteps(o.Steps); err != nil {
		return nil, err
	}
	r := newRun(c, d, o)
	return r.execute(ctx), nil
}

// run is the state of one Run.
type run struct {
	cluster  *inventory.Cluster
	dialer   Dialer
	opts     Options
	graph    stepGraph
	hosts    []*inventory.Host
	observer Observer
	now      func() time.Time
	slots    chan struct{}
	barriers *barriers
	cancel   context.CancelFunc

	// serial holds one lock per Serial step: its hosts take turns.
	serial map[string]*sync.Mutex
	// changed counts, per step, the hosts where it changed something, so a
	// host that waited knows whether its probe went stale meanwhile.
	changed map[string]*atomic.Int64
	shared  sharedValues
	secrets secretList

	mu    sync.Mutex
	conns map[string]*hostConn // one connection per host, for the host and its peers
}

// hostConn is the run's one connection to a host, dialled by the first
// who needs it (the host's own work or a peer's step).
type hostConn struct {
	done chan struct{}
	conn Conn
	err  error
}

func newRun(c *inventory.Cluster, d Dialer, o Options) *run {
	r := &run{cluster: c, dialer: d, opts: o, hosts: o.Hosts, observer: o.Observer, now: o.Now,
		graph: newStepGraph(o.Steps, o.Reverse), serial: map[string]*sync.Mutex{},
		changed: map[string]*atomic.Int64{}, conns: map[string]*hostConn{}}
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
	selected := r.selectedSteps()
	for _, s := range selected {
		r.changed[s.Name()] = &atomic.Int64{}
		if isSerial(s) {
			r.serial[s.Name()] = &sync.Mutex{}
		}
	}
	r.barriers = newBarriers(selected, r.hosts, c)
	return r
}

// selectedSteps are the steps of the selected phases, in run order.
func (r *run) selectedSteps() []Step {
	if r.opts.Mode == ModeFacts {
		return nil
	}
	var out []Step
	for _, s := range r.graph.steps {
		if len(r.opts.Phases) == 0 || slices.Contains(r.opts.Phases, phaseOf(s.Name())) {
			out = append(out, s)
		}
	}
	return out
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
	// Shared values are released with a context of their own: a join
	// token is deleted even when the run was cancelled.
	releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	for _, w := range r.shared.release(releaseCtx) {
		rep.Warnings = append(rep.Warnings, r.secrets.redact(w))
	}
	cancel()
	r.closeAll()
	rep.Duration = r.now().Sub(start)
	rep.DurationMs = rep.Duration.Milliseconds()
	for _, h := range rep.Hosts {
		rep.Time.add(h.Time)
	}
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
	slot := &heldSlot{run: r, held: true}
	defer slot.giveBack()

	start := r.now()
	r.observer.HostStarted(h.Name)
	defer func() {
		res.Duration = r.now().Sub(start)
		res.DurationMs = res.Duration.Milliseconds()
		res.Time.finish(res.Duration)
		if res.Failed() && r.opts.FailFast {
			r.cancel()
		}
		r.observer.HostFinished(h.Name, *res)
	}()

	conn, err := r.connect(ctx, h)
	res.Time.Connect = r.now().Sub(start)
	if err != nil {
		res.Error = r.secrets.redact("connect: " + err.Error())
		return
	}
	w := &hostWork{run: r, host: h, conn: conn, steps: steps, res: res, token: probeToken(), probedAt: map[string]int{}, changedAt: map[string]int{}}
	defer w.close()
	if err := w.probeAll(ctx); err != nil {
		res.Error = r.secrets.redact(err.Error())
		return
	}
	// stop publishes what is finished and, when a step failed, marks the
	// steps from next on skipped.
	stop := func(next int) bool {
		failed := r.publish(w, finished)
		if failed == "" {
			return false
		}
		if ctx.Err() != nil {
			res.Interrupted = failed
		}
		w.skipRest(next, "an earlier step failed: "+failed)
		return true
	}
	for i, s := range steps {
		// A change whose verify waits is checked before a step that waits
		// for other hosts (they may wait for the change). A step that
		// needs what the change did is probed again first (locallyStale),
		// and the verify goes with that probe.
		if len(w.pending) > 0 && waitsForOthers(s, &r.graph) {
			w.verifyPending(ctx, nil, nil)
			if stop(i) {
				return
			}
		}
		waitStart := r.now()
		waited, err := w.waitTurn(ctx, slot, s)
		res.Time.Wait += r.now().Sub(waitStart)
		if err != nil {
			if ctx.Err() != nil {
				w.interrupted(s, i, err)
			} else {
				w.skipRest(i, err.Error())
			}
			return
		}
		next := i + 1
		if !w.stepInTurn(ctx, i, s, waited) {
			next = i
		}
		if w.failedAhead() {
			// A failed step ends the host's run: what was changed before
			// it is verified now.
			w.verifyPending(ctx, nil, nil)
		}
		if stop(next) {
			return
		}
	}
	w.verifyPending(ctx, nil, nil)
	stop(len(steps))
}

// waitsForOthers reports whether s waits, in apply mode, for other hosts:
// for steps it is After, or for its turn.
func waitsForOthers(s Step, g *stepGraph) bool {
	return isSerial(s) || len(g.after[s.Name()]) > 0
}

// publish reports the host's finished results in step order, marks them
// done for the hosts that wait for them, and returns the name of the first
// that failed, if one did.
func (r *run) publish(w *hostWork, finished map[string]bool) (failed string) {
	for _, q := range w.ready() {
		sr := q.sr
		w.res.Steps = append(w.res.Steps, sr)
		finished[sr.Name] = true
		r.barriers.done(sr.Name, w.host.Name, sr.Status != StatusFailed)
		r.observer.StepFinished(w.host.Name, sr)
		if sr.Status == StatusFailed && failed == "" {
			failed = sr.Name
		}
	}
	return failed
}

// heldSlot is a host's concurrency slot, given back while the host waits
// for other hosts so that a wait never holds up the hosts it waits for.
type heldSlot struct {
	run  *run
	held bool
}

func (s *heldSlot) giveBack() {
	if s.held {
		s.run.release()
		s.held = false
	}
}

func (s *heldSlot) take(ctx context.Context) error {
	if s.held {
		return nil
	}
	if err := s.run.acquire(ctx); err != nil {
		return err
	}
	s.held = true
	return nil
}

// stepsFor returns the selected steps that apply to h, in order.
func (r *run) stepsFor(h *inventory.Host) []Step {
	var out []Step
	for _, s := range r.selectedSteps() {
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

func independent(s Step) bool {
	q, ok := s.(Independent)
	return ok && q.Independent()
}

// dependencies returns the earlier steps whose changes s's decision
// depends on, and declared false when s depends on every step before it
// (it says neither Independent nor DependsOn).
func dependencies(s Step) (names []string, declared bool) {
	if independent(s) {
		return nil, true
	}
	var v any = s
	if t, ok := s.(interface{ inner() any }); ok {
		v = t.inner()
	}
	if q, ok := v.(DependsOn); ok {
		return q.DependsOn(), true
	}
	return nil, false
}

func isSerial(s Step) bool {
	q, ok := s.(Serial)
	return ok && q.Serial()
}

// connect returns the run's connection to h, dialling it the first time
// (the host's own work and any peer's step share it).
func (r *run) connect(ctx context.Context, h *inventory.Host) (Conn, error) {
	r.mu.Lock()
	hc, ok := r.conns[h.Name]
	if !ok {
		hc = &hostConn{done: make(chan struct{})}
		r.conns[h.Name] = hc
	}
	r.mu.Unlock()
	if ok {
		select {
		case <-hc.done:
			return hc.conn, hc.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	hc.conn, hc.err = r.dialer.Dial(ctx, h)
	if hc.err == nil {
		r.secrets.watch(hc.conn)
	}
	close(hc.done)
	return hc.conn, hc.err
}

// peer returns the connection to another host of the inventory. A host
// outside the run (adding a node reads the join token from a control plane
// that the run does not otherwise touch) is dialled within the asking
// host's concurrency slot, so peers never raise the run's concurrency.
func (r *run) peer(ctx context.Context, name string) (Executor, error) {
	for i := range r.cluster.Hosts {
		if h := &r.cluster.Hosts[i]; h.Name == name {
			conn, err := r.connect(ctx, h)
			if err != nil {
				return nil, fmt.Errorf("connect to %s: %w", name, err)
			}
			return conn, nil
		}
	}
	return nil, fmt.Errorf("no host %q in the inventory", name)
}

func (r *run) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, hc := range r.conns {
		<-hc.done
		if hc.conn != nil {
			hc.conn.Close()
		}
	}
}
