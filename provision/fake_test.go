package provision

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

// The fake world: hosts whose state is a map of keys to values, and steps
// that each own one key. The fake executor understands the engine's probe
// script well enough to answer it, and a "set KEY VALUE" command.

const rockyFacts = `os_id=rocky
os_version=9.4
os_name=Rocky Linux 9.4
arch=x86_64
kernel=5.14.0
cgroupfs=cgroup2fs
init=systemd
pkg=dnf
hostname=h
user=root
`

var sectionRE = regexp.MustCompile(`echo '(@@kprep-[0-9a-f]+) begin (\S+)'`)

// fakeHost is one host of the fake world.
type fakeHost struct {
	mu       sync.Mutex
	name     string
	state    map[string]string
	commands []string
	facts    string
	// failSet makes "set KEY ..." fail.
	failSet map[string]bool
	// block makes "set KEY ..." wait until ctx ends.
	block map[string]bool
	// broken makes "set KEY" report success without changing anything.
	broken map[string]bool
	// gate makes "set KEY ..." wait until the channel is closed.
	gate map[string]chan struct{}
	// onRun is called for every command (to measure concurrency).
	onRun func()
	// onCommand is called with every command line before it is answered.
	onCommand func(line string)
	// onSet is called after a "set KEY" changed the state, without the
	// host's lock (it may change other hosts).
	onSet func(key string)
	// probeStatus makes a section's snippet exit with that status and
	// write probeStderr; dropSection leaves a section out of the output.
	probeStatus map[string]int
	probeStderr map[string]string
	dropSection map[string]bool
	// secrets are what the engine asked the connection to mask.
	secrets []string
	// runLog is what the lock session was given for the host's run log.
	runLog strings.Builder
}

func newFakeHost(name string, state map[string]string) *fakeHost {
	return &fakeHost{name: name, state: state, facts: rockyFacts, failSet: map[string]bool{},
		block: map[string]bool{}, broken: map[string]bool{}, gate: map[string]chan struct{}{},
		probeStatus: map[string]int{}, probeStderr: map[string]string{}, dropSection: map[string]bool{}}
}

func (h *fakeHost) Run(ctx context.Context, cmd transport.Command) (transport.Result, error) {
	if h.onRun != nil {
		h.onRun()
	}
	if h.onCommand != nil {
		h.onCommand(cmd.Line)
	}
	h.mu.Lock()
	h.commands = append(h.commands, cmd.Line)
	h.mu.Unlock()
	if m := sectionRE.FindAllStringSubmatch(cmd.Line, -1); m != nil {
		return transport.Result{Stdout: []byte(h.answerProbe(m))}, nil
	}
	var key, value string
	if _, err := fmt.Sscanf(cmd.Line, "set %s %s", &key, &value); err != nil {
		return transport.Result{}, fmt.Errorf("fake: unknown command %q", cmd.Line)
	}
	if g := h.gate[key]; g != nil {
		<-g
	}
	if h.block[key] {
		<-ctx.Done()
		return transport.Result{}, &transport.CommandError{Host: h.name, Line: cmd.Line, Status: -1, Err: ctx.Err()}
	}
	if h.failSet[key] {
		return transport.Result{Status: 1}, &transport.CommandError{Host: h.name, Line: cmd.Line, Status: 1, Stderr: "permission denied"}
	}
	if !h.broken[key] {
		h.mu.Lock()
		h.state[key] = value
		h.mu.Unlock()
		if h.onSet != nil {
			h.onSet(key)
		}
	}
	return transport.Result{}, nil
}

func (h *fakeHost) answerProbe(sections [][]string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, m := range sections {
		token, name := m[1], m[2]
		if h.dropSection[name] {
			continue
		}
		fmt.Fprintf(&b, "%s begin %s\n", token, name)
		if name == factsSection {
			b.WriteString(h.facts)
		} else {
			fmt.Fprintf(&b, "%s\n", h.state[name])
		}
		fmt.Fprintf(&b, "%s end %s %d\n", token, name, h.probeStatus[name])
		if e := h.probeStderr[name]; e != "" {
			fmt.Fprintf(&b, "%s stderr %s %s\n", token, name, base64.StdEncoding.EncodeToString([]byte(e)))
		}
	}
	return b.String()
}

