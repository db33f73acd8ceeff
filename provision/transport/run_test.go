package transport_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/provision/transport/sshdtest"
)

func TestRunAsRoot(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	c := dial(t, configFor(srv, "root"))

	res := run(t, c, transport.Command{Line: `id -u; echo "$LC_ALL"`})
	if got := string(res.Stdout); got != "0\nC\n" {
		t.Errorf("stdout = %q, want uid 0 and LC_ALL=C", got)
	}
	if len(res.Stderr) != 0 {
		t.Errorf("stderr = %q, want nothing (the start marker must be stripped)", res.Stderr)
	}

	res = run(t, c, transport.Command{Line: "cat; printf x", Stdin: []byte("in\x00put\n")})
	if got := string(res.Stdout); got != "in\x00put\nx" {
		t.Errorf("stdin did not reach the command unchanged: stdout = %q", got)
	}
	// A command that reads stdin without being given any must see EOF, not hang.
	if res := run(t, c, transport.Command{Line: "cat"}); len(res.Stdout) != 0 {
		t.Errorf("cat without stdin printed %q", res.Stdout)
	}

	_, err := c.Run(context.Background(), transport.Command{Line: "echo out; echo oops >&2; exit 3"})
	ce := commandError(t, err)
	if ce.Status != 3 || ce.Stderr != "oops" || ce.Host != testHost || ce.TimedOut {
		t.Errorf("CommandError = %+v, want status 3, stderr oops, host %s", ce, testHost)
	}
	mustContain(t, "error", err.Error(), testHost, "exited 3", "exit 3", "oops")

	// The line may be a multi-line script with its own quotes.
	res = run(t, c, transport.Command{Line: "x='it''s'\nif [ \"$x\" = its ]; then echo \"quoted: $x\"; fi"})
	if got := string(res.Stdout); got != "quoted: its\n" {
		t.Errorf("script stdout = %q", got)
	}
}

