package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// After a timeout or cancel: how long the remote processes get between TERM
// and KILL (in the stop script), how long the stop script may take, and how
// long to wait for the session to end after that.
const (
	stopGraceTenths = 30
	stopTimeout     = 10 * time.Second
	sessionEndWait  = 5 * time.Second
)

// session is one command running in its own SSH session.
type session struct {
	conn    *Conn
	ssh     *ssh.Session
	watch   *stderrWatch
	stdin   io.WriteCloser
	stdout  io.Reader // set when the caller reads stdout as a stream
	script  []byte    // the command line, sent on stdin first (remoteCommand)
	stopper bool
	release func() // gives the session slot back

	// ready is closed once stdin belongs to the command (after sudo took
	// its password and the given stdin is written), or the session ended.
	ready chan struct{}
	// waited receives the result of ssh.Session.Wait; ended is closed then.
	waited chan error
	ended  chan struct{}
}

// open starts cmd in a new session. stdout receives the command's output;
// nil makes it a stream in s.stdout instead.
func (c *Conn) open(ctx context.Context, cmd Command, opts runOptions, stdout io.Writer) (*session, error) {
	release := func() {}
	if !opts.stopper {
		select {
		case c.sessions <- struct{}{}:
			release = sync.OnceFunc(func() { <-c.sessions })
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	sshSession, err := c.client.NewSession()
	if err != nil {
		release()
		return nil, c.connectionError("open a session", err)
	}
	s := &session{
		conn:    c,
		ssh:     sshSession,
		watch:   newStderrWatch(c.markers, c.sudo == sudoWithPassword),
		stopper: opts.stopper,
		release: release,
		ready:   make(chan struct{}),
		waited:  make(chan error, 1),
		ended:   make(chan struct{}),
	}
	fail := func(what string, err error) (*session, error) {
		sshSession.Close()
		release()
		return nil, c.connectionError(what, err)
	}
	sshSession.Stderr = s.watch
	if stdout != nil {
		sshSession.Stdout = stdout
	} else if s.stdout, err = sshSession.StdoutPipe(); err != nil {
		return fail("open stdout", err)
	}
	if s.stdin, err = sshSession.StdinPipe(); err != nil {
		return fail("open stdin", err)
	}
	s.script = sessionScript(cmd.Line)
	if err := sshSession.Start(c.remoteCommand(len(s.script))); err != nil {
		return fail("start the command", err)
	}
	go func() {
		s.waited <- sshSession.Wait()
		close(s.ended)
	}()
	return s, nil
}

// feed owns stdin until the command has started: with a sudo password,
// the password goes only after sudo's prompt shows, and the command line
// and its input only after the wrapper started, so neither can reach the
// other. It then writes the line, data and, for Run, closes stdin;
// Start's caller writes the rest.
func (s *session) feed(data []byte, closeAfter bool) {
	defer close(s.ready)
	if s.conn.sudo == sudoWithPassword && !s.answerSudo() {
		s.stdin.Close() // sudo asked twice: closing makes it give up
		return
	}
	s.stdin.Write(s.script)
	if len(data) > 0 {
		s.stdin.Write(data)
	}
	if closeAfter {
		s.stdin.Close()
	}
}

// answerSudo sends the password once when sudo prompts and reports whether
// the command started. A second prompt means the password was wrong.
func (s *session) answerSudo() bool {
	prompted := false
	for {
		select {
		case <-s.ended:
			return false
		case e := <-s.watch.events:
			switch e {
			case eventPrompt:
				if prompted {
					return false
				}
				prompted = true
				io.WriteString(s.stdin, s.conn.sudoPassword+"\n")
			case eventStarted:
				return true
			}
		}
	}
}

// wait waits for the command to end, or ends it when ctx is done, and
// returns its exit status. An error says why the command did not finish:
// ctx's cause, a broken connection, or sudo (or the login shell) refusing
// to run it.
func (s *session) wait(ctx context.Context) (int, error) {
	defer s.release()
	defer s.ssh.Close()
	c := s.conn
	var waitErr error
	select {
	case waitErr = <-s.waited:
	case <-ctx.Done():
		pgid := 0
		if !s.stopper { // a stop script that overran is only closed
			pgid = s.processGroup()
		}
		c.stopRemote(s.ssh, pgid, s.waited)
		c.commands.Add(1)
		return -1, context.Cause(ctx)
	}
	c.commands.Add(1)

	var exit *ssh.ExitError
	if waitErr != nil && !errors.As(waitErr, &exit) {
		// No exit status: the connection or the channel broke.
		return -1, c.connectionError("wait for the command", waitErr)
	}
	if started, prompts, _ := s.watch.state(); !started {
		return -1, c.sudoFailure(string(s.watch.output()), prompts)
	}
	if exit == nil {
		return 0, nil
	}
	if sig := exit.Signal(); sig != "" {
		return -1, fmt.Errorf("killed by signal %s", sig)
	}
	return exit.ExitStatus(), nil
}

// processGroup returns the command's process group, 0 if it never started.
// The start line comes on stderr, which the SSH library copies on its own
// goroutine: a caller may have read the command's stdout, and cancelled,
// before the watch saw the line that was sent earlier. So the group is
// waited for briefly, until the session ends at the latest; without it
// the stop script would not run and the command would live on.
func (s *session) processGroup() int {
	select {
	case <-s.watch.startedCh:
	case <-s.ended:
	case <-time.After(sessionEndWait):
	}
	_, _, pgid := s.watch.state()
	return pgid
}

// stopRemote ends a command that timed out or was cancelled. The SSH signal
// request alone is not enough: OpenSSH refuses it for root logins, and
// through sudo it reaches sudo and the shell but not their children. So a
// second session kills the command's whole process group (TERM, then KILL
// after a grace period), then the session is closed.
func (c *Conn) stopRemote(sess *ssh.Session, pgid int, waited <-chan error) {
	sess.Signal(ssh.SIGTERM)
	// pgid 0 means the command never started; 1 would address every process.
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

// lockedBuffer is a bytes.Buffer safe to read while a session still writes
// (a timed-out session may linger).
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
