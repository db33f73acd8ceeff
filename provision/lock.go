package provision

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// Where kprep keeps its own state on a host.
const (
	StateDir   = "/var/lib/kprep"
	lockFile   = StateDir + "/lock"
	runLogFile = StateDir + "/run.log"
	// lockBusyStatus is the exit status of the lock session when another
	// run holds the lock (EX_TEMPFAIL).
	lockBusyStatus = 75
)

// lockSession is the session that holds a host's run lock for the whole
// apply: a root shell on the host that runs every probe of the run, the
// first and the verifies after each change, then appends the run log.
// A probe through it costs no new SSH session, sudo or login shell: on the
// lab's sudo hosts those were 30 to 90 ms of the host's CPU per round trip
// (the verify after every change was most of a first apply's own share).
// Closing its stdin releases the lock; so does a lost connection, since
// the lock dies with the shell that holds it.
type lockSession struct {
	p     Process
	rd    *bufio.Reader
	token string
	// end ends the session, with the cause a probe's error reports;
	// timeout bounds each probe, as the connection bounds a command.
	end     context.CancelCauseFunc
	ended   context.Context
	timeout time.Duration
}

// errProbeTimeout ends a lock session whose probe ran too long.
var errProbeTimeout = errors.New("probe timeout")

// lockAndProbe starts the lock session and runs the first probe in it.
func lockAndProbe(ctx context.Context, s Starter, token, probe, label string) (*lockSession, string, error) {
	return lockAndProbeIn(ctx, s, StateDir, token, probe, label)
}

// lockAndProbeIn is lockAndProbe with kprep's state in dir.
func lockAndProbeIn(ctx context.Context, s Starter, dir, token, probe, label string) (*lockSession, string, error) {
	ended, end := context.WithCancelCause(ctx)
	p, err := s.Start(ended, transport.Command{Line: lockShell(dir, token), Label: "lock " + dir + "/lock and " + label})
	if err != nil {
		end(nil)
		return nil, "", fmt.Errorf("probe: %w", err)
	}
	l := &lockSession{p: p, rd: bufio.NewReader(p.Stdout()), token: token, end: end, ended: ended, timeout: DefaultCommandTimeout}
	out, err := l.probe(probe)
	if err != nil {
		p.Stdin().Close()
		p.Wait()
		end(nil)
		if errors.Is(err, errLocked) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("probe: %w", err)
	}
	return l, out, nil
}

// lockShell is the lock session's shell script for kprep's state in dir.
// It reads requests from stdin: "probe N" and a script of N bytes (sent as
// the transport sends a command line, with a closing comment, so the
// command substitution keeps its last newlines and a script cut short is
// refused), run in a subshell so no probe sees another's variables, and
// answered with "TOKEN probed"; "log" and the rest of stdin go to the run
// log. Holding the lock, a probe may also update kprep's own records
// (shell.RecordingVar); a plan's probe only reads them.
func lockShell(dir, token string) string {
	return fmt.Sprintf(`mkdir -p %[1]s && chmod 0700 %[1]s && exec 9>>%[2]s || exit 1
if ! flock -n 9; then echo "%[3]s locked"; exit %[4]d; fi
%[5]s=1
while read -r kprep_do kprep_n; do
case $kprep_do in
probe) kprep_line=$(head -c "$kprep_n") && [ "${#kprep_line}" -eq "$kprep_n" ] || exit %[7]d
( eval "$kprep_line" ) </dev/null
echo "%[3]s probed";;
log) exec cat >>%[6]s;;
*) exit 2;;
esac
done`, dir, dir+"/lock", token, lockBusyStatus, shell.RecordingVar, dir+"/run.log", cutShortStatus)
}

// cutShortStatus is the lock shell's exit status when a script did not
// arrive whole (the transport's wrapper uses the same).
const cutShortStatus = 125

// errLocked is what a probe meets when another run holds the lock.
var errLocked = fmt.Errorf("another kprep run holds %s on this host; wait for it or remove a stale lock holder", lockFile)

// requestLogger is a Process that can show a request it ran, as -v shows
// commands (the transport's can).
type requestLogger interface {
	LogRequest(label string, d time.Duration, err error)
}

