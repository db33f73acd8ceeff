package transport_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/provision/transport/sshdtest"
)

func TestStartRunsBesideOtherCommands(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	for _, user := range []string{"root", users.SudoNoPassword, users.SudoPassword} {
		t.Run(user, func(t *testing.T) {
			cfg := configFor(srv, user)
			cfg.SSH.SudoPasswordEnv = "PW"
			cfg.LookupEnv = env{"PW": users.Password}.lookup
			cfg.CommandTimeout = 200 * time.Millisecond // must not apply to Start
			c := dial(t, cfg)
			log := filepath.Join(t.TempDir(), "run.log")

			// Like the engine's lock session: say something, then copy
			// stdin to a file until EOF.
			p, err := c.Start(context.Background(), transport.Command{
				Line:  "id -u; echo ready; exec cat >" + log,
				Stdin: []byte("first "),
			})
			if err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(p.Stdout())
			for _, want := range []string{"0\n", "ready\n"} {
				if got, err := r.ReadString('\n'); got != want || err != nil {
					t.Fatalf("stdout line = %q, %v; want %q", got, err, want)
				}
			}
			// Other commands run meanwhile, and longer than the default
			// timeout passes.
			run(t, c, transport.Command{Line: "true", Timeout: time.Minute})
			time.Sleep(300 * time.Millisecond)
			if _, err := io.WriteString(p.Stdin(), "second\n"); err != nil {
				t.Fatal(err)
			}
			p.Stdin().Close()
			if err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(log); string(got) != "first second\n" {
				t.Errorf("the command read %q from stdin, want exactly what was written (no password)", got)
			}
		})
	}
}

func TestStartFailureAndCancel(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	c := dial(t, configFor(srv, "root"))

	p, err := c.Start(context.Background(), transport.Command{Line: "echo nope >&2; exit 75"})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, p.Stdout())
	ce := commandError(t, p.Wait())
	if ce.Status != 75 || ce.Stderr != "nope" {
		t.Errorf("CommandError = %+v, want status 75 and stderr", ce)
	}

	ctx, cancel := context.WithCancel(context.Background())
	p, err = c.Start(ctx, transport.Command{Line: "echo up; sleep 3919"})
	if err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(p.Stdout()).ReadString('\n'); line != "up\n" {
		t.Fatalf("stdout = %q", line)
	}
	cancel() // nobody is in Wait: the cancel alone must end the command
	waitGone(t, "sleep 3919")
	if err := p.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after cancel = %v, want context.Canceled", err)
	}
}

// A request a started process ran for its caller (the engine's probes in
// the lock session) shows in the command log like a command, redacted.
func TestStartedProcessLogsItsRequests(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	cfg := configFor(srv, "root")
	var logged []transport.CommandLog
	cfg.LogCommand = func(l transport.CommandLog) { logged = append(logged, l) }
	c := dial(t, cfg)
	c.AddSecret("hunter2")
	p, err := c.Start(context.Background(), transport.Command{Line: "exec cat >/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	lg, ok := p.(interface {
		LogRequest(label string, d time.Duration, err error)
	})
	if !ok {
		t.Fatalf("%T cannot log a request", p)
	}
	lg.LogRequest("probe with hunter2", time.Second, errors.New("lost hunter2"))
	p.Stdin().Close()
	p.Wait()
	if len(logged) < 1 {
		t.Fatal("nothing logged")
	}
	got := logged[0]
	if got.Host != testHost || got.Line != "probe with ***" || got.Duration != time.Second || got.Status != -1 || got.Err == nil || got.Err.Error() != "lost ***" {
		t.Errorf("logged %+v", got)
	}
}
