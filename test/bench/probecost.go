package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kprep/kprep/hostprep"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/runtime"
	"github.com/kprep/kprep/test/lab/lab"
)

// probeCost is what one step's probe costs one converged host: the CPU
// time the whole host spends on it (the shell, the commands it runs, and
// the daemons they ask, such as systemd for systemctl and dockerd for
// docker info), from the host's cgroup, per probe run.
type probeCost struct {
	Host  string  `json:"host"`
	OS    string  `json:"os"`
	Step  string  `json:"step"`
	CPUms float64 `json:"hostCPUMilliseconds"`
}

// benchSteps are the steps the bench times, in run order.
func benchSteps() []provision.Step { return append(hostprep.Steps(), runtime.Steps()...) }

// probedHosts is how many of the lab's first hosts (one per personality)
// the probe cost is measured on.
const probedHosts = 3

// snippetFile names a step's snippet for a host in a -dump folder.
func snippetFile(dir, host, step string) string {
	return filepath.Join(dir, host, strings.ReplaceAll(step, "/", "_")+".sh")
}

// dumpProbes writes each step's probe for the lab's first hosts, so that
// another tree's probes can be measured on the same hosts (-probe-dir).
func dumpProbes(l *lab.Lab, dir string) error {
	c, err := loadLabInventory(l)
	if err != nil {
		return err
	}
	for i := range min(probedHosts, len(c.Hosts)) {
		h := &c.Hosts[i]
		if err := os.MkdirAll(filepath.Join(dir, h.Name), 0o755); err != nil {
			return err
		}
		for _, s := range benchSteps() {
			if err := os.WriteFile(snippetFile(dir, h.Name, s.Name()), []byte(s.Probe(h, c)), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadLabInventory loads the lab's inventory, which names the sudo
// password's environment variable.
func loadLabInventory(l *lab.Lab) (*inventory.Cluster, error) {
	password, err := l.SudoPassword()
	if err != nil {
		return nil, err
	}
	if err := os.Setenv(l.SudoPasswordEnv(), password); err != nil {
		return nil, err
	}
	return inventory.Load(l.InventoryPath())
}

// probeCosts measures every step's probe on each of the lab's first hosts
// (up to three, one per personality) that kprep reaches as root or with a
// sudo that needs no password.
func probeCosts(ctx context.Context, l *lab.Lab, cfg config) ([]probeCost, error) {
	c, err := loadLabInventory(l)
	if err != nil {
		return nil, err
	}
	var out []probeCost
	for i, h := range l.Hosts() {
		if i >= probedHosts {
			break
		}
		if h.SudoNeedsPassword || h.VM {
			continue
		}
		usage, err := cgroupUsage(l, h.Name)
		if err != nil {
			return nil, err
		}
		m := prober{lab: l, host: h, usage: usage, runs: cfg.probeRuns}
		base, err := m.cost(ctx, ":")
		if err != nil {
			return nil, err
		}
		for _, s := range benchSteps() {
			snippet := s.Probe(&c.Hosts[i], c)
			if cfg.probeDir != "" {
				b, err := os.ReadFile(snippetFile(cfg.probeDir, h.Name, s.Name()))
				if err != nil {
					return nil, err
				}
				snippet = string(b)
			}
			ms, err := m.cost(ctx, snippet)
			if err != nil {
				return nil, fmt.Errorf("%s on %s: %w", s.Name(), h.Name, err)
			}
			out = append(out, probeCost{Host: h.Name, OS: h.OS, Step: s.Name(), CPUms: ms - base})
		}
	}
	return out, nil
}

// prober runs a snippet on a host over SSH and reads what it cost the host.
type prober struct {
	lab   *lab.Lab
	host  lab.Host
	usage func() (time.Duration, error)
	runs  int
}

// cost runs snippet p.runs times in one SSH session and returns the host's
// CPU milliseconds per run, less what the host spent meanwhile on its own
// (its daemons' housekeeping, measured just before over as long a time).
func (p prober) cost(ctx context.Context, snippet string) (float64, error) {
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do (\n%s\n) >/dev/null 2>&1 </dev/null; i=$((i+1)); done\n", p.runs, snippet)
	remote := "sh -s"
	if p.host.SSHUser != "root" {
		remote = "sudo -n sh -s"
	}
	before, err := p.usage()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "ssh", append(sshOptions(p.lab), p.host.SSHUser+"@"+p.host.Address, remote)...)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("ssh: %v: %s", err, out)
	}
	elapsed := time.Since(start)
	after, err := p.usage()
	if err != nil {
		return 0, err
	}
	// The host's idle rate over as long, right after.
	idleStart, idleBefore := time.Now(), after
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(elapsed):
	}
	idleAfter, err := p.usage()
	if err != nil {
		return 0, err
	}
	idle := float64(idleAfter-idleBefore) * float64(elapsed) / float64(time.Since(idleStart))
	return (float64(after-before) - idle) / float64(p.runs) / 1e6, nil
}

// cgroupUsage returns a reader of the CPU time a lab host's cgroup has
// used: cpuacct.usage on cgroup v1, cpu.stat's usage_usec on v2.
func cgroupUsage(l *lab.Lab, host string) (func() (time.Duration, error), error) {
	rel := filepath.Join(l.Instance().CgroupRoot(), host)
	for _, dir := range []string{"/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct"} {
		path := filepath.Join(dir, rel, "cpuacct.usage")
		if _, err := os.Stat(path); err == nil {
			return func() (time.Duration, error) {
				b, err := os.ReadFile(path)
				if err != nil {
					return 0, err
				}
				ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
				return time.Duration(ns), err
			}, nil
		}
	}
	path := filepath.Join("/sys/fs/cgroup", rel, "cpu.stat")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no CPU accounting for host %s's cgroup: %w", host, err)
	}
	return func() (time.Duration, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				return time.Duration(us) * time.Microsecond, err
			}
		}
		return 0, fmt.Errorf("%s has no usage_usec", path)
	}, nil
}

// printProbeCosts prints one line per step, one column per host.
func printProbeCosts(w io.Writer, costs []probeCost) {
	var hosts, steps []string
	ms := map[[2]string]float64{}
	seen := map[string]bool{}
	for _, c := range costs {
		col := c.Host + " (" + c.OS + ")"
		if !seen[col] {
			seen[col] = true
			hosts = append(hosts, col)
		}
		if !seen["step "+c.Step] {
			seen["step "+c.Step] = true
			steps = append(steps, c.Step)
		}
		ms[[2]string{c.Step, col}] = c.CPUms
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	var head bytes.Buffer
	head.WriteString("host CPU ms per probe\t")
	for _, h := range hosts {
		head.WriteString(h + "\t")
	}
	fmt.Fprintln(tw, head.String())
	total := make([]float64, len(hosts))
	for _, s := range steps {
		line := s + "\t"
		for i, h := range hosts {
			line += fmt.Sprintf("%.1f\t", ms[[2]string{s, h}])
			total[i] += ms[[2]string{s, h}]
		}
		fmt.Fprintln(tw, line)
	}
	line := "all steps\t"
	for _, t := range total {
		line += fmt.Sprintf("%.1f\t", t)
	}
	fmt.Fprintln(tw, line)
	_ = tw.Flush()
}