// probeLogged runs a probe script in the lock session and shows it in the
// command log under label.
func (l *lockSession) probeLogged(script, label string) (string, error) {
	start := time.Now()
	out, err := l.probe(script)
	if lg, ok := l.p.(requestLogger); ok {
		lg.LogRequest(label+" (in the lock session)", time.Since(start), err)
	}
	return out, err
}

// probe runs a probe script in the lock session and returns its output.
func (l *lockSession) probe(script string) (string, error) {
	timer := time.AfterFunc(l.timeout, func() { l.end(errProbeTimeout) })
	defer timer.Stop()
	payload := script + "\n#"
	// A refused write (the shell ended: another run's lock) shows as the
	// output's end below, with the reason.
	io.WriteString(l.p.Stdin(), fmt.Sprintf("probe %d\n%s", len(payload), payload))
	var out strings.Builder
	for {
		text, readErr := l.rd.ReadString('\n')
		switch strings.TrimSpace(text) {
		case l.token + " probed":
			return out.String(), nil
		case l.token + " locked":
			return "", errLocked
		}
		out.WriteString(text)
		if readErr != nil {
			l.p.Stdin().Close()
			err := l.p.Wait()
			if err == nil {
				err = readErr
			}
			if errors.Is(readErr, io.EOF) && err == readErr {
				err = errors.New("the session ended before the probe finished")
			}
			if context.Cause(l.ended) == errProbeTimeout {
				err = fmt.Errorf("the probe did not finish within %v", l.timeout)
			}
			return "", err
		}
	}
}

// close runs a last script when one is given (its output is not read:
// it only updates kprep's records), appends the run log and lets the lock
// go. The shell takes the requests in order, so the log is written after
// the script has run; only the shell's exit is waited for.
func (l *lockSession) close(last string, log []byte) {
	// Bounded as a probe is: the script asks programs for their versions.
	timer := time.AfterFunc(l.timeout, func() { l.end(errProbeTimeout) })
	defer timer.Stop()
	in := l.p.Stdin()
	// The script's answer, and anything else the shell prints, is read
	// and dropped, so no write of the shell's waits for a reader.
	go io.Copy(io.Discard, l.rd)
	if last != "" {
		payload := last + "\n#"
		io.WriteString(in, fmt.Sprintf("probe %d\n%s", len(payload), payload))
	}
	io.WriteString(in, "log\n")
	in.Write(log)
	in.Close()
	l.p.Wait()
	l.end(nil)
}

// runLogStep is one step in a run log record.
type runLogStep struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Start and DurationMs say when the step ran, so the order of steps
	// across hosts can be read from their run logs.
	Start      time.Time `json:"start"`
	DurationMs int64     `json:"durationMs"`
	Changes    []string  `json:"changes,omitempty"`
	Commands   []string  `json:"commands,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// runLogRecord is one line of /var/lib/kprep/run.log: what one run did on
// the host, so an operator on the host can see who changed what and when.
type runLogRecord struct {
	Time  time.Time    `json:"time"`
	Mode  Mode         `json:"mode"`
	Steps []runLogStep `json:"steps"`
}

// runLogLine is the run log's line for one run.
func runLogLine(now time.Time, mode Mode, steps []runLogStep) []byte {
	b, err := json.Marshal(runLogRecord{Time: now.UTC(), Mode: mode, Steps: steps})
	if err != nil {
		return nil // plain strings and numbers: does not happen
	}
	return append(b, '\n')
}

// commandList collects the command lines a step ran, on its host and its
// peers, for the report and the run log.
type commandList struct {
	mu    sync.Mutex
	lines []string
}

func (l *commandList) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

func (l *commandList) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// recordingExecutor remembers the command lines a step runs through it,
// with the command's own secrets and the run's masked; prefix names a
// peer ("cp1: ").
type recordingExecutor struct {
	Executor
	secrets *secretList
	into    *commandList
	prefix  string
}

func (e *recordingExecutor) Run(ctx context.Context, cmd transport.Command) (transport.Result, error) {
	shown := cmd.Line
	if cmd.Label != "" {
		shown = cmd.Label
	}
	e.into.add(e.prefix + e.secrets.redact(transport.Redact(shown, cmd.Secrets)))
	return e.Executor.Run(ctx, cmd)
}

func (e *recordingExecutor) WriteFile(ctx context.Context, path string, data []byte, opts transport.WriteOptions) error {
	e.into.add(e.prefix + "write " + path)
	return e.Executor.WriteFile(ctx, path, data, opts)
}
