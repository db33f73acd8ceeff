package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// errCommandTimeout is the cause of a context ended by a command's own
// timeout, told apart from the caller's deadline or cancel.
var errCommandTimeout = errors.New("command timeout")

// After a timeout or cancel: how long the remote processes get between TERM
// and KILL (in the stop script), how long the stop script may take, and how
// long to wait for the session to end after that.
const (
	stopGraceTenths = 30
	stopTimeout     = 10 * time.Second
	sessionEndWait  = 5 * time.Second
)

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
	secrets := c.secretsFor(cmd)
	shown := cmd.Line
	if opts.show != "" {
		shown = opts.show
	}
	shown = Redact(shown, secrets)
	timeout := cmd.Timeout
	if timeout == 0 {
		timeout = c.cfg.CommandTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errCommandTimeout)
		defer cancel()
	}

	begin := time.Now()
	res, err := c.exec(ctx, cmd, opts)
	res.Duration = time.Since(begin)
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
	return res, err
}

// exec runs one session. A command that ran and exited non-zero is no
// error here (its Result says so); an error is why the command did not
// finish, and becomes the CommandError's cause.
func (c *Conn) exec(ctx context.Context, cmd Command, opts runOptions) (Result, error) {
	res := Result{Status: -1}
	if !opts.stopper {
		select {
		case c.sessions <- struct{}{}:
			defer func() { <-c.sessions }()
		case <-ctx.Done():
			return res, context.Cause(ctx)
		}
	}
	sess, err := c.client.NewSession()
	if err != nil {
		return res, c.connectionError("open a session", err)
	}
	defer sess.Close()

	var stdout lockedBuffer // read early when a timed-out session lingers
	watch := newStderrWatch(c.markers, c.sudo == sudoWithPassword)
	sess.Stdout = &stdout
	sess.Stderr = watch
	stdin, err := sess.StdinPipe()
	if err != nil {
		return res, c.connectionError("open stdin", err)
	}
	if err := sess.Start(c.remoteCommand(cmd.Line)); err != nil {
		return res, c.connectionError("start the command", err)
	}
	ended := make(chan struct{})
	defer close(ended)
	go c.feedStdin(stdin, watch.events, cmd.Stdin, ended)
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()

	var waitErr error
	select {
	case waitErr = <-waited:
	case <-ctx.Done():
		pgid := 0
		if !opts.stopper {
			_, _, pgid = watch.state()
		}
		c.stopRemote(sess, pgid, waited)
		c.commands.Add(1)
		res.Stdout, res.Stderr = stdout.Bytes(), watch.output()
		return res, context.Cause(ctx)
	}
	c.commands.Add(1)
	res.Stdout, res.Stderr = stdout.Bytes(), watch.output()

	var exit *ssh.ExitError
	if waitErr != nil && !errors.As(waitErr, &exit) {
		// No exit status: the connection or the channel broke.
		return res, c.connectionError("wait for the command", waitErr)
	}
	started, prompts, _ := watch.state()
	if !started {
		return res, c.sudoFailure(string(res.Stderr), prompts)
	}
	if exit == nil {
		res.Status = 0
		return res, nil
	}
	if sig := exit.Signal(); sig != "" {
		return res, fmt.Errorf("killed by signal %s", sig)
	}
	res.Status = exit.ExitStatus()
	return res, nil
}

// feedStdin writes the command's stdin. With a sudo password, stdin first
// belongs to sudo: the password goes only after sudo's prompt shows, and
// the command's input only after the command has started, so neither can
// end up in the other's hands.
func (c *Conn) feedStdin(stdin io.WriteCloser, events <-chan sudoEvent, data []byte, ended <-chan struct{}) {
	defer stdin.Close()
	if c.sudo != sudoWithPassword {
		if len(data) > 0 {
			stdin.Write(data)
		}
		return
	}
	prompted := false
	for {
		select {
		case <-ended:
			return
		case e := <-events:
			switch e {
			case eventPrompt:
				if prompted {
					// Asked again: the password was wrong. Closing stdin
					// makes sudo give up instead of waiting.
					return
				}
				prompted = true
				io.WriteString(stdin, c.sudoPassword+"\n")
			case eventStarted:
				if len(data) > 0 {
					stdin.Write(data)
				}
				return
			}
		}
	}
}

// stopRemote ends a command that timed out or was cancelled. The SSH signal
// request alone is not enough: OpenSSH refuses it for root logins, and
// through sudo it reaches sudo and the shell but not their children. So a
// second session kills the command's whole process group (TERM, then KILL
// after a grace period), then the session is closed.
func (c *Conn) stopRemote(sess *ssh.Session, pgid int, waited <-chan error) {
	sess.Signal(ssh.SIGTERM)
	// pgid 0 means the command never started; 1 would address every process.
	// The stopper itself passes 0: it is only closed.
	if pgid > 1 && c.lostReason() == nil {
		// Its own timeout, not the connection's default, which may be
		// shorter than the grace period.
		c.run(context.Background(), Command{Line: stopScript(pgid), Timeout: stopTimeout}, runOptions{
			show:    fmt.Sprintf("kill process group %d of a command that timed out or was cancelled", pgid),
			stopper: true,
		})
	}
	sess.Signal(ssh.SIGKILL)
	sess.Close()
	select {
	case <-waited:
	case <-time.After(sessionEndWait):
	}
}

// stopScript sends TERM to a process group, waits for it to go, and sends
// KILL to whatever is left. `kill -s SIG -- -PGID` is the spelling both
// dash and bash accept.
func stopScript(pgid int) string {
	return fmt.Sprintf("kill -s TERM -- -%[1]d 2>/dev/null || exit 0; i=0; "+
		"while [ $i -lt %[2]d ] && kill -s 0 -- -%[1]d 2>/dev/null; do sleep 0.1; i=$((i+1)); done; "+
		"kill -s KILL -- -%[1]d 2>/dev/null; exit 0", pgid, stopGraceTenths)
}

// connectionError explains a session that failed for want of a connection.
func (c *Conn) connectionError(what string, err error) error {
	if lost := c.lostReason(); lost != nil {
		return fmt.Errorf("%s: connection lost: %w", what, lost)
	}
	select {
	case <-c.closing:
		return fmt.Errorf("%s: the connection was closed", what)
	default:
	}
	return fmt.Errorf("%s: %w", what, err)
}

// secretsFor lists what to redact for cmd: its own secrets and the
// connection's passwords, longest first so a secret that contains another
// is replaced whole.
func (c *Conn) secretsFor(cmd Command) []string {
	var all []string
	for _, s := range append(append([]string(nil), cmd.Secrets...), c.secrets...) {
		if s != "" {
			all = append(all, s)
		}
	}
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	return all
}

// lockedBuffer is a bytes.Buffer safe to read while a session still writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written so far.
func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
