package steptest

import (
	"context"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

// FakeHost is an Executor that answers commands from canned replies and
// records what was run and written, for Apply tests.
type FakeHost struct {
	Replies map[string]string // command prefix -> stdout
	Fail    map[string]string // command prefix -> stderr of a failure
	Ran     []string
	Written map[string][]byte
}

// Run implements provision.Executor.
func (f *FakeHost) Run(_ context.Context, cmd transport.Command) (transport.Result, error) {
	f.Ran = append(f.Ran, cmd.Line)
	for prefix, stderr := range f.Fail {
		if strings.HasPrefix(cmd.Line, prefix) {
			return transport.Result{Status: 1}, &transport.CommandError{Host: "fake", Line: cmd.Line, Status: 1, Stderr: stderr}
		}
	}
	for prefix, out := range f.Replies {
		if strings.HasPrefix(cmd.Line, prefix) {
			return transport.Result{Stdout: []byte(out)}, nil
		}
	}
	return transport.Result{}, nil
}

// WriteFile implements provision.Executor.
func (f *FakeHost) WriteFile(_ context.Context, path string, data []byte, _ transport.WriteOptions) error {
	if f.Written == nil {
		f.Written = map[string][]byte{}
	}
	f.Written[path] = data
	return nil
}

// Target is the fake as the target of a step on h.
func (f *FakeHost) Target(h *inventory.Host) provision.Target {
	return provision.Target{Executor: f, Host: h}
}
