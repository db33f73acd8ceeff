// Package transport is kprep's SSH connection to one host: one TCP
// connection (through a bastion if needed) for the whole run, a session per
// command, run as root with sh and sudo, and atomic file writes over one
// SFTP client. Secrets are redacted from everything it shows or logs.
package transport

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/kprep/kprep/provision/inventory"
)

// Defaults for settings the inventory leaves empty.
const (
	DefaultUser              = "root"
	DefaultPort              = 22
	DefaultConnectTimeout    = 10 * time.Second
	DefaultKeepaliveInterval = 15 * time.Second
	DefaultKnownHostsFile    = "~/.ssh/known_hosts"
	DefaultHostKeyPolicy     = PolicyAcceptNew
)

// keepaliveMaxMissed is how many keepalive intervals may pass without an
// answer before the connection is taken for dead (OpenSSH's
// ServerAliveCountMax default).
const keepaliveMaxMissed = 3

// maxSessions bounds the sessions one connection opens at once: OpenSSH
// refuses more than MaxSessions (10 by default) per connection, and the SFTP
// client holds one of them.
const maxSessions = 8

// Config says how to reach one host and how to run commands on it.
type Config struct {
	// Host is the host's name in the inventory; errors and logs use it.
	Host string
	// Address is the IP address or DNS name to connect to.
	Address string
	// SSH is the host's merged ssh settings (cluster defaults plus the
	// host's overrides), as inventory.Host.Connection holds them.
	SSH inventory.SSH
	// LookupEnv resolves the variables named by passwordEnv and
	// sudoPasswordEnv, and SSH_AUTH_SOCK; nil means os.LookupEnv.
	LookupEnv func(name string) (string, bool)
	// LogCommand, when set, is called after every command and file write
	// with its redacted line (for -v). It must not block for long.
	LogCommand func(CommandLog)
	// CommandTimeout bounds commands that set no Timeout of their own; zero
	// means only the caller's context bounds them.
	CommandTimeout time.Duration
	// KeepaliveInterval is how often the server is asked whether it is still
	// there; after three unanswered intervals the connection is closed so
	// commands fail instead of hanging. Zero means 15 s, negative turns it
	// off.
	KeepaliveInterval time.Duration
}

// CommandLog is one finished command or file write, as -v shows it.
type CommandLog struct {
	Host     string
	Line     string // redacted
	Duration time.Duration
	Status   int   // exit status; -1 when the command did not exit
	Err      error // nil on success; redacted
}

// Conn is one SSH connection to one host. Every command runs in its own
// session on it and every file goes through one SFTP client on it, so a run
// costs one TCP connection and one login per host. It is safe for
// concurrent use.
type Conn struct {
	cfg     Config
	host    string
	user    string
	sudo    sudoMode
	sudoEnv string // the name of the variable holding the sudo password
	// sudoPassword is written to sudo only when it asks; secrets are the
	// passwords, redacted from everything shown even if a command echoes them.
	sudoPassword string
	secretsMu    sync.Mutex
	secrets      []string
	markers      markers

	client  *ssh.Client
	bastion *ssh.Client

	sessions chan struct{} // semaphore, maxSessions slots

	sftpMu sync.Mutex
	sftp   *sftp.Client

	dials, commands, files atomic.Int64

	closing   chan struct{}
	closeOnce sync.Once
	lostMu    sync.Mutex
	lost      error // why the connection ended when we did not close it
}

// AddSecret masks secret ("***") in every command line, output and error
// the connection shows or logs from now on: the engine hands it values a
// run makes, such as a join token.
func (c *Conn) AddSecret(secret string) {
	if secret == "" {
		return
	}
	c.secretsMu.Lock()
	defer c.secretsMu.Unlock()
	c.secrets = append(c.secrets, secret)
}

// Host returns the host's name.
func (c *Conn) Host() string { return c.host }

// Stats returns what the connection did so far.
func (c *Conn) Stats() Stats {
	return Stats{
		Dials:    int(c.dials.Load()),
		Commands: int(c.commands.Load()),
		Files:    int(c.files.Load()),
	}
}

// Close ends the SFTP client and the connection (and the bastion's).
func (c *Conn) Close() error {
	var errs []error
	c.closeOnce.Do(func() {
		close(c.closing)
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
			c.sftp = nil
		}
		c.sftpMu.Unlock()
		if err := c.client.Close(); err != nil && !isClosedErr(err) {
			errs = append(errs, err)
		}
		if c.bastion != nil {
			if err := c.bastion.Close(); err != nil && !isClosedErr(err) {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// watch records why the connection ended when it ends on its own (server
// gone, keepalive failed), so later errors can say so.
func (c *Conn) watch() {
	err := c.client.Wait()
	select {
	case <-c.closing:
		return
	default:
	}
	if err == nil {
		err = errors.New("the server closed the connection")
	}
	c.lose(err)
}

// lose marks the connection dead for reason and closes it.
func (c *Conn) lose(reason error) {
	c.lostMu.Lock()
	if c.lost == nil {
		c.lost = reason
	}
	c.lostMu.Unlock()
	c.client.Close()
	if c.bastion != nil {
		c.bastion.Close()
	}
}

// lostReason says why the connection ended, or nil while it is up.
func (c *Conn) lostReason() error {
	c.lostMu.Lock()
	defer c.lostMu.Unlock()
	return c.lost
}

// isClosedErr reports an error that only says the connection was already
// closed, which Close need not report.
func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}