func (h *fakeHost) WriteFile(ctx context.Context, path string, data []byte, opts transport.WriteOptions) error {
	_, err := h.Run(ctx, transport.Command{Line: "set " + path + " " + string(data)}) // no file system in the fake
	return err
}

func (h *fakeHost) Close() error { return nil }

func (h *fakeHost) AddSecret(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.secrets = append(h.secrets, s)
}

// lockingHost is a fakeHost that also holds the run lock, runs probes and
// takes the run log the way a real lock session does (Starter): requests
// on stdin, "probe N" and a script of N bytes, or "log" and the log.
type lockingHost struct{ *fakeHost }

var lockTokenRE = regexp.MustCompile(`echo "(@@kprep-[0-9a-f]+) probed"`)

func (h lockingHost) Start(ctx context.Context, cmd transport.Command) (Process, error) {
	// The probes it runs count as the host's commands, each prefixed with
	// the variables the lock shell sets for them.
	var vars string
	if strings.Contains(cmd.Line, "\nkprep_recording=1\n") {
		vars = "kprep_recording=1\n"
	}
	token := lockTokenRE.FindStringSubmatch(cmd.Line)[1]
	return lockSessionProcess(token, func(script string) (string, bool) {
		// As the transport ends a started session with its context.
		if ctx.Err() != nil {
			return "", false
		}
		line := vars + strings.TrimSuffix(script, "\n#")
		if !sectionRE.MatchString(line) {
			// A script that only updates kprep's records on the host
			// (facts.RecordVersions): the fake has none.
			h.mu.Lock()
			h.commands = append(h.commands, line)
			h.mu.Unlock()
			return "", true
		}
		res, err := h.Run(ctx, transport.Command{Line: line})
		return string(res.Stdout), err == nil
	}, func(log []byte) {
		h.mu.Lock()
		h.runLog.Write(log)
		h.mu.Unlock()
	}), nil
}

// lockSessionProcess is a started lock session as a fake Starter returns
// it: serveLockSession behind a pair of pipes, ended when it returns.
func lockSessionProcess(token string, probe func(script string) (string, bool), log func([]byte)) *fakeProcess {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &fakeProcess{stdin: inW, stdout: outR, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		serveLockSession(inR, outW, token, probe, log)
	}()
	return p
}

// serveLockSession answers a lock session's requests as the lock shell
// does (see lockShell): "probe N" and a script of N bytes, answered by
// probe and the token's "probed" line, until probe says stop; or "log"
// and the run log, handed to log. It closes out when it ends, and in, so
// that a later request fails as a write to an ended session does.
func serveLockSession(in *io.PipeReader, out *io.PipeWriter, token string, probe func(script string) (string, bool), log func([]byte)) {
	defer out.Close()
	defer in.Close()
	rd := bufio.NewReader(in)
	for {
		req, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		if req == "log\n" {
			b, _ := io.ReadAll(rd)
			log(b)
			return
		}
		var n int
		if _, err := fmt.Sscanf(req, "probe %d\n", &n); err != nil {
			out.CloseWithError(fmt.Errorf("fake: bad request %q", req))
			return
		}
		script := make([]byte, n)
		if _, err := io.ReadFull(rd, script); err != nil {
			return
		}
		answer, ok := probe(string(script))
		if !ok {
			return
		}
		io.WriteString(out, answer+token+" probed\n")
	}
}

type fakeProcess struct {
	stdin  *io.PipeWriter
	stdout io.Reader
	done   chan struct{}
}

func (p *fakeProcess) Stdout() io.Reader     { return p.stdout }
func (p *fakeProcess) Stdin() io.WriteCloser { return p.stdin }
func (p *fakeProcess) Wait() error           { <-p.done; return nil }
func (p *fakeProcess) Close() error          { return p.stdin.Close() }

func (h *fakeHost) changingCommands() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.commands {
		if strings.HasPrefix(c, "set ") {
			out = append(out, c)
		}
	}
	return out
}

// probes lists the probe scripts the host was sent, in order.
func (h *fakeHost) probes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.commands {
		if sectionRE.MatchString(c) {
			out = append(out, c)
		}
	}
	return out
}