func TestRunTimeoutStopsRemoteProcess(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	for i, user := range []string{"root", users.SudoNoPassword, users.SudoPassword} {
		t.Run(user, func(t *testing.T) {
			cfg := configFor(srv, user)
			cfg.SSH.SudoPasswordEnv = "SUDO_PW"
			cfg.LookupEnv = env{"SUDO_PW": users.Password}.lookup
			c := dial(t, cfg)
			// A unique argument finds the remote processes afterwards; the
			// child shell and the trap prove the whole group is ended, not
			// just the process sshd started.
			line := fmt.Sprintf("sh -c 'trap \"\" TERM; sleep 3%d07'; echo never", i)
			_, err := c.Run(context.Background(), transport.Command{Line: line, Timeout: time.Second})
			ce := commandError(t, err)
			if !ce.TimedOut || ce.Status != -1 {
				t.Errorf("CommandError = %+v, want TimedOut and status -1", ce)
			}
			mustContain(t, "error", err.Error(), testHost, "timed out", fmt.Sprintf("sleep 3%d07", i))
			waitGone(t, fmt.Sprintf("sleep 3%d07", i))
			// The connection still works after a timeout.
			if res := run(t, c, transport.Command{Line: "echo ok"}); string(res.Stdout) != "ok\n" {
				t.Errorf("after a timeout: stdout = %q", res.Stdout)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	c := dial(t, configFor(srv, "root"))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel) // once the command runs
	_, err := c.Run(ctx, transport.Command{Line: "sleep 3917"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	ce := commandError(t, err)
	if ce.TimedOut {
		t.Errorf("a cancel is not a timeout: %+v", ce)
	}
	mustContain(t, "error", err.Error(), testHost, "sleep 3917")
	waitGone(t, "sleep 3917")
}

func TestDefaultCommandTimeout(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	cfg := configFor(srv, "root")
	cfg.CommandTimeout = 500 * time.Millisecond
	c := dial(t, cfg)
	_, err := c.Run(context.Background(), transport.Command{Line: "sleep 3918"})
	if ce := commandError(t, err); !ce.TimedOut || ce.Timeout != cfg.CommandTimeout {
		t.Errorf("CommandError = %+v, want the connection's default timeout", ce)
	}
	// A command's own timeout wins over the default: a command that outlives
	// the default succeeds under its own. Its limit is far beyond what it
	// needs, because a root session's start alone can take seconds on a busy
	// machine (a login shell that runs `pyenv rehash` waits for every other
	// root shell's turn at its lock): the test must not depend on speed.
	run(t, c, transport.Command{Line: "sleep 1", Timeout: 10 * time.Minute})
}

func TestSecretsAreRedacted(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	cfg := configFor(srv, users.SudoPassword)
	cfg.SSH.SudoPasswordEnv = "SUDO_PW"
	cfg.LookupEnv = env{"SUDO_PW": users.Password}.lookup
	var mu sync.Mutex
	var logged []transport.CommandLog
	cfg.LogCommand = func(l transport.CommandLog) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, l)
	}
	c := dial(t, cfg)

	const token = "abcdef.0123456789abcdef"
	line := "echo " + token + "; echo " + token + " >&2; echo " + users.Password + " >&2; exit 4"
	res, err := c.Run(context.Background(), transport.Command{Line: line, Secrets: []string{token}})
	ce := commandError(t, err)
	if string(res.Stdout) != token+"\n" {
		t.Errorf("stdout = %q: stdout is the caller's and is not redacted", res.Stdout)
	}
	for what, s := range map[string]string{
		"error": err.Error(), "CommandError.Line": ce.Line, "CommandError.Stderr": ce.Stderr,
		"Result.Stderr": string(res.Stderr),
	} {
		if strings.Contains(s, token) || strings.Contains(s, users.Password) {
			t.Errorf("%s leaks a secret: %q", what, s)
		}
		if !strings.Contains(s, "***") {
			t.Errorf("%s shows no *** where the secret was: %q", what, s)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 {
		t.Fatalf("logged %d commands, want 1", len(logged))
	}
	l := logged[0]
	if l.Host != testHost || l.Status != 4 || l.Err == nil || l.Duration <= 0 {
		t.Errorf("log entry = %+v", l)
	}
	if strings.Contains(l.Line, token) || !strings.Contains(l.Line, "echo ***") {
		t.Errorf("logged line = %q, want the token redacted", l.Line)
	}
	mu.Unlock()

	// A secret learnt later (a join token a run made) is masked from then
	// on, though the command does not name it in Secrets.
	const later = "0123456789abcdef0123456789abcdef"
	c.AddSecret(later)
	_, err = c.Run(context.Background(), transport.Command{Line: "echo " + later + " >&2; exit 1"})
	mu.Lock()
	for what, s := range map[string]string{"error": err.Error(), "logged line": logged[len(logged)-1].Line} {
		if strings.Contains(s, later) || !strings.Contains(s, "***") {
			t.Errorf("%s after AddSecret = %q, want the secret masked", what, s)
		}
	}
}

func TestOneConnectionForEverything(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	for _, user := range []string{"root", users.SudoNoPassword} {
		t.Run(user, func(t *testing.T) {
			c := dial(t, configFor(srv, user))
			dir := t.TempDir()
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Add(1)
				go func() { // concurrent commands share the connection too
					defer wg.Done()
					run(t, c, transport.Command{Line: fmt.Sprintf("echo %d", i)})
				}()
			}
			wg.Wait()
			for i := range 5 {
				p := fmt.Sprintf("%s/f%d", dir, i)
				if err := c.WriteFile(context.Background(), p, []byte("x"), transport.WriteOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := c.ReadFile(context.Background(), p); err != nil {
					t.Fatal(err)
				}
			}
			st := c.Stats()
			if st.Dials != 1 || st.Files != 5 || st.Commands < 20 {
				t.Errorf("Stats = %+v, want 1 dial, 5 files, at least 20 commands", st)
			}
		})
	}
	// The server agrees: one login per user.
	if n := strings.Count(srv.Log(), "Accepted publickey"); n != 2 {
		t.Errorf("sshd accepted %d logins, want 2 (one per connection)", n)
	}
}
