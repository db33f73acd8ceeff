package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kprep/kprep/hostprep"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/runtime"
	"github.com/kprep/kprep/test/lab/lab"
)

// probeCost is what one step's probe costs one converged host: the CPU
// time the host spends on it (the shell, the commands it runs, and the
// daemons they ask: systemd for systemctl, dockerd for docker info), per
// probe run, less that of an empty snippet.
type probeCost struct {
	Host  string  `json:"host"`
	OS    string  `json:"os"`
	Step  string  `json:"step"`
	CPUms float64 `json:"hostCPUMilliseconds"`
}

// benchSteps are the steps the bench times, in run order.
func benchSteps() []provision.Step { return append(hostprep.Steps(), runtime.Steps()...) }

// namedProbe is one snippet of a host's probe script.
type namedProbe struct{ name, snippet string }

// benchProbes are the snippets of a converged host's probe: the facts,
// which every run reads, then each step's.
func benchProbes(h *inventory.Host, c *inventory.Cluster) []namedProbe {
	out := []namedProbe{{"facts", facts.Script}}
	for _, s := range benchSteps() {
		out = append(out, namedProbe{s.Name(), s.Probe(h, c)})
	}
	return out
}

// probedHosts is how many of the lab's first hosts (one per personality)
// the probe cost is measured on.
const probedHosts = 3

// snippetFile names a step's snippet for a host in a -dump folder.
func snippetFile(dir, host, step string) string {
	return filepath.Join(dir, host, strings.ReplaceAll(step, "/", "_")+".sh")
}

// dumpProbes writes each step's probe for the lab's first hosts, so that
// another tree's probes can be measured on the same hosts (-probe-dir),
// and the whole script a run sends them (whole-probe.sh).
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
		var names, snippets []string
		for _, p := range benchProbes(h, c) {
			if err := os.WriteFile(snippetFile(dir, h.Name, p.name), []byte(p.snippet), 0o644); err != nil {
				return err
			}
			names, snippets = append(names, p.name), append(snippets, p.snippet)
		}
		// The script a run sends, to run and trace by hand on the host.
		if err := os.WriteFile(filepath.Join(dir, h.Name, "whole-probe.sh"), []byte(provision.ProbeScript(names, snippets)), 0o644); err != nil {
			return err
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
		m := prober{lab: l, host: h, runs: cfg.probeRuns}
		base, err := m.cost(ctx, ":")
		if err != nil {
			return nil, err
		}
		var names, snippets []string
		for _, p := range benchProbes(&c.Hosts[i], c) {
			if phase, _, isStep := strings.Cut(p.name, "/"); isStep && cfg.phases != "" && !slices.Contains(strings.Split(cfg.phases, ","), phase) {
				continue
			}
			snippet := p.snippet
			if cfg.probeDir != "" {
				b, err := os.ReadFile(snippetFile(cfg.probeDir, h.Name, p.name))
				if err != nil {
					return nil, err
				}
				snippet = string(b)
			}
			names, snippets = append(names, p.name), append(snippets, snippet)
			// As a probe of this step alone runs it: the engine's script,
			// with the batched reads of its own files, units and packages.
			ms, err := m.cost(ctx, provision.ProbeScript([]string{p.name}, []string{snippet}))
			if err != nil {
				return nil, fmt.Errorf("%s on %s: %w", p.name, h.Name, err)
			}
			out = append(out, probeCost{Host: h.Name, OS: h.OS, Step: p.name, CPUms: ms - base})
		}
		// The script a run sends: the steps share its batched reads, so
		// it costs less than the sum of the steps alone.
		ms, err := m.cost(ctx, provision.ProbeScript(names, snippets))
		if err != nil {
			return nil, fmt.Errorf("the whole probe on %s: %w", h.Name, err)
		}
		out = append(out, probeCost{Host: h.Name, OS: h.OS, Step: wholeProbe, CPUms: ms - base})
	}
	return out, nil
}

// wholeProbe names the cost of the script a run sends a host.
const wholeProbe = "the whole probe"

