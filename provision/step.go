// Package provision is the step engine: it probes every host in one round
// trip, asks each step what differs, applies only that, verifies it and
// reports the result per host and step. It knows hosts, steps, order and
// concurrency; it knows nothing of Docker, SELinux or kubeadm.
package provision

import (
	"context"

	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

// Executor runs commands and writes files on one host. *transport.Conn is
// the real one; tests may pass a fake.
type Executor interface {
	// Run runs cmd as root and returns its result; a non-zero exit is a
	// *transport.CommandError.
	Run(ctx context.Context, cmd transport.Command) (transport.Result, error)
	// WriteFile replaces path atomically with data, keeping the original's
	// owner and mode and a one-time backup of it.
	WriteFile(ctx context.Context, path string, data []byte, opts transport.WriteOptions) error
}

// Step owns one concern on a host (swap, daemon.json, kubeadm init, ...).
type Step interface {
	// Name is "phase/concern", e.g. "hostprep/swap". The part before the
	// slash is the phase that --phase selects.
	Name() string
	// Probe returns a POSIX shell snippet that prints the state the step
	// needs. The engine runs every step's snippet in one script per host and
	// hands each step its own output back as Input.State. The snippet must
	// not change the host.
	Probe(h *inventory.Host, c *inventory.Cluster) string
	// Diff compares the probed state with what the inventory asks for and
	// returns what has to change. It must be a pure function of its input.
	Diff(in Input) ([]Change, error)
	// Apply makes exactly the given changes on the host.
	Apply(ctx context.Context, t Target, in Input, changes []Change) error
}

// HostFilter is implemented by steps that run on some hosts only (by role,
// by OS); others run on every host.
type HostFilter interface {
	AppliesTo(h *inventory.Host, c *inventory.Cluster) bool
}

// Sequenced is implemented by steps that must wait for other steps to have
// finished on every host they apply to (kubeadm join waits for kubeadm init
// on the first control plane). Cross-host order is declared, not coded.
// Every name must be a step that comes earlier in the run's list; Run
// refuses a list that breaks this.
type Sequenced interface {
	After() []string
}

// Warner is implemented by steps that have something to say that does not
// stop them: a setup that works but is outside what upstream supports. The
// engine calls Warnings after Diff, in plan and apply alike; the report
// shows them with the step.
type Warner interface {
	Warnings(in Input) []string
}

// Serial is implemented by steps that run on one host at a time across the
// run (control planes join one by one, each checked before the next),
// while every other step keeps full parallelism. A host that waited for its
// turn probes the step again before it decides, when another host changed
// the step meanwhile.
type Serial interface {
	Serial() bool
}

// ProbedOnce is implemented by steps whose probe asks something outside
// the host that no step of the run changes (a registry, over the
// network), one request per item: the host's first probe asks, and the
// re-probes after other steps changed the host keep that answer instead
// of asking again. The step's own state must not depend on what earlier
// steps change, or only in the direction of asking more.
type ProbedOnce interface {
	ProbedOnce() bool
}

// probedOnce reports whether s is a ProbedOnce step.
func probedOnce(s Step) bool {
	p, ok := s.(ProbedOnce)
	return ok && p.ProbedOnce()
}

// Independent is implemented by steps whose decision on their first probe
// stays right whatever the steps before them change on the host: the probe
// reads nothing they change (the hostname, firewalld, SELinux, swap, the
// package repo: each reads only its own files and services), or what it
// reads of theirs can only make it do more (sysctl reads the bridge keys
// that loading br_netfilter creates: probed before, a key is missing, so
// sysctl sets it, after the modules step has loaded the module). Such a
// step is not probed again after an earlier change, and it goes ahead of
// that change's verify: the engine verifies a run of changes, and the next
// step's probe, in one round trip, so a fresh host's first apply pays one
// verify for the run instead of one per change. Applies still run in step
// order. A step that could decide wrong on an old probe (daemon.json's
// defaults come from the dockerd the packages step installs) must not say
// so.
type Independent interface {
	Independent() bool
}

// DependsOn is implemented by steps whose decision depends on what some
// earlier steps change, and on nothing else the run changes: daemon.json's
// defaults come from the dockerd that the packages step installs, not from
// the proxy drop-in or the sysctl file. DependsOn names those steps. Such
// a step is probed again only after one of them changed the host, and it
// may go ahead of the verify of a change it does not depend on, like an
// Independent step. The verify after the last of the steps it names
// probes it along (nothing can make that probe stale again), so a change
// in between costs it no round trip of its own. A step that implements
// neither depends on every step before it. Every name must be a step that
// comes earlier in the run's list; Run refuses a list that breaks this.
type DependsOn interface {
	DependsOn() []string
}

// Input is what a step sees of one host: the inventory, the host's facts and
// the output of the step's own probe snippet.
type Input struct {
	Cluster *inventory.Cluster
	Host    *inventory.Host
	Facts   facts.Facts
	// State is the output of the step's Probe snippet.
	State string
}

// Change is one difference between a host and the inventory, said in words
// a person understands, plus what the step needs to mend it.
type Change struct {
	// Key identifies the change to the step that made it ("fstab", "runtime").
	Key string
	// Summary says what differs: "swap is on: /dev/mapper/centos-swap, 2.0 GiB".
	Summary string
	// Action says what apply does about it: "swapoff -a; comment fstab line 12".
	Action string `json:",omitempty"`
	// Value is step-private data for Apply (file content, package list...).
	Value any `json:"-"`
}

// Target is the host a step changes: its executor plus ways to reach the
// other hosts of the run (a join needs a token from the first control plane).
type Target struct {
	Executor
	Host *inventory.Host
	// Peer returns the executor of another host of the inventory, by name.
	// Each host is dialled once per run and the connection shared; what a
	// step runs through it is recorded in the step's commands and the run
	// log, prefixed with the peer's name.
	Peer func(name string) (Executor, error)
	// Once returns the run's value for key, making it with make the first
	// time any host asks (the others wait for it). See Shared.
	Once func(ctx context.Context, key string, mk MakeShared) (string, error)
}

// MakeShared makes a value that several hosts' steps share within one run.
type MakeShared func(ctx context.Context) (Shared, error)

// Shared is a value computed once per run by one host's step and read by
// others: a join token, a certificate key, the CA's hash. Only apply makes
// them (plan never runs Apply), and they live in memory for the run only.
type Shared struct {
	Value string
	// Secret values are masked ("***") in every command line, error, log
	// line and report of the run, like passwords.
	Secret bool
	// Release, when set, runs once when every host is done (delete the join
	// token); its errors are reported as warnings of the run.
	Release func(ctx context.Context) error
}
