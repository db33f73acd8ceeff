package transport_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/provision/transport/sshdtest"
)

func TestPasswordLogin(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	cfg := configFor(srv, users.SudoPassword)
	cfg.SSH.PrivateKeyFile = ""
	cfg.SSH.PasswordEnv = "KPREP_SSH_PASSWORD"
	cfg.SSH.SudoPasswordEnv = "KPREP_SSH_PASSWORD"
	cfg.LookupEnv = env{"KPREP_SSH_PASSWORD": users.Password}.lookup
	c := dial(t, cfg)
	if got := string(run(t, c, transport.Command{Line: "id -u"}).Stdout); got != "0\n" {
		t.Errorf("id -u = %q", got)
	}
	mustContain(t, "sshd log", srv.Log(), "Accepted password for "+users.SudoPassword)
}

func TestKeyboardInteractiveLogin(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{KeyboardInteractive: true})
	users := sshdtest.EnsureUsers(t)
	cfg := configFor(srv, users.SudoPassword)
	cfg.SSH.PrivateKeyFile = ""
	cfg.SSH.Sudo = "false"
	cfg.SSH.PasswordEnv = "PW"
	cfg.LookupEnv = env{"PW": users.Password}.lookup
	c := dial(t, cfg)
	if got := string(run(t, c, transport.Command{Line: "id -un"}).Stdout); got != users.SudoPassword+"\n" {
		t.Errorf("id -un = %q", got)
	}
	mustContain(t, "sshd log", srv.Log(), "Accepted keyboard-interactive/pam for "+users.SudoPassword)
}

func TestAgentLogin(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	keyring := agent.NewKeyring()
	key, err := os.ReadFile(srv.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(keyring, conn); conn.Close() }()
		}
	}()

	cfg := configFor(srv, "root")
	cfg.SSH.PrivateKeyFile = "" // the agent alone must do
	cfg.LookupEnv = env{"SSH_AUTH_SOCK": sock}.lookup
	c := dial(t, cfg)
	run(t, c, transport.Command{Line: "true"})

	cfg.LookupEnv = env{}.lookup
	if _, err := transport.Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "no way to log in") {
		t.Errorf("with neither key nor agent nor password: err = %v, want one that says how to log in", err)
	}
}

func TestKeyFileFormats(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	authorized, err := os.OpenFile(filepath.Join(srv.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer authorized.Close()
	for name, key := range map[string]any{"rsa": rsaKey, "ecdsa": ecKey} {
		block, err := ssh.MarshalPrivateKey(key, name)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "id_"+name)
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		signer, err := ssh.NewSignerFromKey(key)
		if err != nil {
			t.Fatal(err)
		}
		authorized.Write(ssh.MarshalAuthorizedKey(signer.PublicKey()))
		t.Run(name, func(t *testing.T) {
			cfg := configFor(srv, "root")
			cfg.SSH.PrivateKeyFile = file
			run(t, dial(t, cfg), transport.Command{Line: "true"})
		})
	}

	t.Run("encrypted", func(t *testing.T) {
		_, priv, _ := ed25519Key(t)
		block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "enc", []byte("secret phrase"))
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "id_encrypted")
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := configFor(srv, "root")
		cfg.SSH.PrivateKeyFile = file
		_, err = transport.Dial(context.Background(), cfg)
		if err == nil {
			t.Fatal("Dial with an encrypted key succeeded")
		}
		mustContain(t, "error", err.Error(), file, "passphrase", "ssh-add")
	})
}

func TestBastion(t *testing.T) {
	t.Parallel()
	users := sshdtest.EnsureUsers(t)
	bastion := sshdtest.Start(t, sshdtest.Options{})
	// The target listens on another loopback address; the bastion log
	// shows the forwarded connection to it.
	target := sshdtest.Start(t, sshdtest.Options{ListenAddress: "127.0.0.2"})
	cfg := configFor(target, "root")
	cfg.SSH.Bastion = &inventory.Bastion{
		Address:        bastion.Host,
		Port:           bastion.Port,
		User:           users.SudoNoPassword,
		PrivateKeyFile: bastion.ClientKeyFile,
	}
	c := dial(t, cfg)
	res := run(t, c, transport.Command{Line: "echo through"})
	if string(res.Stdout) != "through\n" {
		t.Errorf("stdout = %q", res.Stdout)
	}
	if err := c.WriteFile(context.Background(), filepath.Join(t.TempDir(), "f"), []byte("x"), transport.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Dials != 2 {
		t.Errorf("Stats.Dials = %d, want 2 (bastion, then target through it)", st.Dials)
	}
	mustContain(t, "bastion log", bastion.Log(),
		"Accepted publickey for "+users.SudoNoPassword,
		fmt.Sprintf("target 127.0.0.2 port %d", target.Port))
	mustContain(t, "target log", target.Log(), "Accepted publickey for root")
	if strings.Contains(bastion.Log(), "Accepted publickey for root") {
		t.Error("the target's login reached the bastion")
	}

	// A bastion that cannot reach the target says so.
	cfg.Address = "127.0.0.3"
	if _, err := transport.Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "bastion") {
		t.Errorf("unreachable target through bastion: err = %v", err)
	}
}