// prober runs a snippet on a host over SSH and reads what it cost the host.
type prober struct {
	lab  *lab.Lab
	host lab.Host
	runs int
}

// costScript runs a snippet p.runs times, then prints the CPU time of the
// shell and its children (the `times` builtin: exact, counted as each
// process ends) and the clock ticks the daemons a probe asks used
// meanwhile: systemd (systemctl), dockerd (docker info), containerd.
// Measured inside the host, it is not skewed by the machine's load or by
// what the host's daemons do on their own between probes, as the host's
// whole cgroup would be.
const costScript = `kprep_dcpu() { t=0; for p in 1 $(pidof dockerd containerd 2>/dev/null); do set -- $(cut -d' ' -f14,15 /proc/$p/stat 2>/dev/null); [ $# -ne 2 ] || t=$((t+$1+$2)); done; echo $t; }
kprep_d0=$(kprep_dcpu)
i=0; while [ $i -lt %d ]; do (
%s
) >/dev/null 2>&1 </dev/null; i=$((i+1)); done
echo "daemons $kprep_d0 $(kprep_dcpu) $(getconf CLK_TCK)"
times
`

// cost returns the host CPU milliseconds of one run of snippet.
func (p prober) cost(ctx context.Context, snippet string) (float64, error) {
	remote := "sh -s"
	if p.host.SSHUser != "root" {
		remote = "sudo -n sh -s"
	}
	cmd := exec.CommandContext(ctx, "ssh", append(sshOptions(p.lab), p.host.SSHUser+"@"+p.host.Address, remote)...)
	cmd.Stdin = strings.NewReader(fmt.Sprintf(costScript, p.runs, snippet))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ssh: %v: %s", err, out)
	}
	total, err := parseCost(string(out))
	if err != nil {
		return 0, err
	}
	return total.Seconds() * 1000 / float64(p.runs), nil
}

// parseCost reads costScript's output: the daemons' ticks, then `times`
// (the shell's user and system time, then its children's, as dash and
// bash print them: 0m0.012000s or 0m0.012s).
func parseCost(out string) (time.Duration, error) {
	var total time.Duration
	var seen bool
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "daemons" {
			d0, err1 := strconv.Atoi(f[1])
			d1, err2 := strconv.Atoi(f[2])
			hz, err3 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil || err3 != nil || hz <= 0 {
				return 0, fmt.Errorf("bad daemon line %q", line)
			}
			total += time.Duration(d1-d0) * time.Second / time.Duration(hz)
			seen = true
			continue
		}
		if len(f) != 2 || !strings.HasSuffix(f[0], "s") || !strings.Contains(f[0], "m") {
			continue
		}
		for _, v := range f {
			m, sec, _ := strings.Cut(strings.TrimSuffix(v, "s"), "m")
			mins, err1 := strconv.Atoi(m)
			secs, err2 := strconv.ParseFloat(sec, 64)
			if err1 != nil || err2 != nil {
				return 0, fmt.Errorf("bad times line %q", line)
			}
			total += time.Duration((float64(mins)*60 + secs) * float64(time.Second))
		}
	}
	if !seen {
		return 0, fmt.Errorf("no cost in the output: %q", out)
	}
	return total, nil
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
		if s == wholeProbe {
			continue
		}
		line := s + "\t"
		for i, h := range hosts {
			line += fmt.Sprintf("%.1f\t", ms[[2]string{s, h}])
			total[i] += ms[[2]string{s, h}]
		}
		fmt.Fprintln(tw, line)
	}
	line := "sum of the steps alone\t"
	for _, t := range total {
		line += fmt.Sprintf("%.1f\t", t)
	}
	fmt.Fprintln(tw, line)
	line = wholeProbe + " (one script)\t"
	for _, h := range hosts {
		line += fmt.Sprintf("%.1f\t", ms[[2]string{wholeProbe, h}])
	}
	fmt.Fprintln(tw, line)
	_ = tw.Flush()
}
