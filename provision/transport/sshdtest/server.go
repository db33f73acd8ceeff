// Package sshdtest starts a real OpenSSH sshd on a loopback port for tests,
// with its own host key, config and authorized key in a temporary folder, and
// creates the local test accounts that log in to it. It needs root (sshd
// must run as root to switch users) and Debian's openssh-server; tests that
// call it are skipped when either is missing.
package sshdtest

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Paths of the OpenSSH programs the server runs.
const (
	SSHDPath       = "/usr/sbin/sshd"
	SFTPServerPath = "/usr/lib/openssh/sftp-server"
)

// Options change the server Start runs.
type Options struct {
	// ListenAddress is the loopback address sshd listens on; "" means
	// 127.0.0.1. Another loopback address (127.0.0.2) gives a host that a
	// test reaches only through a bastion.
	ListenAddress string
	// KeyboardInteractive turns on keyboard-interactive login through PAM and
	// turns off plain password login, so a password can only get in through
	// keyboard-interactive.
	KeyboardInteractive bool
	// HostKeyFile reuses an existing host key (a restart with the same
	// identity); "" means a new ed25519 key.
	HostKeyFile string
	// Config holds extra sshd_config lines, appended last.
	Config []string
}

// Server is one running sshd.
type Server struct {
	// Addr is host:port to dial.
	Addr string
	// Host and Port are Addr's parts.
	Host string
	Port int
	// HostKey is the key the server presents.
	HostKey ssh.PublicKey
	// HostKeyFile is the server's private host key (for Options.HostKeyFile).
	HostKeyFile string
	// ClientKeyFile is an unencrypted ed25519 private key that every user,
	// root included, may log in with.
	ClientKeyFile string
	// ClientSigner is ClientKeyFile parsed.
	ClientSigner ssh.Signer
	// Dir holds the server's config, keys and log.
	Dir string
	// LogFile is sshd's log, at LogLevel DEBUG1.
	LogFile string

	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs a new sshd and stops it when the test ends. It skips the test
// when not run as root or when sshd is not installed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	skipUnlessPossible(t)
	if opts.ListenAddress == "" {
		opts.ListenAddress = "127.0.0.1"
	}
	dir, err := os.MkdirTemp("", "kprep-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// sshd reads AuthorizedKeysFile as the logging-in user, so the folder
	// must be open to everyone (the private keys in it stay 0600).
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// sshd refuses to start without its privilege separation folder.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}

	s := &Server{Dir: dir, LogFile: filepath.Join(dir, "sshd.log")}
	s.HostKeyFile = opts.HostKeyFile
	if s.HostKeyFile == "" {
		s.HostKeyFile = filepath.Join(dir, "ssh_host_ed25519_key")
		if _, err := WriteKey(s.HostKeyFile); err != nil {
			t.Fatal(err)
		}
	}
	hostSigner, err := ReadKey(s.HostKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	s.HostKey = hostSigner.PublicKey()
	s.ClientKeyFile = filepath.Join(dir, "client_ed25519")
	if s.ClientSigner, err = WriteKey(s.ClientKeyFile); err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(s.ClientSigner.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}

	// The port comes from the kernel, then sshd binds it; another process
	// may take it in between, so a bind failure is retried on a new port.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort(opts.ListenAddress)
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = s.start(opts, port, authorized); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("sshdtest: %v\nsshd log:\n%s", lastErr, s.Log())
	return nil
}

func skipUnlessPossible(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sshdtest: needs root to run sshd and create test users (run the tests as root, e.g. in CI or the lab)")
	}
	for _, p := range []string{SSHDPath, SFTPServerPath} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("sshdtest: %s is missing (apt-get install openssh-server)", p)
		}
	}
}

func (s *Server) start(opts Options, port int, authorized string) error {
	s.Host = opts.ListenAddress
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	lines := []string{
		"Port " + strconv.Itoa(port),
		"ListenAddress " + opts.ListenAddress,
		"HostKey " + s.HostKeyFile,
		"PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile " + authorized,
		"StrictModes no",
		"PermitRootLogin yes",
		"Subsystem sftp " + SFTPServerPath,
		"LogLevel DEBUG1",
		"MaxStartups 100",
		"MaxSessions 20",
		"AllowTcpForwarding yes",
	}
	if opts.KeyboardInteractive {
		lines = append(lines, "UsePAM yes", "KbdInteractiveAuthentication yes", "PasswordAuthentication no")
	} else {
		lines = append(lines, "UsePAM no", "KbdInteractiveAuthentication no", "PasswordAuthentication yes")
	}
	lines = append(lines, opts.Config...)
	config := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(config, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	os.Remove(s.LogFile)
	cmd := exec.Command(SSHDPath, "-D", "-f", config, "-E", s.LogFile)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", SSHDPath, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	if err := waitForBanner(s.Addr, done); err != nil {
		cmd.Process.Kill()
		<-done
		return err
	}
	s.cmd, s.done = cmd, done
	return nil
}

// waitForBanner returns once sshd answers with its version line, or fails
// when sshd exits or does not answer within 10 s.
func waitForBanner(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("sshd on %s exited at start", addr)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, "SSH-2.0-") {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("sshd on %s did not answer within 10 s", addr)
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop ends sshd and every connection process it forked. Start registers it
// as a cleanup; calling it earlier simulates a host going away.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	for _, pid := range s.ConnectionPIDs() {
		syscall.Kill(pid, syscall.SIGCONT) // a test may have stopped it
		syscall.Kill(pid, syscall.SIGKILL)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// ConnectionPIDs lists the processes sshd forked for its open connections
// (and what those run), so a test can freeze or kill a connection from the
// server side.
func (s *Server) ConnectionPIDs() []int {
	if s.cmd == nil {
		return nil
	}
	return descendants(s.cmd.Process.Pid)
}

// Log returns what sshd logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogFile)
	return string(b)
}

// WriteKey creates a new unencrypted ed25519 private key file (0600) in
// OpenSSH format and returns its signer.
func WriteKey(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "kprep-test")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// ReadKey parses an unencrypted private key file.
func ReadKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(b)
}

// descendants walks /proc for every process below pid.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name in field 2 may hold spaces; fields after it are
		// found from the last ')'.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
