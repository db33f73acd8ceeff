// Command bench measures kprep at scale on the lab's real hosts (root):
// for each host count N it boots a lab of N hosts, converges them with
// kprep, then times, on the same hosts in one run, the parallel `ssh HOST
// true` floor, a no-op `kprep plan` and `kprep apply`, and the same checks
// as an Ansible playbook (seed.yml), each the median of several runs; it
// records kprep's peak memory, the first apply on the fresh hosts, and what
// each step's probe costs a converged host. It prints one table and writes
// it as JSON. `make bench-scale` runs it; see README.md, "Speed at scale".
//
//	go run ./test/bench -n 3,50 -runs 5 -json /tmp/bench.json
//	go run ./test/bench probes        # probe cost per step on the running lab
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kprep/kprep/test/lab/lab"
)

func main() {
	// lab.Up starts the mirror server by running this program again.
	lab.HelperMain()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config is what one bench run measures, from the flags.
type config struct {
	counts      []int
	runs        int
	kprep       string
	jsonPath    string
	keep        bool
	concurrency int
	probeRuns   int
	probeDir    string
	phases      string
	ansible     bool
}

func run(ctx context.Context, args []string) error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root")
	}
	probesOnly := len(args) > 0 && args[0] == "probes"
	if probesOnly {
		args = args[1:]
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var counts string
	var c config
	fs.StringVar(&counts, "n", "3,50,200", "host counts, comma- or space-separated")
	fs.IntVar(&c.runs, "runs", 5, "timed runs of each tool per host count (the median is reported)")
	fs.StringVar(&c.kprep, "kprep", "bin/kprep", "the kprep binary")
	fs.StringVar(&c.jsonPath, "json", filepath.Join(os.TempDir(), "kprep-bench-scale.json"), "where the results go as JSON")
	fs.BoolVar(&c.keep, "keep", false, "leave the last lab up")
	fs.IntVar(&c.concurrency, "concurrency", 20, "hosts at once, for kprep, the ssh floor and Ansible's forks alike (kprep's default)")
	fs.StringVar(&c.phases, "phases", defaultPhases, "kprep's phases to converge and time, comma-separated (hostprep alone spares the package installs at 200 hosts); the playbook runs its tasks of the same tags")
	fs.BoolVar(&c.ansible, "ansible", true, "time the Ansible playbook too (-ansible=false spares its rounds: about 5 minutes each at 50 hosts here)")
	fs.IntVar(&c.probeRuns, "probe-runs", 20, "runs of each step's probe when its host CPU time is measured")
	fs.StringVar(&c.probeDir, "probe-dir", "", "probes: run the STEP.sh snippets in this folder (written by -dump) instead of this tree's")
	dump := fs.String("dump", "", "probes: write each step's snippet for the first host to this folder and stop")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if probesOnly {
		l, err := lab.Open(lab.StateDirFromEnv())
		if err != nil {
			return err
		}
		if *dump != "" {
			return dumpProbes(l, *dump)
		}
		costs, err := probeCosts(ctx, l, c)
		if err != nil {
			return err
		}
		printProbeCosts(os.Stdout, costs)
		return nil
	}
	for _, f := range strings.FieldsFunc(counts, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return fmt.Errorf("-n %q: want host counts such as 3,50,200", counts)
		}
		c.counts = append(c.counts, n)
	}
	if _, err := os.Stat(c.kprep); err != nil {
		return fmt.Errorf("%v (make build first)", err)
	}
	// Before any host boots: the Ansible side would otherwise fail only
	// after the lab's boot and first apply, minutes in.
	if _, err := exec.LookPath("ansible-playbook"); c.ansible && err != nil {
		return fmt.Errorf("no ansible-playbook: apt-get install ansible-core, or -ansible=false (BENCH_ANSIBLE=false) (%v)", err)
	}
	if abs, err := filepath.Abs(c.kprep); err == nil {
		c.kprep = abs
	}
	res := results{Machine: machine(), Runs: c.runs, Concurrency: c.concurrency, Started: time.Now().UTC()}
	for i, n := range c.counts {
		r, err := measureScale(ctx, c, n, c.keep && i == len(c.counts)-1)
		if r != nil {
			res.Rows = append(res.Rows, *r)
			if werr := writeJSON(c.jsonPath, res); werr != nil {
				return werr
			}
		}
		if err != nil {
			if len(res.Rows) > 0 {
				printTable(os.Stdout, res) // what was measured before it stopped
			}
			return fmt.Errorf("%d hosts: %w", n, err)
		}
	}
	printTable(os.Stdout, res)
	fmt.Printf("\nJSON: %s\n", c.jsonPath)
	return nil
}

// results is the whole run, as the JSON file holds it.
type results struct {
	Machine     string    `json:"machine"`
	Started     time.Time `json:"started"`
	Runs        int       `json:"runs"`
	Concurrency int       `json:"concurrency"`
	Rows        []row     `json:"rows"`
}