func (h *fakeHost) roundTrips() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.commands)
}

// fakeDialer hands out the fake hosts by name.
type fakeDialer struct {
	hosts map[string]*fakeHost
	fail  map[string]error
	// locking hands out hosts that hold the run lock and keep a run log.
	locking bool

	mu    sync.Mutex
	dials map[string]int
}

func (d *fakeDialer) Dial(ctx context.Context, h *inventory.Host) (Conn, error) {
	d.mu.Lock()
	if d.dials == nil {
		d.dials = map[string]int{}
	}
	d.dials[h.Name]++
	d.mu.Unlock()
	if err := d.fail[h.Name]; err != nil {
		return nil, err
	}
	fh, ok := d.hosts[h.Name]
	if !ok {
		return nil, errors.New("no route to host")
	}
	if d.locking {
		return lockingHost{fh}, nil
	}
	return fh, nil
}

func (d *fakeDialer) dialsOf(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials[name]
}

// keyStep wants state[name] == want on every host (or on the hosts listed).
type keyStep struct {
	name  string
	want  string
	only  []string
	after []string
	// applied records the hosts Apply ran on, in order, shared by steps.
	applied *eventLog
}

func (s *keyStep) Name() string { return s.name }

func (s *keyStep) Probe(*inventory.Host, *inventory.Cluster) string { return "cat /state/" + s.name }

func (s *keyStep) Diff(in Input) ([]Change, error) {
	got := strings.TrimSpace(in.State)
	if got == s.want {
		return nil, nil
	}
	if got == "invalid" {
		return nil, errors.New("state is invalid")
	}
	return []Change{{Key: s.name, Summary: fmt.Sprintf("%s is %q, want %q", s.name, got, s.want)}}, nil
}

func (s *keyStep) Apply(ctx context.Context, t Target, in Input, changes []Change) error {
	if s.applied != nil {
		s.applied.add(in.Host.Name + ":" + s.name + ":start")
		defer s.applied.add(in.Host.Name + ":" + s.name + ":end")
	}
	_, err := t.Run(ctx, transport.Command{Line: "set " + s.name + " " + s.want})
	return err
}

func (s *keyStep) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	if s.only == nil {
		return true
	}
	for _, n := range s.only {
		if n == h.Name {
			return true
		}
	}
	return false
}

func (s *keyStep) After() []string { return s.after }

// eventLog is an ordered, concurrency-safe list of events.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) index(e string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, x := range l.events {
		if x == e {
			return i
		}
	}
	return -1
}

// testCluster makes an inventory with the named hosts; the first is the
// control plane.
func testCluster(names ...string) *inventory.Cluster {
	c := &inventory.Cluster{Concurrency: 20}
	for i, n := range names {
		role := inventory.RoleWorker
		if i == 0 {
			role = inventory.RoleControlPlane
		}
		c.Hosts = append(c.Hosts, inventory.Host{Name: n, Address: fmt.Sprintf("10.0.0.%d", i+1), Roles: []string{role}})
	}
	return c
}

// peerStep reads something from another host while it applies.
type peerStep struct {
	peer  string
	check func(error)
}

func (s *peerStep) Name() string                                     { return "kube/join" }
func (s *peerStep) Probe(*inventory.Host, *inventory.Cluster) string { return "cat /state/joined" }
func (s *peerStep) Diff(in Input) ([]Change, error) {
	if strings.TrimSpace(in.State) == "yes" {
		return nil, nil
	}
	return []Change{{Key: "join", Summary: "not joined"}}, nil
}
func (s *peerStep) Apply(ctx context.Context, t Target, in Input, changes []Change) error {
	p, err := t.Peer(s.peer)
	if err != nil {
		s.check(err)
		return err
	}
	if _, err := p.Run(ctx, transport.Command{Line: "set token-read yes"}); err != nil {
		return err
	}
	_, err = t.Run(ctx, transport.Command{Line: "set kube/join yes"})
	return err
}

// runEngine runs the engine and fails the test if the step list is refused.
func runEngine(t testing.TB, ctx context.Context, c *inventory.Cluster, d Dialer, o Options) *Report {
	t.Helper()
	rep, err := Run(ctx, c, d, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
