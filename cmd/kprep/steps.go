package main

import (
	"fmt"

	"github.com/kprep/kprep/hostprep"
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

// selectSteps returns the steps of the selected phases (all when none).
func selectSteps(selected []string) ([]provision.Step, error) {
	want := map[string]bool{}
	for _, name := range selected {
		if !knownPhase(name) {
			return nil, fmt.Errorf("unknown phase %q", name)
		}
		want[name] = true
	}
	var steps []provision.Step
	for _, p := range phases {
		if len(want) == 0 || want[p.name] {
			steps = append(steps, p.steps()...)
		}
	}
	return steps, nil
}
