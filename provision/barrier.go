package provision

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/kprep/kprep/provision/inventory"
)

// barrier tracks one step across the hosts it applies to, so that steps
// declared After it can wait until it has finished everywhere.
type barrier struct {
	pending map[string]bool // hosts still to finish
	failed  []string        // hosts where it did not succeed
	closed  chan struct{}
}

// barriers is every step's barrier, keyed by step name.
type barriers struct {
	mu  sync.Mutex
	all map[string]*barrier
}

func newBarriers(steps []Step, hosts []*inventory.Host, c *inventory.Cluster) *barriers {
	b := &barriers{all: map[string]*barrier{}}
	for _, s := range steps {
		br := &barrier{pending: map[string]bool{}, closed: make(chan struct{})}
		for _, h := range hosts {
			if appliesTo(s, h, c) {
				br.pending[h.Name] = true
			}
		}
		if len(br.pending) == 0 {
			close(br.closed)
		}
		b.all[s.Name()] = br
	}
	return b
}

// done records that step has finished (ok or not) on host.
func (b *barriers) done(step, host string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	br := b.all[step]
	if br == nil || !br.pending[host] {
		return
	}
	delete(br.pending, host)
	if !ok {
		br.failed = append(br.failed, host)
	}
	if len(br.pending) == 0 {
		close(br.closed)
	}
}

// wait blocks until every named step has finished on all its hosts. It
// fails when one of them did not succeed somewhere, or ctx ends.
func (b *barriers) wait(ctx context.Context, steps []string) error {
	for _, name := range steps {
		b.mu.Lock()
		br := b.all[name]
		b.mu.Unlock()
		if br == nil {
			continue // not selected in this run: the host state decides
		}
		select {
		case <-br.closed:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.mu.Lock()
		failed := append([]string(nil), br.failed...)
		b.mu.Unlock()
		if len(failed) > 0 {
			sort.Strings(failed)
			return fmt.Errorf("waits for %s, which did not succeed on %s", name, strings.Join(failed, ", "))
		}
	}
	return nil
}
