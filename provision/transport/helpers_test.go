package transport_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/provision/transport/sshdtest"
)

// env is an injected environment, so tests never read or change the
// process's own (SSH_AUTH_SOCK in particular).
type env map[string]string

func (e env) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// testHost is the inventory name every test connection uses; errors must
// name it.
const testHost = "node-under-test"

// configFor logs in to srv as user with the server's client key and no host
// key checks; tests change what they test.
func configFor(srv *sshdtest.Server, user string) transport.Config {
	return transport.Config{
		Host:    testHost,
		Address: srv.Host,
		SSH: inventory.SSH{
			User:           user,
			Port:           srv.Port,
			PrivateKeyFile: srv.ClientKeyFile,
			HostKeyPolicy:  transport.PolicyInsecure,
		},
		LookupEnv: env{}.lookup,
	}
}

// dial connects and closes the connection when the test ends.
func dial(t testing.TB, cfg transport.Config) *transport.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// run runs line and fails the test on any error.
func run(t testing.TB, c *transport.Conn, cmd transport.Command) transport.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := c.Run(ctx, cmd)
	if err != nil {
		t.Fatalf("Run(%q): %v", cmd.Line, err)
	}
	return res
}

func commandError(t testing.TB, err error) *transport.CommandError {
	t.Helper()
	var ce *transport.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *CommandError, got %T: %v", err, err)
	}
	return ce
}

// waitGone waits until no local process's command line contains pattern
// (sshd runs on this machine, so remote processes are local ones). It
// gives the kernel a moment to reap; a process that stays fails the test.
// waitGone waits for the processes matching pattern to be gone. Their end
// is a condition, not a speed: on a loaded machine the stop (a second
// session, TERM, a grace period, KILL) can take many seconds, so the limit
// is a hang guard of two minutes, never a margin a slow machine can miss.
func waitGone(t testing.TB, pattern string) {
	t.Helper()
	var out []byte
	for range 2400 {
		var err error
		out, err = exec.Command("pgrep", "-a", "-f", pattern).Output()
		if err != nil { // pgrep exits 1 when nothing matches
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("processes matching %q are still running:\n%s", pattern, out)
}

func mustContain(t testing.TB, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}
