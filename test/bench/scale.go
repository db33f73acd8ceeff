package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kprep/kprep/test/lab/lab"
)

// defaultPhases are the phases the bench converges and times: what the
// Ansible playbook checks too (its tasks are tagged by phase).
const defaultPhases = "hostprep,runtime"

// measureScale boots N hosts, converges them and measures every tool on
// them; the lab goes down at the end unless keep.
func measureScale(ctx context.Context, c config, n int, keep bool) (*row, error) {
	stateDir := lab.StateDirFromEnv()
	if err := lab.Down(ctx, stateDir); err != nil {
		return nil, fmt.Errorf("take down the lab left in %s: %w", stateDir, err)
	}
	logf("%d hosts: lab up", n)
	start := time.Now()
	l, err := lab.Up(ctx, lab.Options{Hosts: n, Log: os.Stderr})
	if !keep {
		defer func() {
			if err := lab.Down(context.Background(), stateDir); err != nil {
				logf("lab down: %v", err)
			}
		}()
	}
	if err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	r := &row{Hosts: n, LabUp: secs(time.Since(start))}
	password, err := l.SudoPassword()
	if err != nil {
		return r, err
	}
	k := kprepRunner{bin: c.kprep, inventory: l.InventoryPath(), phases: c.phases, concurrency: c.concurrency,
		env: append(os.Environ(), l.SudoPasswordEnv()+"="+password)}

	logf("%d hosts: first apply on fresh hosts (load %s)", n, loadAvg())
	res, err := k.run(ctx, "apply")
	if err != nil {
		return r, fmt.Errorf("first apply: %w", err)
	}
	r.Fresh = res.fresh()
	// The run after must find nothing to do: it is what the timed runs
	// measure.
	res, err = k.run(ctx, "apply")
	if err != nil && res.report.onlyConnectFailures() {
		// At 200 hosts on 2 cores, hosts that have just started their
		// daemons can take longer to log in than the inventory's
		// connectTimeout: try once more when they have settled.
		logf("%d hosts: second apply could not reach some hosts (%v); again once the hosts are idle", n, err)
		if err := waitIdle(ctx, l); err != nil {
			return r, err
		}
		res, err = k.run(ctx, "apply")
	}
	if err != nil {
		return r, fmt.Errorf("second apply: %w", err)
	} else if moved := res.notUnchanged(); len(moved) > 0 {
		return r, fmt.Errorf("the apply after the first changed %s: the hosts do not converge", strings.Join(moved, ", "))
	}

	var play *ansible
	if c.ansible {
		if play, err = newAnsible(ctx, l, c.concurrency, password, c.phases); err != nil {
			return r, err
		}
		defer play.close()
		// One warm-up run (ControlPersist masters, page cache), and the
		// proof that the playbook finds nothing to do either.
		if _, err := play.run(ctx); err != nil {
			return r, err
		}
	}
	floor := sshFloor{lab: l, concurrency: c.concurrency}
	if _, err := floor.run(ctx); err != nil {
		return r, err
	}

	r.LoadAvg = loadAvg()
	logf("%d hosts: %d timed runs of each (load %s)", n, c.runs, r.LoadAvg)
	hostsCPU, err := hostsUsage(l)
	if err != nil {
		return r, err
	}
	timed := func(into *[]figures, run func() (float64, error)) error {
		if err := waitIdle(ctx, l); err != nil {
			return err
		}
		before, err := hostsCPU()
		if err != nil {
			return err
		}
		start := time.Now()
		cpu, err := run()
		if err != nil {
			return err
		}
		wall := secs(time.Since(start))
		after, err := hostsCPU()
		*into = append(*into, figures{Wall: wall, ClientCPU: cpu, HostsCPU: secs(after - before)})
		return err
	}
	var rss []int64
	kprep := func(cmd string) func() (float64, error) {
		return func() (float64, error) {
			res, err := k.run(ctx, cmd)
			if err != nil {
				return 0, err
			}
			if moved := res.notUnchanged(); len(moved) > 0 {
				return 0, fmt.Errorf("a no-op %s found work: %s", cmd, strings.Join(moved, ", "))
			}
			rss = append(rss, res.maxRSSKiB)
			return res.cpu, nil
		}
	}
	s := &r.Samples
	type tool struct {
		name string
		into *[]figures
		run  func() (float64, error)
	}
	tools := []tool{{"ssh floor", &s.Floor, func() (float64, error) { return floor.run(ctx) }}, {"kprep plan", &s.Plan, kprep("plan")},
		{"kprep apply", &s.Apply, kprep("apply")}}
	if play != nil {
		tools = append(tools, tool{"ansible", &s.Ansible, func() (float64, error) { return play.run(ctx) }})
	}
	for i := 0; i < c.runs; i++ {
		for _, t := range tools {
			if err := timed(t.into, t.run); err != nil {
				// A run stopped on the way (a signal, a failure) still
				// gives the medians of what it measured.
				r.summarize(rss, play != nil)
				return r, err
			}
			f := last(*t.into)
			logf("%d hosts: run %d: %s %.2fs wall, %.2fs own CPU, %.2fs hosts' CPU (load %s)", n, i+1, t.name, f.Wall, f.ClientCPU, f.HostsCPU, loadAvg())
		}
	}
	r.summarize(rss, play != nil)

	logf("%d hosts: probe cost per step", n)
	r.Probes, err = probeCosts(ctx, l, c)
	return r, err
}

