package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
)

// Dial connects and logs in to one host, through its bastion when it has
// one, and returns the connection every command and file of the run uses.
// The connect timeout bounds each hop's TCP connect and SSH handshake; ctx
// can cancel them too.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	cfg = withDefaults(cfg)
	s := cfg.SSH
	target := net.JoinHostPort(cfg.Address, strconv.Itoa(s.Port))
	fail := func(err error) (*Conn, error) {
		return nil, fmt.Errorf("%s: connect to %s@%s: %w", cfg.Host, s.User, target, err)
	}
	if cfg.Address == "" {
		return fail(errors.New("the host has no address"))
	}
	switch s.HostKeyPolicy {
	case PolicyStrict, PolicyAcceptNew, PolicyInsecure:
	default:
		return fail(fmt.Errorf("ssh.hostKeyPolicy %q is not one of strict, accept-new, insecure", s.HostKeyPolicy))
	}
	knownHosts, err := expandHome(s.KnownHostsFile)
	if err != nil {
		return fail(err)
	}
	keys := hostKeys{host: cfg.Host, policy: s.HostKeyPolicy, file: knownHosts}

	c := &Conn{
		cfg:      cfg,
		host:     cfg.Host,
		user:     s.User,
		sessions: make(chan struct{}, maxSessions),
		closing:  make(chan struct{}),
		markers:  newMarkers(),
	}
	if c.sudo, err = sudoModeFor(s); err != nil {
		return fail(err)
	}
	if c.sudo != sudoNone {
		c.sudoEnv = s.SudoPasswordEnv
		if c.sudoPassword, err = secretFromEnv(s.SudoPasswordEnv, "sudoPasswordEnv", cfg.LookupEnv); err != nil {
			return fail(err)
		}
		if c.sudoPassword != "" {
			c.sudo = sudoWithPassword
		}
	}
	passwordEnvs := []string{s.PasswordEnv, s.SudoPasswordEnv}
	if s.Bastion != nil {
		passwordEnvs = append(passwordEnvs, s.Bastion.PasswordEnv)
	}
	for _, name := range passwordEnvs {
		if v, ok := cfg.LookupEnv(name); ok && name != "" && v != "" {
			c.secrets = append(c.secrets, v)
		}
	}

	var conn net.Conn
	if b := s.Bastion; b != nil {
		via := net.JoinHostPort(b.Address, strconv.Itoa(b.Port))
		bl := login{user: b.User, keyFile: b.PrivateKeyFile, passwordEnv: b.PasswordEnv}
		if c.bastion, err = c.hop(ctx, nil, via, bl, keys); err != nil {
			return fail(fmt.Errorf("through bastion %s@%s: %w", b.User, via, err))
		}
		dialCtx, cancel := context.WithTimeout(ctx, s.ConnectTimeout)
		conn, err = c.bastion.DialContext(dialCtx, "tcp", target)
		cancel()
		if err != nil {
			c.bastion.Close()
			return fail(fmt.Errorf("bastion %s could not open a connection to it: %w", via, err))
		}
	}
	l := login{user: s.User, keyFile: s.PrivateKeyFile, passwordEnv: s.PasswordEnv}
	if c.client, err = c.hop(ctx, conn, target, l, keys); err != nil {
		if c.bastion != nil {
			c.bastion.Close()
		}
		return fail(err)
	}
	go c.watch()
	if cfg.KeepaliveInterval > 0 {
		go c.keepalive(cfg.KeepaliveInterval)
	}
	return c, nil
}

// withDefaults fills what the inventory left empty. The bastion logs in as
// the host's user with the host's key unless it names its own.
func withDefaults(cfg Config) Config {
	s := &cfg.SSH
	if s.User == "" {
		s.User = DefaultUser
	}
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.ConnectTimeout <= 0 {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	if s.HostKeyPolicy == "" {
		s.HostKeyPolicy = DefaultHostKeyPolicy
	}
	if s.KnownHostsFile == "" {
		s.KnownHostsFile = DefaultKnownHostsFile
	}
	if s.Bastion != nil {
		b := *s.Bastion
		if b.Port == 0 {
			b.Port = DefaultPort
		}
		if b.User == "" {
			b.User = s.User
		}
		if b.PrivateKeyFile == "" {
			b.PrivateKeyFile = s.PrivateKeyFile
		}
		s.Bastion = &b
	}
	if cfg.LookupEnv == nil {
		cfg.LookupEnv = os.LookupEnv
	}
	if cfg.KeepaliveInterval == 0 {
		cfg.KeepaliveInterval = DefaultKeepaliveInterval
	}
	return cfg
}

// hop opens one SSH connection to addr: over conn when given (a channel
// through the bastion), else over a new TCP connection.
func (c *Conn) hop(ctx context.Context, conn net.Conn, addr string, l login, keys hostKeys) (*ssh.Client, error) {
	timeout := c.cfg.SSH.ConnectTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	methods, doneAuth, err := authMethods(l, c.cfg.LookupEnv)
	if err != nil {
		return nil, err
	}
	defer doneAuth()
	callback, algos, err := keys.config(addr)
	if err != nil {
		return nil, err
	}
	if conn == nil {
		d := net.Dialer{KeepAlive: 30 * time.Second}
		if conn, err = d.DialContext(ctx, "tcp", addr); err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("no TCP connection within ssh.connectTimeout (%s): %w", timeout, err)
			}
			return nil, err
		}
	}
	c.dials.Add(1)

	// The handshake has no deadline of its own and a channel through a
	// bastion has no SetDeadline, so closing the connection is what ends a
	// handshake that takes too long.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sshConn, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:              l.user,
		Auth:              methods,
		HostKeyCallback:   callback,
		HostKeyAlgorithms: algos,
		ClientVersion:     "SSH-2.0-kprep",
	})
	if !stop() {
		if err == nil {
			sshConn.Close()
		}
		if ctxErr := ctx.Err(); errors.Is(ctxErr, context.DeadlineExceeded) {
			return nil, fmt.Errorf("ssh handshake did not finish within ssh.connectTimeout (%s)", timeout)
		}
		return nil, ctx.Err()
	}
	if err != nil {
		var keyErr *HostKeyError
		if !errors.As(err, &keyErr) && containsAny(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("%w (check ssh.user, ssh.privateKeyFile or the agent's keys, ssh.passwordEnv)", err)
		}
		return nil, err
	}
	return ssh.NewClient(sshConn, chans, reqs), nil
}

// keepalive asks the server every interval whether it is still there, as
// OpenSSH's ServerAliveInterval does. A connection whose peer vanished
// without closing TCP would otherwise leave commands waiting forever.
func (c *Conn) keepalive(interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-ticker.C:
		}
		reply := make(chan error, 1)
		go func() {
			// OpenSSH answers unknown global requests with a failure; any
			// answer proves the peer is alive.
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		wait := time.NewTimer(interval * keepaliveMaxMissed)
		select {
		case err := <-reply:
			wait.Stop()
			if err != nil {
				c.lose(fmt.Errorf("keepalive failed: %w", err))
				return
			}
		case <-wait.C:
			c.lose(fmt.Errorf("the server did not answer keepalives for %s; closed the connection", interval*keepaliveMaxMissed))
			return
		case <-c.closing:
			wait.Stop()
			return
		}
	}
}
