package provision

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/kprep/kprep/provision/transport"
)

// sharedValues holds the run's once-values (see Shared): the first host
// to ask for a key makes it, the others wait and read the same value.
type sharedValues struct {
	mu      sync.Mutex
	entries map[string]*sharedEntry
	order   []string // keys in the order they were made, for Release
}

type sharedEntry struct {
	done  chan struct{}
	value Shared
	err   error
}

// get returns key's value, making it when it is the first ask. A failure
// to make it is the answer for every host of the run: a join token that
// could not be made is not retried by the next worker.
func (v *sharedValues) get(ctx context.Context, key string, mk MakeShared, secrets *secretList) (string, error) {
	v.mu.Lock()
	if v.entries == nil {
		v.entries = map[string]*sharedEntry{}
	}
	e, ok := v.entries[key]
	if !ok {
		e = &sharedEntry{done: make(chan struct{})}
		v.entries[key] = e
		v.order = append(v.order, key)
	}
	v.mu.Unlock()
	if ok {
		select {
		case <-e.done:
			return e.value.Value, e.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	value, err := callMake(ctx, key, mk)
	if err == nil && value.Secret {
		// Known as a secret before anyone can print it.
		secrets.add(value.Value)
	}
	e.value, e.err = value, err
	close(e.done)
	return value.Value, err
}

// callMake runs mk, turning a panic into an error like a step's.
func callMake(ctx context.Context, key string, mk MakeShared) (v Shared, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("making the shared value %q panicked: %v", key, p)
		}
	}()
	return mk(ctx)
}

// release runs every made value's Release, newest first, and returns what
// failed.
func (v *sharedValues) release(ctx context.Context) []string {
	v.mu.Lock()
	keys := slices.Clone(v.order)
	v.mu.Unlock()
	var failed []string
	for i := len(keys) - 1; i >= 0; i-- {
		e := v.entries[keys[i]]
		select {
		case <-e.done:
		default:
			continue // still being made by a host that was cancelled
		}
		if e.err != nil || e.value.Release == nil {
			continue
		}
		if err := e.value.Release(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("release %s: %v", keys[i], err))
		}
	}
	return failed
}

// secretList is the run's secrets, masked wherever the run shows or logs
// anything. Connections learn them too, so -v output and command errors
// are masked at the source.
type secretList struct {
	mu      sync.Mutex
	values  []string
	holders []secretHolder
}

// secretHolder is a connection that masks secrets in what it logs.
type secretHolder interface {
	AddSecret(secret string)
}

func (s *secretList) add(secret string) {
	if secret == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values = append(s.values, secret)
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(s.values, func(i, j int) bool { return len(s.values[i]) > len(s.values[j]) })
	for _, h := range s.holders {
		h.AddSecret(secret)
	}
}

// watch makes a new connection mask the run's secrets, those known now and
// those made later.
func (s *secretList) watch(conn any) {
	h, ok := conn.(secretHolder)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.values {
		h.AddSecret(v)
	}
	s.holders = append(s.holders, h)
}

// redact masks every secret of the run in text.
func (s *secretList) redact(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return transport.Redact(text, s.values)
}