// summarize sets the row's medians, ratios and peak memory from its
// samples; a figure with no samples (a run stopped early) stays zero.
func (r *row) summarize(rss []int64, withAnsible bool) {
	s := &r.Samples
	r.Floor, r.Plan, r.Apply, r.Ansible = medians(s.Floor), medians(s.Plan), medians(s.Apply), medians(s.Ansible)
	ratio := func(a, b float64) float64 {
		if a == 0 || b == 0 {
			return 0
		}
		return a / b
	}
	r.PlanRatio, r.ApplyRatio = ratio(r.Plan.Wall, r.Floor.Wall), ratio(r.Apply.Wall, r.Floor.Wall)
	r.AnsibleRatio, r.AnsibleCPURatio, r.AnsibleFloorRatio = 0, 0, 0
	if withAnsible {
		r.AnsibleRatio = ratio(r.Ansible.Wall, r.Apply.Wall)
		r.AnsibleFloorRatio = ratio(r.Ansible.Wall, r.Floor.Wall)
		r.AnsibleCPURatio = ratio(r.Ansible.ClientCPU+r.Ansible.HostsCPU, r.Apply.ClientCPU+r.Apply.HostsCPU)
	}
	if len(rss) > 0 {
		peak := slices.Max(rss)
		r.RSSMiB = float64(peak) / 1024
		r.RSSPerHost = float64(peak) / float64(r.Hosts)
	}
}

// kprepRunner runs kprep on the lab's inventory.
type kprepRunner struct {
	bin, inventory string
	phases         string
	concurrency    int
	env            []string
}

// kprepResult is one run: its report, wall time, CPU time and peak memory.
type kprepResult struct {
	report    kprepReport
	wall, cpu float64
	maxRSSKiB int64
}

// kprepReport is the part of kprep's -o json report the bench reads.
type kprepReport struct {
	Hosts []struct {
		Name  string `json:"name"`
		Error string `json:"error"`
		Steps []struct {
			Name       string `json:"name"`
			Status     string `json:"status"`
			Error      string `json:"error"`
			DurationMs int64  `json:"durationMs"`
		} `json:"steps"`
	} `json:"hosts"`
	// Time is kprep's own account of the hosts' time, summed over them.
	Time struct {
		ConnectMs int64 `json:"connectMs"`
		ProbeMs   int64 `json:"probeMs"`
		ApplyMs   int64 `json:"applyMs"`
		OwnMs     int64 `json:"ownMs"`
		Probes    int   `json:"probes"`
	} `json:"time"`
}

func (k kprepRunner) run(ctx context.Context, command string) (kprepResult, error) {
	cmd := exec.CommandContext(ctx, k.bin, command, "-i", k.inventory, "--phase", k.phases,
		"--concurrency", fmt.Sprint(k.concurrency), "-o", "json")
	cmd.Env = k.env
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return kprepResult{}, err
	}
	peak := watchPeakRSS(cmd.Process.Pid)
	err := cmd.Wait()
	res := kprepResult{wall: secs(time.Since(start)), maxRSSKiB: peak(), cpu: cpuOf(cmd.ProcessState)}
	if jerr := json.Unmarshal(stdout.Bytes(), &res.report); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil {
		if failed := res.report.failures(); len(failed) > 0 {
			return res, fmt.Errorf("kprep %s: %v: %s", command, err, strings.Join(failed, "; "))
		}
		return res, fmt.Errorf("kprep %s: %v\n%s%s", command, err, tail(stdout.String()), tail(stderr.String()))
	}
	return res, nil
}

// failures names each host that failed with its error, or its failed
// step's: the report of 200 hosts is too long for its tail to show them.
func (r kprepReport) failures() []string {
	var out []string
	for _, h := range r.Hosts {
		if h.Error != "" {
			out = append(out, h.Name+": "+h.Error)
		}
		for _, s := range h.Steps {
			if s.Status == "failed" {
				out = append(out, h.Name+" "+s.Name+": "+s.Error)
			}
		}
	}
	return out
}

// onlyConnectFailures says whether every failure in the report is a host
// kprep could not connect to (a host still busy starting its daemons
// after the first apply, on a loaded machine).
func (r kprepReport) onlyConnectFailures() bool {
	n := 0
	for _, h := range r.Hosts {
		if strings.HasPrefix(h.Error, "connect: ") {
			n++
		}
	}
	return n > 0 && n == len(r.failures())
}

