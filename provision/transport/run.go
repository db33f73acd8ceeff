package transport

import (
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"time"
)

// errCommandTimeout is the cause of a context ended by a command's own
// timeout, told apart from the caller's deadline or cancel.
var errCommandTimeout = errors.New("command timeout")

// runOptions are kprep's own variations of a run.
type runOptions struct {
	// show replaces the command line in logs and errors, for helper scripts
	// whose text says less than a short description.
	show string
	// stopper marks the run that stops a timed-out command: it uses the
	// spare session slot (its command may hold them all) and, if it times
	// out itself, it is only closed.
	stopper bool
}

// Run runs cmd.Line with sh as root (through sudo when the login user is
// not root) and returns its output. A command that exits non-zero, times
// out, is cancelled or never starts returns a *CommandError, with the
// Result so far.
func (c *Conn) Run(ctx context.Context, cmd Command) (Result, error) {
	return c.run(ctx, cmd, runOptions{})
}

func (c *Conn) run(ctx context.Context, cmd Command, opts runOptions) (Result, error) {
	timeout := cmd.Timeout
	if timeout == 0 {
		timeout = c.cfg.CommandTimeout
	}
	ctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	begin := time.Now()
	var stdout lockedBuffer
	res := Result{Status: -1}
	s, err := c.open(ctx, cmd, opts, &stdout)
	if err == nil {
		go s.feed(cmd.Stdin, true)
		res.Status, err = s.wait(ctx)
		res.Stderr = s.watch.output()
	}
	res.Stdout = stdout.Bytes()
	res.Duration = time.Since(begin)
	return res, c.report(cmd, opts, &res, err, timeout)
}

// Process is a command started with Start that keeps running while other
// commands run on the connection.
type Process interface {
	// Stdout streams the command's standard output.
	Stdout() io.Reader
	// Stdin is the command's standard input; closing it sends EOF.
	Stdin() io.WriteCloser
	// Wait waits for the command to end; its error is what Run would
	// have returned.
	Wait() error
}

// Start starts cmd and returns while it runs, for a command that lives
// beside others (the engine holds the host's run lock in one). Only the
// command's own Timeout bounds it, not the connection's default: such a
// command lasts as long as the run. Cancelling ctx ends it.
func (c *Conn) Start(ctx context.Context, cmd Command) (Process, error) {
	ctx, cancel := withTimeout(ctx, cmd.Timeout)
	begin := time.Now()
	s, err := c.open(ctx, cmd, runOptions{}, nil)
	if err != nil {
		cancel()
		res := Result{Status: -1, Duration: time.Since(begin)}
		return nil, c.report(cmd, runOptions{}, &res, err, cmd.Timeout)
	}
	p := &process{c: c, s: s, done: make(chan struct{})}
	go s.feed(cmd.Stdin, false)
	// The command is watched from the start, so a cancel ends it even
	// while nobody is in Wait.
	go func() {
		defer cancel()
		status, err := s.wait(ctx)
		res := Result{Status: status, Stderr: s.watch.output(), Duration: time.Since(begin)}
		p.err = c.report(cmd, runOptions{}, &res, err, cmd.Timeout)
		close(p.done)
	}()
	return p, nil
}

type process struct {
	c    *Conn
	s    *session
	done chan struct{}
	err  error
}

func (p *process) Stdout() io.Reader     { return p.s.stdout }
func (p *process) Stdin() io.WriteCloser { return gatedStdin{p.s} }
func (p *process) Wait() error           { <-p.done; return p.err }

// LogRequest shows, as -v shows a command, a request the process ran for
// its caller on its stdin (the engine's probes in the lock session), so
// the log lists every round trip. The label is redacted like a command's.
func (p *process) LogRequest(label string, d time.Duration, err error) {
	if p.c.cfg.LogCommand == nil {
		return
	}
	status := 0
	if err != nil {
		status, err = -1, errors.New(Redact(err.Error(), p.c.secretsFor(Command{})))
	}
	p.c.cfg.LogCommand(CommandLog{Host: p.c.host, Line: Redact(label, p.c.secretsFor(Command{})), Duration: d, Status: status, Err: err})
}

// gatedStdin holds the caller's writes until sudo has its password and
// the command has started.
type gatedStdin struct{ s *session }

func (g gatedStdin) Write(b []byte) (int, error) { <-g.s.ready; return g.s.stdin.Write(b) }
func (g gatedStdin) Close() error                { <-g.s.ready; return g.s.stdin.Close() }

// withTimeout bounds ctx by a command's timeout (none when zero) with a
// cause that marks it as the command's own.
func withTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, timeout, errCommandTimeout)
}

// report redacts what a finished command left, turns a failure into a
// *CommandError and logs the command.
func (c *Conn) report(cmd Command, opts runOptions, res *Result, err error, timeout time.Duration) error {
	secrets := c.secretsFor(cmd)
	shown := cmd.Line
	switch {
	case opts.show != "":
		shown = opts.show
	case cmd.Label != "":
		shown = cmd.Label
	}
	shown = Redact(shown, secrets)
	res.Stderr = []byte(Redact(string(res.Stderr), secrets))
	if err != nil || res.Status != 0 {
		ce := &CommandError{
			Host:   c.host,
			Line:   shown,
			Status: res.Status,
			Stderr: strings.TrimSpace(string(res.Stderr)),
			Err:    err,
		}
		if errors.Is(err, errCommandTimeout) {
			ce.TimedOut, ce.Timeout, ce.Err = true, timeout, nil
		}
		err = ce
	}
	if c.cfg.LogCommand != nil {
		c.cfg.LogCommand(CommandLog{Host: c.host, Line: shown, Duration: res.Duration, Status: res.Status, Err: err})
	}
	return err
}

// secretsFor lists what to redact for cmd: its own secrets and the
// connection's passwords, longest first so a secret that contains another
// is replaced whole.
func (c *Conn) secretsFor(cmd Command) []string {
	c.secretsMu.Lock()
	known := append(append([]string(nil), cmd.Secrets...), c.secrets...)
	c.secretsMu.Unlock()
	var all []string
	for _, s := range known {
		if s != "" {
			all = append(all, s)
		}
	}
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	return all
}
