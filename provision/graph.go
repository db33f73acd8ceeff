package provision

import (
	"fmt"
	"slices"
	"strings"
)

// stepGraph is the run's steps in the order they run on a host, and for
// each the steps it waits for on every host.
type stepGraph struct {
	steps []Step
	after map[string][]string
}

// CheckSteps checks a step list before anything runs: names are unique
// and of the form phase/concern, and every step a step waits for (After)
// exists and comes earlier in the list, so no wait can go unanswered and
// no order can loop; and every step a step depends on (DependsOn) comes
// earlier too, so a misspelt name cannot leave a step undecided on a stale
// probe.
func CheckSteps(steps []Step) error {
	var errs []string
	index := map[string]int{}
	for i, s := range steps {
		name := s.Name()
		phase, concern, ok := strings.Cut(name, "/")
		if !ok || phase == "" || concern == "" {
			errs = append(errs, fmt.Sprintf("step %d is named %q: want phase/concern", i+1, name))
		}
		if j, dup := index[name]; dup {
			errs = append(errs, fmt.Sprintf("step %q is listed twice (steps %d and %d)", name, j+1, i+1))
			continue
		}
		index[name] = i
	}
	for i, s := range steps {
		for _, a := range afterOf(s) {
			j, ok := index[a]
			switch {
			case a == s.Name():
				errs = append(errs, fmt.Sprintf("step %q waits for itself", a))
			case !ok:
				errs = append(errs, fmt.Sprintf("step %q waits for %q, which is not a step", s.Name(), a))
			case j > i:
				if cycle := findCycle(steps, s.Name()); cycle != nil {
					errs = append(errs, fmt.Sprintf("steps wait for each other in a cycle: %s", strings.Join(cycle, " -> ")))
				} else {
					errs = append(errs, fmt.Sprintf("step %q waits for %q, which comes later in the list; move %q before it", s.Name(), a, a))
				}
			}
		}
	}
	for i, s := range steps {
		deps, _ := dependencies(s)
		for _, d := range deps {
			if j, ok := index[d]; !ok || j >= i {
				errs = append(errs, fmt.Sprintf("step %q depends on %q, which is not a step before it", s.Name(), d))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("the step list is broken (a bug in kprep):\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// findCycle returns a cycle of After relations through start, or nil.
func findCycle(steps []Step, start string) []string {
	after := map[string][]string{}
	for _, s := range steps {
		after[s.Name()] = afterOf(s)
	}
	var path []string
	seen := map[string]bool{}
	var walk func(name string) bool
	walk = func(name string) bool {
		path = append(path, name)
		for _, next := range after[name] {
			if next == start {
				path = append(path, start)
				return true
			}
			if !seen[next] {
				seen[next] = true
				if walk(next) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if walk(start) {
		return path
	}
	return nil
}

// newStepGraph orders the steps for a run. Reverse is teardown: the list
// runs backwards on each host, and every After turns around, so a step
// that waited for another on apply now goes first (reset removes the
// workers before the control planes they joined).
func newStepGraph(steps []Step, reverse bool) stepGraph {
	g := stepGraph{steps: slices.Clone(steps), after: map[string][]string{}}
	if !reverse {
		for _, s := range steps {
			g.after[s.Name()] = afterOf(s)
		}
		return g
	}
	slices.Reverse(g.steps)
	for _, s := range steps {
		for _, a := range afterOf(s) {
			g.after[a] = append(g.after[a], s.Name())
		}
	}
	return g
}

// phaseOf is the part of a step's name that --phase selects.
func phaseOf(step string) string {
	phase, _, _ := strings.Cut(step, "/")
	return phase
}