// watchPeakRSS follows a process's peak resident memory (VmHWM) until
// it ends, and returns a function that gives it once the process was
// waited for. The rusage of a child started from Go does not do: its
// ru_maxrss counts the parent's memory, which the child shares until it
// runs exec. Growth in the last 10 ms of the process can be missed.
func watchPeakRSS(pid int) func() int64 {
	var peak int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		path := fmt.Sprintf("/proc/%d/status", pid)
		for {
			b, err := os.ReadFile(path)
			if err != nil {
				return
			}
			found := false
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					var kb int64
					fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
					peak, found = max(peak, kb), true
				}
			}
			if !found { // a zombie: the process has ended
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() int64 { <-done; return peak }
}

// notUnchanged lists host/step that did not report unchanged.
func (r kprepResult) notUnchanged() []string {
	var out []string
	for _, h := range r.report.Hosts {
		if h.Error != "" {
			out = append(out, h.Name+": "+h.Error)
		}
		for _, s := range h.Steps {
			if s.Status != "unchanged" {
				out = append(out, h.Name+"/"+s.Name+" "+s.Status)
			}
		}
	}
	return out
}

// fresh splits a first apply by kprep's own account of the hosts' time
// (the report's time): the steps' Apply (package managers, daemons, files)
// against kprep's own (connecting, probing, verifying, deciding), waits
// for other hosts left out.
func (r kprepResult) fresh() fresh {
	t := r.report.Time
	f := fresh{Wall: r.wall, CPU: r.cpu, Apply: float64(t.ApplyMs) / 1000, Own: float64(t.OwnMs) / 1000,
		Probe: float64(t.ProbeMs) / 1000, Connect: float64(t.ConnectMs) / 1000, Probes: t.Probes}
	if t.ApplyMs+t.OwnMs > 0 {
		f.Overhead = float64(t.OwnMs) / float64(t.ApplyMs+t.OwnMs)
	}
	return f
}

// sshFloor is the least any SSH tool can take: `ssh HOST true` to every
// host, as many at once as kprep works on, with the system's OpenSSH
// client and the lab's key, each a new connection as kprep's are.
type sshFloor struct {
	lab         *lab.Lab
	concurrency int
}

func (f sshFloor) run(ctx context.Context) (float64, error) {
	hosts := f.lab.Hosts()
	sem := make(chan struct{}, f.concurrency)
	errs := make([]error, len(hosts))
	cpu := make([]float64, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cmd := exec.CommandContext(ctx, "ssh", append(sshOptions(f.lab), h.SSHUser+"@"+h.Address, "true")...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("ssh %s true: %v: %s", h.Name, err, out)
				return
			}
			cpu[i] = cpuOf(cmd.ProcessState)
		}()
	}
	wg.Wait()
	var sum float64
	for i, err := range errs {
		if err != nil {
			return 0, err
		}
		sum += cpu[i]
	}
	return sum, nil
}

// sshOptions are the OpenSSH client options for the lab's hosts, as its
// inventory sets them for kprep.
func sshOptions(l *lab.Lab) []string {
	return []string{"-i", l.KeyFile(), "-o", "UserKnownHostsFile=" + l.KnownHostsFile(), "-o", "StrictHostKeyChecking=accept-new",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-o", "KexAlgorithms=" + sameKex}
}

// sameKex is the key exchange kprep's SSH library settles on with the
// lab's sshd (OpenSSH 9.2 has no ML-KEM; Go's x/crypto has no sntrup761).
// OpenSSH's own default, sntrup761x25519, costs its client about 0.33 s
// of CPU per connection here against 0.02 s: a floor that pays it would
// flatter every tool measured against it.
const sameKex = "curve25519-sha256"

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func last(xs []figures) figures { return xs[len(xs)-1] }

// cpuOf is the user and system time of a process that ended, with the
// processes it waited for.
func cpuOf(p *os.ProcessState) float64 {
	if ru, ok := p.SysUsage().(*syscall.Rusage); ok && ru != nil {
		return secs(time.Duration(ru.Utime.Nano() + ru.Stime.Nano()))
	}
	return 0
}

// hostsUsage returns a reader of the CPU time all the lab's hosts have
// used.
func hostsUsage(l *lab.Lab) (func() (time.Duration, error), error) {
	var readers []func() (time.Duration, error)
	for _, h := range l.Hosts() {
		r, err := cgroupUsage(l, h.Name)
		if err != nil {
			return nil, err
		}
		readers = append(readers, r)
	}
	return func() (time.Duration, error) {
		var sum time.Duration
		for _, r := range readers {
			d, err := r()
			if err != nil {
				return 0, err
			}
			sum += d
		}
		return sum, nil
	}, nil
}

func secs(d time.Duration) float64 { return d.Seconds() }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// tail is the end of a long output, for an error message.
func tail(s string) string {
	if len(s) > 3000 {
		s = "..." + s[len(s)-3000:]
	}
	return s
}
