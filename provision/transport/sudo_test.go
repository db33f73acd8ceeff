package transport_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/provision/transport/sshdtest"
)

func TestSudoWithoutPassword(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	c := dial(t, configFor(srv, users.SudoNoPassword))
	res := run(t, c, transport.Command{Line: `id -u; echo "$LC_ALL"; cat`, Stdin: []byte("to the command")})
	if got := string(res.Stdout); got != "0\nC\nto the command" {
		t.Errorf("stdout = %q, want root, LC_ALL=C and the stdin", got)
	}
	if len(res.Stderr) != 0 {
		t.Errorf("stderr = %q, want the markers stripped", res.Stderr)
	}
	_, err := c.Run(context.Background(), transport.Command{Line: "exit 7"})
	if ce := commandError(t, err); ce.Status != 7 {
		t.Errorf("status = %d, want 7 (the command's, not sudo's)", ce.Status)
	}

	// sudo: false runs as the login user.
	cfg := configFor(srv, users.SudoNoPassword)
	cfg.SSH.Sudo = "false"
	plain := dial(t, cfg)
	if got := string(run(t, plain, transport.Command{Line: "id -un"}).Stdout); got != users.SudoNoPassword+"\n" {
		t.Errorf("with sudo false: id -un = %q", got)
	}
}

func TestSudoWithPassword(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	cfg := configFor(srv, users.SudoPassword)
	cfg.SSH.SudoPasswordEnv = "KPREP_SUDO_PASSWORD"
	cfg.LookupEnv = env{"KPREP_SUDO_PASSWORD": users.Password}.lookup
	c := dial(t, cfg)
	// sudo asks every time for this user (timestamp_timeout=0), so each
	// command goes through the prompt.
	for range 3 {
		res := run(t, c, transport.Command{Line: "id -u; cat", Stdin: []byte("line one\nline two\n")})
		if got := string(res.Stdout); got != "0\nline one\nline two\n" {
			t.Errorf("stdout = %q: want root and exactly the given stdin, no password", got)
		}
		if len(res.Stderr) != 0 {
			t.Errorf("stderr = %q, want the prompt marker stripped", res.Stderr)
		}
	}
	res := run(t, c, transport.Command{Line: "cat"})
	if len(res.Stdout) != 0 {
		t.Errorf("cat with no stdin printed %q after sudo took its password", res.Stdout)
	}
}

func TestSudoPasswordNeverReachesCommand(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	// The user needs no password, so sudo never prompts: the configured
	// password must then not be written at all.
	cfg := configFor(srv, users.SudoNoPassword)
	cfg.SSH.SudoPasswordEnv = "SUDO_PW"
	const password = "never-send-me-unasked"
	cfg.LookupEnv = env{"SUDO_PW": password}.lookup
	c := dial(t, cfg)
	res := run(t, c, transport.Command{Line: "cat"})
	if len(res.Stdout) != 0 {
		t.Fatalf("the command read %q from stdin; the sudo password must not be sent when sudo does not ask", res.Stdout)
	}
	res = run(t, c, transport.Command{Line: "cat", Stdin: []byte("data")})
	if got := string(res.Stdout); got != "data" {
		t.Errorf("stdout = %q, want exactly the given stdin", got)
	}
}

func TestSudoWrongPasswordFailsClearly(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	cfg := configFor(srv, users.SudoPassword)
	cfg.SSH.SudoPasswordEnv = "SUDO_PW"
	cfg.LookupEnv = env{"SUDO_PW": "wrong-password"}.lookup
	c := dial(t, cfg)
	// The guard only catches a hang; sudo's refusal comes back in seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := c.Run(ctx, transport.Command{Line: "echo should-not-run"})
	var se *transport.SudoError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *SudoError", err)
	}
	mustContain(t, "error", err.Error(), "sudo password for user "+users.SudoPassword+" on host "+testHost+" was refused", "SUDO_PW")
	if strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("the error shows the password: %v", err)
	}
	if ce := commandError(t, err); ce.Status != -1 {
		t.Errorf("status = %d, want -1: the command never ran, so it has no exit status", ce.Status)
	}
}

func TestSudoWithoutConfiguredPasswordFailsAtOnce(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	c := dial(t, configFor(srv, users.SudoPassword))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := c.Run(ctx, transport.Command{Line: "true"})
	var se *transport.SudoError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *SudoError", err)
	}
	mustContain(t, "error", err.Error(), "sudo needs a password", "set ssh.sudoPasswordEnv", users.SudoPassword, testHost)
}

func TestSudoPasswordEnvMustBeSet(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	cfg := configFor(srv, users.SudoPassword)
	cfg.SSH.SudoPasswordEnv = "KPREP_UNSET_VARIABLE"
	_, err := transport.Dial(context.Background(), cfg)
	if err == nil {
		t.Fatal("Dial succeeded with sudoPasswordEnv naming an unset variable")
	}
	mustContain(t, "error", err.Error(), "sudoPasswordEnv", "KPREP_UNSET_VARIABLE", "not set")
}