// row is one host count's figures: for each tool the medians of the runs,
// and the load average when the timed runs began.
type row struct {
	Hosts   int     `json:"hosts"`
	LoadAvg string  `json:"loadAvg"`
	LabUp   float64 `json:"labUpSeconds"`
	Floor   figures `json:"sshFloor"`
	Plan    figures `json:"kprepPlan"`
	Apply   figures `json:"kprepApply"`
	Ansible figures `json:"ansible"`
	// Ratios of wall times.
	PlanRatio    float64 `json:"planOverFloor"`
	ApplyRatio   float64 `json:"applyOverFloor"`
	AnsibleRatio float64 `json:"ansibleOverApply"`
	// AnsibleFloorRatio is the most AnsibleRatio could be: Ansible's wall
	// time over the floor's, the ratio of a tool that did no more than
	// `ssh HOST true`. A goal above it no SSH tool can meet.
	AnsibleFloorRatio float64 `json:"ansibleOverFloor"`
	// AnsibleCPURatio compares the CPU time both tools cost in all
	// (their own and the hosts'), which the machine's load does not skew.
	AnsibleCPURatio float64     `json:"ansibleOverApplyCPU"`
	RSSMiB          float64     `json:"kprepPeakRSSMiB"`
	RSSPerHost      float64     `json:"kprepRSSPerHostKiB"`
	Fresh           fresh       `json:"freshApply"`
	Samples         samples     `json:"samples"`
	Probes          []probeCost `json:"probeCostPerStep,omitempty"`
}

// figures are one run of a tool, or the medians of several: its wall
// time, its own CPU time (with the processes it waited for, such as ssh
// and Ansible's workers) and the CPU time of all hosts meanwhile, in
// seconds. Wall times on a loaded machine are upper bounds; CPU times hold.
type figures struct {
	Wall      float64 `json:"wallSeconds"`
	ClientCPU float64 `json:"clientCPUSeconds"`
	HostsCPU  float64 `json:"hostsCPUSeconds"`
}

// samples are every timed run.
type samples struct {
	Floor   []figures `json:"sshFloor"`
	Plan    []figures `json:"kprepPlan"`
	Apply   []figures `json:"kprepApply"`
	Ansible []figures `json:"ansible"`
}

// medians returns the median of each figure over runs.
func medians(runs []figures) figures {
	pick := func(f func(figures) float64) float64 {
		var xs []float64
		for _, r := range runs {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	return figures{Wall: pick(func(f figures) float64 { return f.Wall }),
		ClientCPU: pick(func(f figures) float64 { return f.ClientCPU }),
		HostsCPU:  pick(func(f figures) float64 { return f.HostsCPU })}
}

// fresh is the first apply on fresh hosts. The host times are sums over
// all hosts, in seconds, from kprep's report (HostTime).
type fresh struct {
	Wall float64 `json:"wallSeconds"`
	// CPU is kprep's own user and system time.
	CPU float64 `json:"kprepCPUSeconds"`
	// Apply is the hosts' time in the steps' Apply: the package manager,
	// daemons and files the hosts needed.
	Apply float64 `json:"hostsApplySeconds"`
	// Own is the hosts' time kprep spent itself: connecting, probing,
	// verifying, deciding; Probe and Connect are parts of it.
	Own     float64 `json:"hostsOwnSeconds"`
	Probe   float64 `json:"hostsProbeSeconds"`
	Connect float64 `json:"hostsConnectSeconds"`
	Probes  int     `json:"probes"`
	// Overhead is Own's share of Own and Apply.
	Overhead float64 `json:"overheadShare"`
}

func writeJSON(path string, r results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// machine names what the figures were measured on.
func machine() string {
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%d", &kb)
		mem = fmt.Sprintf(", %d GiB", (kb+512*1024)/(1024*1024))
	}
	return fmt.Sprintf("%d CPUs%s, %s/%s", runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH)
}

// loadAvg is the machine's load average (1, 5, 15 minutes): the lab's
// hosts share its cores with whatever else runs, so every figure says it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// printTable prints the rows as the README shows them.
func printTable(w io.Writer, res results) {
	fmt.Fprintf(w, "%s, concurrency %d, median of %d runs; wall seconds (client CPU + all hosts' CPU seconds)\n", res.Machine, res.Concurrency, res.Runs)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "hosts\tload\tssh floor\tkprep plan\tkprep apply\tansible\tplan/floor\tapply/floor\tansible/apply wall\tCPU\tansible/floor\tkprep RSS MiB\tKiB/host\tfresh apply\tits overhead\t")
	cell := func(f figures) string {
		if f.Wall == 0 {
			return "-" // not measured (-ansible=false)
		}
		return fmt.Sprintf("%.2f (%.2f+%.2f)", f.Wall, f.ClientCPU, f.HostsCPU)
	}
	ratio := func(x float64) string {
		if x == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1fx", x)
	}
	for _, r := range res.Rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%.2fx\t%.2fx\t%s\t%s\t%s\t%.1f\t%.0f\t%.0f s\t%.1f%%\t\n", r.Hosts, r.LoadAvg,
			cell(r.Floor), cell(r.Plan), cell(r.Apply), cell(r.Ansible), r.PlanRatio, r.ApplyRatio, ratio(r.AnsibleRatio), ratio(r.AnsibleCPURatio), ratio(r.AnsibleFloorRatio),
			r.RSSMiB, r.RSSPerHost, r.Fresh.Wall, 100*r.Fresh.Overhead)
	}
	_ = tw.Flush()
	for _, r := range res.Rows {
		f := r.Fresh
		fmt.Fprintf(w, "%d hosts, first apply: the hosts' time %.1f s in the steps' changes, %.1f s kprep's own (%.1f%%: %.1f s in %d probes, %.1f s connecting); kprep's CPU %.1f s\n",
			r.Hosts, f.Apply, f.Own, 100*f.Overhead, f.Probe, f.Probes, f.Connect, f.CPU)
	}
	for _, r := range res.Rows {
		if len(r.Probes) > 0 {
			fmt.Fprintf(w, "\n%d hosts: ", r.Hosts)
			printProbeCosts(w, r.Probes)
		}
	}
}
