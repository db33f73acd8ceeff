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

// lockAndProbe starts the session that holds the host's run lock for the
// whole apply. The same session runs the probe script (so locking costs no
// extra round trip) and, at the end, appends what the run wrote to its
// stdin to the run log. Closing its stdin releases the lock; so does a lost
// connection, since the lock dies with the shell that holds it.
func lockAndProbe(ctx context.Context, s Starter, token, probe, label string) (Process, string, error) {
	// Holding the lock, the probe may also update kprep's own records
	// (shell.RecordingVar); a plan's probe only reads them.
	line := fmt.Sprintf(`mkdir -p %[1]s && chmod 0700 %[1]s && exec 9>>%[2]s || exit 1
if ! flock -n 9; then echo "%[3]s locked"; exit %[4]d; fi
%[7]s=1
%[5]s
echo "%[3]s probed"
exec cat >>%[6]s`, StateDir, lockFile, token, lockBusyStatus, probe, runLogFile, shell.RecordingVar)
	p, err := s.Start(ctx, transport.Command{Line: line, Label: "lock " + lockFile + " and " + label})
	if err != nil {
		return nil, "", fmt.Errorf("probe: %w", err)
	}
	var out strings.Builder
	rd := bufio.NewReader(p.Stdout())
	for {
		text, readErr := rd.ReadString('\n')
		switch strings.TrimSpace(text) {
		case token + " probed":
			return p, out.String(), nil
		case token + " locked":
			p.Stdin().Close()
			p.Wait()
			return nil, "", fmt.Errorf("another kprep run holds %s on this host; wait for it or remove a stale lock holder", lockFile)
		}
		out.WriteString(text)
		if readErr != nil {
			p.Stdin().Close()
			err := p.Wait()
			if err == nil {
				err = readErr
			}
			if errors.Is(readErr, io.EOF) && err == readErr {
				err = errors.New("the session ended before the probe finished")
			}
			return nil, "", fmt.Errorf("probe: %w", err)
		}
	}
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

func writeRunLog(w io.Writer, now time.Time, mode Mode, steps []runLogStep) error {
	b, err := json.Marshal(runLogRecord{Time: now.UTC(), Mode: mode, Steps: steps})
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
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
