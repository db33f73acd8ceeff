package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kprep/kprep/test/lab/lab"
)

// ltSSH is an SSH connection to a lab host as its inventory user, made
// with x/crypto/ssh and the lab key: the way kprep reaches the host.
type ltSSH struct {
	client *ssh.Client
	host   lab.Host
	// sudoPassword is set for the host whose sudo asks for it.
	sudoPassword string
}

// ltDial connects to the host. The host key must be the one the host has
// on disk (read through Exec, not SSH), so the test knows it talks to the
// right host.
func ltDial(t *testing.T, ctx context.Context, l *lab.Lab, h lab.Host) *ltSSH {
	t.Helper()
	keyPEM, err := os.ReadFile(l.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatalf("lab key %s: %v", l.KeyFile(), err)
	}
	pubLine, _, err := l.Exec(ctx, h.Name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		t.Fatalf("%s host key: %v", h.Name, err)
	}
	cfg := &ssh.ClientConfig{
		User:              h.SSHUser,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(hostKey),
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           10 * time.Second,
	}
	c, err := ssh.Dial("tcp", net.JoinHostPort(h.Address, "22"), cfg)
	if err != nil {
		t.Fatalf("ssh %s@%s: %v", h.SSHUser, h.Address, err)
	}
	t.Cleanup(func() { c.Close() })
	s := &ltSSH{client: c, host: h}
	if h.SudoNeedsPassword {
		if s.sudoPassword, err = l.SudoPassword(); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// run runs a command line in a new session and returns stdout, stderr and
// the exit status.
func (s *ltSSH) run(line string, stdin []byte) (string, string, int, error) {
	sess, err := s.client.NewSession()
	if err != nil {
		return "", "", -1, err
	}
	defer sess.Close()
	var out, errb bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &errb
	if stdin != nil {
		sess.Stdin = bytes.NewReader(stdin)
	}
	err = sess.Run(line)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0, nil
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitStatus(), nil
	default:
		return out.String(), errb.String(), -1, err
	}
}

// asRoot runs a shell line as root: directly for root, through sudo (with
// the password on stdin where sudo asks for one) for kprep.
func (s *ltSSH) asRoot(line string) (string, string, int, error) {
	quoted := "'" + strings.ReplaceAll(line, "'", `'\''`) + "'"
	switch {
	case s.host.SSHUser == "root":
		return s.run("sh -c "+quoted, nil)
	case s.sudoPassword != "":
		return s.run("sudo -S -p '' sh -c "+quoted, []byte(s.sudoPassword+"\n"))
	default:
		return s.run("sudo -n sh -c "+quoted, nil)
	}
}

// ltRunner runs a shell line as root in a host and returns its trimmed
// output and exit status; the test has one over Exec and one over SSH.
type ltRunner struct {
	name string
	run  func(line string) (string, int)
}

func ltExecRunner(t *testing.T, ctx context.Context, l *lab.Lab, host string) ltRunner {
	return ltRunner{name: "exec", run: func(line string) (string, int) {
		t.Helper()
		out, stderr, err := l.Exec(ctx, host, "sh", "-c", line)
		code := lab.ExitCode(err)
		if err != nil && code < 0 {
			t.Fatalf("exec in %s: %v", host, err)
		}
		if err == nil {
			code = 0
		}
		return strings.TrimSpace(string(out) + ltStderrIf(code, stderr)), code
	}}
}

func ltSSHRunner(t *testing.T, s *ltSSH) ltRunner {
	return ltRunner{name: "ssh as " + s.host.SSHUser, run: func(line string) (string, int) {
		t.Helper()
		out, stderr, code, err := s.asRoot(line)
		if err != nil {
			t.Fatalf("ssh to %s: %v", s.host.Name, err)
		}
		return strings.TrimSpace(out + ltStderrIf(code, []byte(stderr))), code
	}}
}

// ltStderrIf adds stderr to a failed command's output, for messages.
func ltStderrIf(code int, stderr []byte) string {
	if code == 0 || len(stderr) == 0 {
		return ""
	}
	return fmt.Sprintf("\n[stderr] %s", strings.TrimSpace(string(stderr)))
}
