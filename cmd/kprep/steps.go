package main

import (
	"github.com/kprep/kprep/hostprep"
	"github.com/kprep/kprep/kube"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/runtime"
)

// phase is a group of steps that --phase selects.
type phase struct {
	name  string
	steps func() []provision.Step
}

// phases lists every step kprep has, in the order they run on a host.
// This is the one place to read to know what apply does.
var phases = []phase{
	{name: "hostprep", steps: hostprep.Steps},
	{name: "runtime", steps: runtime.Steps},
	{name: "kube", steps: kube.Steps},
}

func knownPhase(name string) bool {
	for _, p := range phases {
		if p.name == name {
			return true
		}
	}
	return false
}

func phaseNames() []string {
	var out []string
	for _, p := range phases {
		out = append(out, p.name)
	}
	return out
}

// allSteps returns every step of every phase, in run order: the engine
// checks the whole list and runs the phases --phase selects.
func allSteps() []provision.Step {
	var steps []provision.Step
	for _, p := range phases {
		steps = append(steps, p.steps()...)
	}
	return steps
}
