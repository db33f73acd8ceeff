package transport

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kprep/kprep/provision/inventory"
)

// The markers may arrive split across writes, mixed with sudo's own
// messages; what the caller gets back must be stderr without them.
func TestStderrWatchFindsSplitMarkers(t *testing.T) {
	m := markers{prompt: "PROMPT-x1", start: "START-y2"}
	stream := "[sudo] lecture\nPROMPT-x1Sorry, try again.\nPROMPT-x1START-y2:4242\nreal error\n"
	for chunk := 1; chunk <= len(stream); chunk++ {
		w := newStderrWatch(m, true)
		for i := 0; i < len(stream); i += chunk {
			w.Write([]byte(stream[i:min(i+chunk, len(stream))]))
		}
		started, prompts, pgid := w.state()
		if !started || prompts != 2 || pgid != 4242 {
			t.Fatalf("chunk %d: started %v prompts %d pgid %d, want true 2 4242", chunk, started, prompts, pgid)
		}
		if got, want := string(w.output()), "[sudo] lecture\nSorry, try again.\nreal error\n"; got != want {
			t.Fatalf("chunk %d: output %q, want %q", chunk, got, want)
		}
		var events []sudoEvent
		for len(w.events) > 0 {
			events = append(events, <-w.events)
		}
		if len(events) != 3 || events[0] != eventPrompt || events[1] != eventPrompt || events[2] != eventStarted {
			t.Fatalf("chunk %d: events %v, want prompt, prompt, started", chunk, events)
		}
	}
}

// After the start, the command's own output is not scanned: a command
// that prints a marker-like text keeps it.
func TestStderrWatchStopsAfterStart(t *testing.T) {
	m := markers{prompt: "P", start: "S"}
	w := newStderrWatch(m, false)
	w.Write([]byte("S:7\nP and S:1\n"))
	if got := string(w.output()); got != "P and S:1\n" {
		t.Errorf("output %q", got)
	}
}

func TestSudoModeFor(t *testing.T) {
	for _, tc := range []struct {
		user, sudo string
		want       sudoMode
		err        bool
	}{
		{"root", "", sudoNone, false},
		{"root", "auto", sudoNone, false},
		{"vagrant", "auto", sudoNoPassword, false},
		{"vagrant", "", sudoNoPassword, false},
		{"root", "true", sudoNoPassword, false},
		{"vagrant", "false", sudoNone, false},
		{"vagrant", "yes", sudoNone, true},
	} {
		got, err := sudoModeFor(inventory.SSH{User: tc.user, Sudo: tc.sudo})
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("sudoModeFor(%s, %q) = %v, %v", tc.user, tc.sudo, got, err)
		}
	}
}

// The command line travels on stdin, never in the SSH command that sudo
// logs: the wrapper reads exactly its bytes, runs it with its exit status,
// leaves the rest of stdin to it, and runs nothing of a line cut short.
func TestRemoteCommandReadsTheLineFromStdin(t *testing.T) {
	c := &Conn{markers: markers{prompt: "PR", start: "ST"}}
	for mode, prefix := range map[sudoMode]string{
		sudoNone:         "LC_ALL=C sh -c '",
		sudoNoPassword:   "LC_ALL=C sudo -n -- sh -c '",
		sudoWithPassword: "LC_ALL=C sudo -S -p 'PR' -- sh -c '",
	} {
		c.sudo = mode
		if got := c.remoteCommand(42); !strings.HasPrefix(got, prefix) {
			t.Errorf("mode %v: %q does not start with %q", mode, got, prefix)
		}
	}
	c.sudo = sudoNone
	dir := t.TempDir()
	run := func(line string, stdin []byte) (string, int) {
		t.Helper()
		// The SSH command is one string for the login shell; sh runs it here.
		cmd := exec.Command("sh", "-c", c.remoteCommand(len(sessionScript(line))))
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		// A non-zero exit is an answer here; only a shell that never ran fails.
		if err := cmd.Run(); cmd.ProcessState == nil {
			t.Fatal(err)
		}
		status := cmd.ProcessState.ExitCode()
		if !strings.HasPrefix(errOut.String(), "ST:") {
			t.Errorf("stderr %q lacks the start line", errOut.String())
		}
		return out.String(), status
	}
	line := "echo 'it''s' \"$0\"; read -r rest; echo \"got $rest\"\nexit 3\n\n"
	out, status := run(line, append(sessionScript(line), "the command's own input\n"...))
	if out != "its sh\ngot the command's own input\n" || status != 3 {
		t.Errorf("output %q, status %d; want the line's output with the input after it, and its status 3", out, status)
	}
	for _, shell := range []string{"dash", "bash"} {
		if _, err := exec.LookPath(shell); err != nil {
			continue
		}
		cmd := exec.Command(shell, "-c", c.remoteCommand(len(sessionScript("echo ok"))))
		cmd.Stdin = bytes.NewReader(sessionScript("echo ok"))
		if got, err := cmd.Output(); err != nil || string(got) != "ok\n" {
			t.Errorf("%s: %q, %v", shell, got, err)
		}
	}

	marker := filepath.Join(dir, "ran")
	line = "touch " + marker + "; echo ran"
	whole := sessionScript(line)
	if out, status := run(line, whole[:len(whole)-10]); status != cutShortStatus || out != "" {
		t.Errorf("a line cut short: output %q, status %d; want nothing run and status %d", out, status, cutShortStatus)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a line cut short ran")
	}
}

// A cancel may come before the stderr copy delivered the start line (the
// caller already read the command's stdout): the stop needs the process
// group all the same, or the command outlives the cancel.
func TestProcessGroupWaitsForTheStartLine(t *testing.T) {
	m := markers{prompt: "P", start: "START-z3"}
	s := &session{watch: newStderrWatch(m, false), ended: make(chan struct{})}
	release := make(chan struct{})
	go func() {
		<-release
		s.watch.Write([]byte("START-z3:4242\n"))
	}()
	close(release)
	if got := s.processGroup(); got != 4242 {
		t.Errorf("processGroup = %d, want 4242 from the late start line", got)
	}

	// A session that ended without starting has no group, and no wait.
	s = &session{watch: newStderrWatch(m, false), ended: make(chan struct{})}
	close(s.ended)
	if got := s.processGroup(); got != 0 {
		t.Errorf("processGroup of an ended session = %d, want 0", got)
	}
}
