package provision

import (
	"context"
	"fmt"

	"github.com/kprep/kprep/provision/inventory"
)

// Planned is one change a TypedStep plans: what differs, in words, and
// the data its Apply needs to mend it, of the step's own type.
type Planned[T any] struct {
	// Key identifies the change to the step that made it.
	Key string
	// Summary says what differs; Action what apply does about it.
	Summary, Action string
	// Data is what Apply needs (file content, package list...).
	Data T
}

// TypedStep is a step whose changes carry data of type T from Diff to
// Apply. Typed makes it a Step. Optional abilities (HostFilter, Sequenced,
// Serial) are implemented on the TypedStep itself.
type TypedStep[T any] interface {
	Name() string
	Probe(h *inventory.Host, c *inventory.Cluster) string
	Diff(in Input) ([]Planned[T], error)
	Apply(ctx context.Context, t Target, in Input, changes []Planned[T]) error
}

// Typed adapts a TypedStep to the engine's Step, so that a step's Apply
// receives its own data type and never asserts one.
func Typed[T any](s TypedStep[T]) Step { return typed[T]{s} }

type typed[T any] struct{ s TypedStep[T] }

func (t typed[T]) Name() string { return t.s.Name() }

func (t typed[T]) Probe(h *inventory.Host, c *inventory.Cluster) string { return t.s.Probe(h, c) }

func (t typed[T]) Diff(in Input) ([]Change, error) {
	planned, err := t.s.Diff(in)
	if err != nil || len(planned) == 0 {
		return nil, err
	}
	out := make([]Change, len(planned))
	for i, p := range planned {
		out[i] = Change{Key: p.Key, Summary: p.Summary, Action: p.Action, Value: p.Data}
	}
	return out, nil
}

func (t typed[T]) Apply(ctx context.Context, tg Target, in Input, changes []Change) error {
	planned := make([]Planned[T], len(changes))
	for i, c := range changes {
		// The engine hands Apply exactly what this adapter's Diff returned,
		// so the data is always a T; a nil interface holds T's zero value.
		var data T
		if c.Value != nil {
			v, ok := c.Value.(T)
			if !ok {
				return fmt.Errorf("internal error: change %q of %s carries %T, want %T", c.Key, t.s.Name(), c.Value, data)
			}
			data = v
		}
		planned[i] = Planned[T]{Key: c.Key, Summary: c.Summary, Action: c.Action, Data: data}
	}
	return t.s.Apply(ctx, tg, in, planned)
}

// AppliesTo implements HostFilter for the steps that have it.
func (t typed[T]) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	if f, ok := t.s.(HostFilter); ok {
		return f.AppliesTo(h, c)
	}
	return true
}

// After implements Sequenced for the steps that have it.
func (t typed[T]) After() []string {
	if q, ok := t.s.(Sequenced); ok {
		return q.After()
	}
	return nil
}

// Warnings implements Warner for the steps that have it.
func (t typed[T]) Warnings(in Input) []string {
	if w, ok := t.s.(Warner); ok {
		return w.Warnings(in)
	}
	return nil
}

// Serial implements Serial for the steps that have it.
func (t typed[T]) Serial() bool {
	if q, ok := t.s.(Serial); ok {
		return q.Serial()
	}
	return false
}

// Independent implements Independent for the steps that have it.
func (t typed[T]) Independent() bool {
	if q, ok := t.s.(Independent); ok {
		return q.Independent()
	}
	return false
}

// inner is the TypedStep itself, for the abilities whose absence means
// something other than a zero answer (DependsOn).
func (t typed[T]) inner() any { return t.s }

// ProbedOnce implements ProbedOnce for the steps that have it.
func (t typed[T]) ProbedOnce() bool {
	if q, ok := t.s.(ProbedOnce); ok {
		return q.ProbedOnce()
	}
	return false
}
