package provision

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

// The engine alone, without SSH or hosts: 1000 fake hosts, as many steps
// as kprep's hostprep and runtime phases have, each probing one key. The
// fake answers a probe by scanning the script for its section markers, so
// the time and memory measured are the engine's (script building, output
// splitting, diffing, results, run log), not a fake's regular expressions.
// `make bench` runs it; compare ns/host, allocs/host and B/host between
// commits to see an engine regression without the lab.

const benchHosts = 1000

// benchStepNames are named like kprep's hostprep and runtime steps.
var benchStepNames = []string{
	"hostprep/hostname", "hostprep/firewall", "hostprep/selinux", "hostprep/swap", "hostprep/modules",
	"hostprep/sysctl", "runtime/repo", "runtime/conflicts", "runtime/packages", "runtime/daemon-json",
	"runtime/proxy", "runtime/containerd", "runtime/registries", "runtime/service",
}

// benchHost answers probes with each step's value and takes "set KEY
// VALUE"; unlike fakeHost it keeps no command history, so memory measured
// is the engine's.
type benchHost struct {
	mu    sync.Mutex
	state map[string]string
}

func (h *benchHost) Run(_ context.Context, cmd transport.Command) (transport.Result, error) {
	if rest, ok := strings.CutPrefix(cmd.Line, "set "); ok {
		key, value, _ := strings.Cut(rest, " ")
		h.mu.Lock()
		h.state[key] = value
		h.mu.Unlock()
		return transport.Result{}, nil
	}
	return transport.Result{Stdout: []byte(h.answer(cmd.Line))}, nil
}

// answer prints, for every "echo 'TOKEN begin NAME'" line of the script,
// the section with the host's value for NAME.
func (h *benchHost) answer(script string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for line := range strings.Lines(script) {
		rest, ok := strings.CutPrefix(line, "echo '@@kprep-")
		if !ok {
			continue
		}
		marker, _ := strings.CutSuffix(strings.TrimSpace(rest), "'")
		tok, name, _ := strings.Cut(marker, " begin ")
		token := "@@kprep-" + tok
		b.WriteString(token + " begin " + name + "\n")
		if name == factsSection {
			b.WriteString(rockyFacts)
		} else {
			b.WriteString(h.state[name] + "\n")
		}
		b.WriteString(token + " end " + name + " 0\n")
	}
	return b.String()
}

func (h *benchHost) WriteFile(ctx context.Context, path string, data []byte, _ transport.WriteOptions) error {
	_, err := h.Run(ctx, transport.Command{Line: "set " + path + " " + string(data)})
	return err
}

func (h *benchHost) Close() error { return nil }

// benchLockingHost also holds the run lock, runs the apply's probes and
// takes the run log, speaking the lock session's protocol as a real
// connection's lock shell does (see lockShell): requests on stdin,
// "probe N" and a script of N bytes, or "log" and the log.
type benchLockingHost struct{ *benchHost }

func (h benchLockingHost) Start(_ context.Context, cmd transport.Command) (Process, error) {
	token := lockTokenRE.FindStringSubmatch(cmd.Line)[1]
	return lockSessionProcess(token, func(script string) (string, bool) {
		return h.answer(script), true
	}, func([]byte) {}), nil
}

type benchDialer struct{ hosts map[string]*benchHost }

func (d benchDialer) Dial(_ context.Context, h *inventory.Host) (Conn, error) {
	return benchLockingHost{d.hosts[h.Name]}, nil
}

// benchWorld makes the cluster, the steps and hosts whose state is
// converged (every step's key at its wanted value) or fresh (none set).
func benchWorld(converged bool) (*inventory.Cluster, []Step, benchDialer) {
	names := make([]string, benchHosts)
	for i := range names {
		names[i] = fmt.Sprintf("h%04d", i+1)
	}
	c := testCluster(names...)
	c.Concurrency = 50
	var steps []Step
	for _, n := range benchStepNames {
		steps = append(steps, &keyStep{name: n, want: "ok"})
	}
	d := benchDialer{hosts: map[string]*benchHost{}}
	for _, n := range names {
		st := map[string]string{}
		if converged {
			for _, s := range benchStepNames {
				st[s] = "ok"
			}
		}
		d.hosts[n] = &benchHost{state: st}
	}
	return c, steps, d
}

// BenchmarkEngine1000Hosts runs plan and apply over 1000 converged hosts,
// and apply over 1000 hosts where every step changes (a probe, then per
// step an apply and a re-probe of the steps left), and reports the cost
// per host.
func BenchmarkEngine1000Hosts(b *testing.B) {
	cases := []struct {
		name      string
		mode      Mode
		converged bool
	}{
		{"plan-converged", ModePlan, true},
		{"apply-converged", ModeApply, true},
		{"apply-fresh", ModeApply, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c, steps, d := benchWorld(tc.converged)
				b.StartTimer()
				rep, err := Run(context.Background(), c, d, Options{Mode: tc.mode, Steps: steps})
				if err != nil {
					b.Fatal(err)
				}
				if rep.Failed() {
					b.Fatalf("the run failed: %+v", rep.Hosts[0])
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			perHost := float64(b.N * benchHosts)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/perHost, "ns/host")
			// The world's own setup is counted too; it is small beside the
			// engine's (one map per host) and the same in every commit.
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/perHost, "allocs/host")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/perHost, "B/host")
		})
	}
}

// The benchmark's world must keep working as the engine changes (a
// benchmark is not run by `go test`, and a broken one measures nothing):
// every mode runs clean over it, and a fresh apply changes every step on
// every host.
func TestEngineBenchWorldRuns(t *testing.T) {
	for _, tc := range []struct {
		mode      Mode
		converged bool
		want      Status
	}{{ModePlan, true, StatusUnchanged}, {ModeApply, true, StatusUnchanged}, {ModeApply, false, StatusChanged}} {
		c, steps, d := benchWorld(tc.converged)
		rep, err := Run(context.Background(), c, d, Options{Mode: tc.mode, Steps: steps})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range rep.Hosts {
			if h.Error != "" || len(h.Steps) != len(benchStepNames) {
				t.Fatalf("%s converged=%v: %s: error %q, %d steps", tc.mode, tc.converged, h.Name, h.Error, len(h.Steps))
			}
			for _, s := range h.Steps {
				if s.Status != tc.want {
					t.Fatalf("%s converged=%v: %s %s is %s, want %s", tc.mode, tc.converged, h.Name, s.Name, s.Status, tc.want)
				}
			}
		}
	}
}