func TestStrictHostKeyPolicy(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	cfg := configFor(srv, "root")
	cfg.SSH.HostKeyPolicy = transport.PolicyStrict
	cfg.SSH.KnownHostsFile = knownHosts
	fingerprint := ssh.FingerprintSHA256(srv.HostKey)

	// Unknown: refused, and the message says what to check and where to add it.
	_, err := transport.Dial(context.Background(), cfg)
	var hk *transport.HostKeyError
	if !errors.As(err, &hk) || hk.Mismatch {
		t.Fatalf("unknown host: err = %v, want a HostKeyError that is not a mismatch", err)
	}
	mustContain(t, "error", err.Error(), testHost, fingerprint, knownHosts, "strict")
	if _, statErr := os.Stat(knownHosts); !errors.Is(statErr, os.ErrNotExist) {
		t.Error("strict policy wrote known_hosts")
	}

	// Another key recorded for the address: refused as a mismatch.
	other, _, _ := ed25519Key(t)
	line := knownhosts.Line([]string{srv.Addr}, other)
	if err := os.WriteFile(knownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = transport.Dial(context.Background(), cfg)
	if !errors.As(err, &hk) || !hk.Mismatch {
		t.Fatalf("changed key: err = %v, want a HostKeyError mismatch", err)
	}
	mustContain(t, "error", err.Error(), fingerprint, knownHosts+":1", "ssh-keygen -R", "CHANGED")

	// The right key: connects.
	line = knownhosts.Line([]string{srv.Addr}, srv.HostKey)
	if err := os.WriteFile(knownHosts, []byte("# comment\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, dial(t, cfg), transport.Command{Line: "true"})
}

func TestAcceptNewHostKeyPolicy(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	srv2 := sshdtest.Start(t, sshdtest.Options{})
	knownHosts := filepath.Join(t.TempDir(), "new-dir", "known_hosts")
	cfgFor := func(s *sshdtest.Server) transport.Config {
		cfg := configFor(s, "root")
		cfg.SSH.HostKeyPolicy = transport.PolicyAcceptNew
		cfg.SSH.KnownHostsFile = knownHosts
		return cfg
	}

	// Hosts connect in parallel; each new key must be written once.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := srv
			if i%2 == 1 {
				s = srv2
			}
			c, err := transport.Dial(context.Background(), cfgFor(s))
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	content, err := os.ReadFile(knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	want := knownhosts.Line([]string{srv.Addr}, srv.HostKey)
	want2 := knownhosts.Line([]string{srv2.Addr}, srv2.HostKey)
	if n := strings.Count(string(content), want); n != 1 {
		t.Errorf("known_hosts has %d entries for the first host, want 1:\n%s", n, content)
	}
	if n := strings.Count(string(content), want2); n != 1 {
		t.Errorf("known_hosts has %d entries for the second host, want 1:\n%s", n, content)
	}
	if lines := strings.Count(string(content), "\n"); lines != 2 {
		t.Errorf("known_hosts has %d lines, want 2:\n%s", lines, content)
	}
	if !strings.HasPrefix(want, "[127.0.0.1]:") {
		t.Errorf("a host on a port other than 22 is written as [host]:port, got %q", want)
	}
	for path, mode := range map[string]os.FileMode{knownHosts: 0o600, filepath.Dir(knownHosts): 0o700 | os.ModeDir} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != mode {
			t.Errorf("%s: mode %v (err %v), want %v", path, fi.Mode(), err, mode)
		}
	}

	// The host's key changes (reinstall or attack): refused, file unchanged.
	other, _, _ := ed25519Key(t)
	changed := strings.Replace(string(content), want, knownhosts.Line([]string{srv.Addr}, other), 1)
	if err := os.WriteFile(knownHosts, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = transport.Dial(context.Background(), cfgFor(srv))
	var hk *transport.HostKeyError
	if !errors.As(err, &hk) || !hk.Mismatch {
		t.Fatalf("changed key under accept-new: err = %v, want a HostKeyError mismatch", err)
	}
	mustContain(t, "error", err.Error(), ssh.FingerprintSHA256(srv.HostKey), knownHosts)
	if after, _ := os.ReadFile(knownHosts); string(after) != changed {
		t.Errorf("a refused key changed known_hosts:\n%s", after)
	}
}

func TestKeepaliveClosesDeadConnection(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t, sshdtest.Options{})
	cfg := configFor(srv, "root")
	cfg.KeepaliveInterval = 200 * time.Millisecond
	c := dial(t, cfg)
	run(t, c, transport.Command{Line: "true"})

	// Freeze the server side of the connection: TCP stays up, nothing
	// answers, as when a host hangs or a network path drops packets.
	pids := srv.ConnectionPIDs()
	if len(pids) == 0 {
		t.Fatal("found no sshd process for the connection")
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})

	done := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), transport.Command{Line: "sleep 5"})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a command on a frozen connection succeeded")
		}
		mustContain(t, "error", err.Error(), testHost, "keepalive")
	case <-time.After(60 * time.Second): // a hang guard, not a timing assertion
		t.Fatal("the command hung on a dead connection")
	}
}

func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	// Accepts TCP and never speaks: the handshake must be cut off.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	signerFile := filepath.Join(t.TempDir(), "key")
	if _, err := sshdtest.WriteKey(signerFile); err != nil {
		t.Fatal(err)
	}
	cfg := transport.Config{
		Host:    testHost,
		Address: "127.0.0.1",
		SSH: inventory.SSH{
			Port:           l.Addr().(*net.TCPAddr).Port,
			PrivateKeyFile: signerFile,
			HostKeyPolicy:  transport.PolicyInsecure,
			ConnectTimeout: 300 * time.Millisecond,
		},
		LookupEnv: env{}.lookup,
	}
	done := make(chan error, 1)
	go func() { _, err := transport.Dial(context.Background(), cfg); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Dial to a silent server succeeded")
		}
		mustContain(t, "error", err.Error(), testHost, "connectTimeout")
	case <-time.After(30 * time.Second):
		t.Fatal("Dial to a silent server hung")
	}
}

func ed25519Key(t testing.TB) (ssh.PublicKey, any, ssh.Signer) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "key")
	signer, err := sshdtest.WriteKey(file)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	raw, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return signer.PublicKey(), raw, signer
}
