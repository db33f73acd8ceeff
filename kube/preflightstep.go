package kube

import (
	"context"
	"errors"
	"strings"

	"github.com/kprep/kprep/kube/preflight"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
)

// PreflightStep stops the kube phase on a host that kubeadm or the
// kubelet cannot work on (a kernel too old for the Kubernetes version,
// cgroup v1 where the kubelet refuses it, ipvs without its modules...),
// with the fix in words, in plan as in apply: it reads nothing but the
// facts the probe already has. What works but is outside what upstream
// supports is a warning in the report.
type PreflightStep struct{}

// Name implements provision.Step.
func (PreflightStep) Name() string { return "kube/preflight" }

// Probe needs nothing beyond the facts.
func (PreflightStep) Probe(*inventory.Host, *inventory.Cluster) string { return ":" }

// Diff implements provision.Step: the errors, if any, fail the step.
func (PreflightStep) Diff(in provision.Input) ([]provision.Planned[struct{}], error) {
	var errs []string
	for _, p := range preflight.Check(in.Cluster, in.Host, in.Facts) {
		if p.Severity == preflight.Error {
			errs = append(errs, p.Check+": "+p.Summary+"; "+p.Fix)
		}
	}
	if len(errs) > 0 {
		return nil, errors.New("the kube phase cannot run on this host:\n" + strings.Join(errs, "\n"))
	}
	return nil, nil
}

// Warnings implements provision.Warner.
func (PreflightStep) Warnings(in provision.Input) []string {
	var out []string
	for _, p := range preflight.Check(in.Cluster, in.Host, in.Facts) {
		if p.Severity == preflight.Warning {
			out = append(out, p.Check+": "+p.Summary+"; "+p.Fix)
		}
	}
	return out
}

// Apply never runs: Diff returns no change.
func (PreflightStep) Apply(context.Context, provision.Target, provision.Input, []provision.Planned[struct{}]) error {
	return nil
}
