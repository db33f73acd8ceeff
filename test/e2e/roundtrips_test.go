package e2e

// Round trips per host: the engine's promise is one SSH connection and one
// command round trip for a plan on a host that needs nothing. Counted here
// on real lab hosts through the transport's own statistics; the benchmark
// adds the time per plan.

import (
	"context"
	"sync"
	"testing"

	"github.com/kprep/kprep/hostprep"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/test/lab/lab"
)

// countingDialer dials like kprep does and keeps every connection, so the
// test can read what each one did.
type countingDialer struct {
	provision.SSHDialer
	mu    sync.Mutex
	conns map[string]*transport.Conn
}

func (d *countingDialer) Dial(ctx context.Context, h *inventory.Host) (provision.Conn, error) {
	c, err := d.SSHDialer.Dial(ctx, h)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conns == nil {
		d.conns = map[string]*transport.Conn{}
	}
	d.conns[h.Name] = c.(*transport.Conn)
	return c, nil
}

// labEnv resolves the variable the lab's inventory names for lab3's sudo
// password, as `export KPREP_LAB_SUDO_PASSWORD=...` would for kprep.
func labEnv(l *lab.Lab) func(string) (string, bool) {
	pw, _ := l.SudoPassword()
	return func(name string) (string, bool) {
		if name == l.SudoPasswordEnv() {
			return pw, true
		}
		return "", false
	}
}

// loadLabInventory reads the lab's inventory as kprep does.
func loadLabInventory(tb testing.TB, l *lab.Lab) *inventory.Cluster {
	tb.Helper()
	return loadInventory(tb, l, l.InventoryPath())
}

// planConverged runs one in-process plan of the hostprep steps and returns
// the report and each host's transport statistics.
func planConverged(ctx context.Context, c *inventory.Cluster, l *lab.Lab) (*provision.Report, map[string]transport.Stats) {
	d := &countingDialer{SSHDialer: provision.SSHDialer{LookupEnv: labEnv(l)}}
	rep, err := provision.Run(ctx, c, d, provision.Options{Mode: provision.ModePlan, Steps: hostprep.Steps()})
	if err != nil {
		panic(err) // hostprep's step list is checked by a unit test
	}
	stats := map[string]transport.Stats{}
	for name, conn := range d.conns {
		stats[name] = conn.Stats()
	}
	return rep, stats
}

func TestPlanOnConvergedHostsIsOneConnectionAndOneRoundTrip(t *testing.T) {
	l := bootLab(t, "centos7", "rocky9", "openeuler22")
	runKprep(t, l, 0, "apply", "-i", l.InventoryPath(), "--phase", "hostprep").requireNoFailures(t)
	c := loadLabInventory(t, l)
	rep, stats := planConverged(context.Background(), c, l)
	if rep.Failed() || rep.Pending() {
		t.Fatalf("plan on converged hosts: failed %v, pending %v: %+v", rep.Failed(), rep.Pending(), rep.Hosts)
	}
	for _, h := range l.Hosts() {
		s := stats[h.Name]
		t.Logf("%s (ssh user %s): %d dials, %d command round trips, %d files", h.Name, h.SSHUser, s.Dials, s.Commands, s.Files)
		if s.Dials != 1 || s.Commands != 1 || s.Files != 0 {
			t.Errorf("%s: %d dials and %d round trips for a plan with nothing to do, want 1 and 1", h.Name, s.Dials, s.Commands)
		}
	}

	// Behind a bastion a host costs two connections: the jump host's and,
	// through it, the host's own; still one command round trip. lab1 is
	// the jump host for lab2 and lab3.
	lab1 := l.Hosts()[0]
	for i := range c.Hosts[1:] {
		h := &c.Hosts[1+i]
		h.Connection.Bastion = &inventory.Bastion{Address: lab1.Address, Port: 22, User: "root", PrivateKeyFile: c.Hosts[0].Connection.PrivateKeyFile}
	}
	rep, stats = planConverged(context.Background(), c, l)
	if rep.Failed() || rep.Pending() {
		t.Fatalf("plan through a bastion: failed %v, pending %v: %+v", rep.Failed(), rep.Pending(), rep.Hosts)
	}
	for _, h := range l.Hosts()[1:] {
		if s := stats[h.Name]; s.Dials != 2 || s.Commands != 1 {
			t.Errorf("%s behind lab1: %d dials and %d round trips, want 2 (bastion + host) and 1", h.Name, s.Dials, s.Commands)
		}
	}
}

// BenchmarkPlanConvergedHosts times a whole plan (connect, probe, diff) of
// three converged hosts and reports the round trips per host.
func BenchmarkPlanConvergedHosts(b *testing.B) {
	lb := benchLab(b)
	c := loadLabInventory(b, lb)
	var dials, commands int
	for b.Loop() {
		_, stats := planConverged(context.Background(), c, lb)
		for _, s := range stats {
			dials += s.Dials
			commands += s.Commands
		}
	}
	perHost := float64(b.N * len(lb.Hosts()))
	b.ReportMetric(float64(dials)/perHost, "dials/host")
	b.ReportMetric(float64(commands)/perHost, "roundtrips/host")
}

// benchLab opens the running lab (make lab-up, then kprep apply --phase
// hostprep on it); benchmarks do not boot labs of their own.
func benchLab(b *testing.B) *lab.Lab {
	l, err := lab.Open(lab.StateDirFromEnv())
	if err != nil {
		b.Skipf("needs a running, prepared lab (sudo make lab-up, kprep apply --phase hostprep): %v", err)
	}
	return l
}
