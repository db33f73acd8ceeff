package provision

import (
	"time"

	"github.com/kprep/kprep/provision/facts"
)

// Status is the outcome of one step on one host.
type Status string

// The outcomes a step can have.
const (
	// StatusUnchanged: the host already matched; nothing was run.
	StatusUnchanged Status = "unchanged"
	// StatusPending: plan found differences that apply would mend.
	StatusPending Status = "pending"
	// StatusChanged: apply mended the differences and verified them.
	StatusChanged Status = "changed"
	// StatusFailed: the step could not be probed, diffed, applied or verified.
	StatusFailed Status = "failed"
	// StatusSkipped: the step did not run (an earlier step or a step it
	// waits for failed, or the run was cancelled).
	StatusSkipped Status = "skipped"
)

// StepResult is what happened to one step on one host.
type StepResult struct {
	Name    string   `json:"name"`
	Status  Status   `json:"status"`
	Changes []Change `json:"changes"`
	Error   string   `json:"error,omitempty"`
	// Warnings are what the step said that does not stop it (Warner).
	Warnings []string `json:"warnings,omitempty"`
	// Commands are the command lines apply ran for this step (secrets
	// masked); empty when nothing was run.
	Commands []string      `json:"commands,omitempty"`
	Duration time.Duration `json:"-"`
	// DurationMs is Duration for JSON readers.
	DurationMs int64 `json:"durationMs"`
}

// HostResult is what happened on one host.
type HostResult struct {
	Name    string       `json:"name"`
	Address string       `json:"address"`
	Facts   *facts.Facts `json:"facts,omitempty"`
	// Error is a failure outside any step (connection, lock, probe, facts).
	Error string       `json:"error,omitempty"`
	Steps []StepResult `json:"steps"`
	// Interrupted names the step that was running when the run was
	// cancelled, so the user knows which host was left mid-step.
	Interrupted string        `json:"interrupted,omitempty"`
	Duration    time.Duration `json:"-"`
	DurationMs  int64         `json:"durationMs"`
	// Time splits Duration by what it went on.
	Time HostTime `json:"time"`
}

// HostTime splits a host's time in a run by what it went on, so that the
// work a host needed (its package manager, daemons and files: the steps'
// Apply) can be told from what kprep itself cost it (connecting, probing,
// verifying, deciding) and from waiting for other hosts. The report sums
// it over the hosts too (Report.Time).
type HostTime struct {
	Connect time.Duration `json:"-"`
	Probe   time.Duration `json:"-"`
	Apply   time.Duration `json:"-"`
	Wait    time.Duration `json:"-"`
	// Own is kprep's own share: the host's duration but the steps' Apply
	// and the waits (connecting, probing, verifying, diffing, the lock and
	// the run log).
	Own time.Duration `json:"-"`
	// Probes counts the probe round trips: the first, and one per verify
	// or re-probe.
	Probes int `json:"probes"`
	// The durations in milliseconds, for JSON readers.
	ConnectMs int64 `json:"connectMs"`
	ProbeMs   int64 `json:"probeMs"`
	ApplyMs   int64 `json:"applyMs"`
	WaitMs    int64 `json:"waitMs"`
	OwnMs     int64 `json:"ownMs"`
}

// finish sets Own from the host's whole duration d, and the milliseconds.
func (t *HostTime) finish(d time.Duration) {
	t.Own = max(d-t.Apply-t.Wait, 0)
	t.fillMs()
}

// add sums another host's time into t (Report.Time).
func (t *HostTime) add(o HostTime) {
	t.Connect, t.Probe, t.Apply = t.Connect+o.Connect, t.Probe+o.Probe, t.Apply+o.Apply
	t.Wait, t.Own, t.Probes = t.Wait+o.Wait, t.Own+o.Own, t.Probes+o.Probes
	t.fillMs()
}

func (t *HostTime) fillMs() {
	t.ConnectMs, t.ProbeMs = t.Connect.Milliseconds(), t.Probe.Milliseconds()
	t.ApplyMs, t.WaitMs, t.OwnMs = t.Apply.Milliseconds(), t.Wait.Milliseconds(), t.Own.Milliseconds()
}

// Failed reports whether anything on the host failed.
func (h *HostResult) Failed() bool {
	if h.Error != "" || h.Interrupted != "" {
		return true
	}
	for _, s := range h.Steps {
		if s.Status == StatusFailed {
			return true
		}
	}
	return false
}

// Pending reports whether plan found changes on the host.
func (h *HostResult) Pending() bool {
	for _, s := range h.Steps {
		if s.Status == StatusPending {
			return true
		}
	}
	return false
}

// Report is the result of one run over all hosts, in inventory order.
type Report struct {
	Mode  Mode         `json:"mode"`
	Hosts []HostResult `json:"hosts"`
	// Warnings are problems outside any host's steps that did not fail the
	// run, such as a join token that could not be deleted at the end.
	Warnings   []string      `json:"warnings,omitempty"`
	Duration   time.Duration `json:"-"`
	DurationMs int64         `json:"durationMs"`
	// Time is the hosts' times summed.
	Time HostTime `json:"time"`
}

// Failed reports whether any host failed.
func (r *Report) Failed() bool {
	for i := range r.Hosts {
		if r.Hosts[i].Failed() {
			return true
		}
	}
	return false
}

// Pending reports whether plan found changes on any host.
func (r *Report) Pending() bool {
	for i := range r.Hosts {
		if r.Hosts[i].Pending() {
			return true
		}
	}
	return false
}

// Observer hears of a run's progress as it happens (live output, logs).
// Calls come from many goroutines; implementations serialise themselves.
type Observer interface {
	HostStarted(host string)
	StepStarted(host, step string)
	StepFinished(host string, r StepResult)
	HostFinished(host string, r HostResult)
}

// NopObserver ignores every event.
type NopObserver struct{}

// HostStarted does nothing.
func (NopObserver) HostStarted(string) {}

// StepStarted does nothing.
func (NopObserver) StepStarted(string, string) {}

// StepFinished does nothing.
func (NopObserver) StepFinished(string, StepResult) {}

// HostFinished does nothing.
func (NopObserver) HostFinished(string, HostResult) {}
