package lab

// Two lab instances side by side on the machine: each host reaches its own
// mirror and is itself at its own address, and down of one leaves the
// other running. Needs root and KPREP_LAB=1 (the mirror is built, or taken
// from the shared cache).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"

	"github.com/kprep/kprep/test/lab/instance"
)

// TestMain lets the test binary serve the lab's mirror: Up starts the
// mirror server by running this same binary again.
func TestMain(m *testing.M) {
	HelperMain()
	os.Exit(m.Run())
}

// needLabHosts skips a test unless KPREP_LAB=1 and root.
func needLabHosts(t *testing.T) {
	t.Helper()
	if os.Getenv("KPREP_LAB") != "1" {
		t.Skip("set KPREP_LAB=1 to boot lab hosts (root)")
	}
	if os.Geteuid() != 0 {
		t.Skip("the lab needs root")
	}
}

// freeInstances takes n lab instances other than 0 for the test: the first,
// from KPREP_LAB_ID on (1 when it is 0) and wrapping round, whose tests'
// lock is free and that have nothing on the machine. It holds their tests'
// locks until the test and its cleanups end.
func freeInstances(t *testing.T, n int) []instance.ID {
	t.Helper()
	from, err := instance.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	var ids []instance.ID
	for k := 0; k < instance.Max && len(ids) < n; k++ {
		id := instance.ID((int(max(from, 1))-1+k)%instance.Max + 1)
		unlock, ok, err := tryFlockFile(id.TestsLock())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		if left := InstanceLeftovers(id, id.StateDir()); len(left) > 0 {
			t.Logf("%s is busy: %s", id, strings.Join(left, "; "))
			unlock()
			continue
		}
		t.Cleanup(unlock) // registered first, so it runs after the downs
		ids = append(ids, id)
	}
	if len(ids) < n {
		t.Fatalf("want %d free lab instances (1-%d) for this test, found %v", n, instance.Max, ids)
	}
	return ids
}

func TestLabInstancesSideBySide(t *testing.T) {
	needLabHosts(t)
	ids := freeInstances(t, 2)
	a, b := ids[0], ids[1]
	t.Logf("instances %d and %d", a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	inotify := "/proc/sys/fs/inotify/max_user_instances"
	inotifyBefore := readTrimmed(t, inotify)

	// Both come up at once: the shared cache's locks and the per-instance
	// names must let them.
	plans := map[instance.ID]Options{
		a: {Instance: &a, Hosts: 2, OS: []string{"rocky9", "ubuntu22"}},
		b: {Instance: &b, Hosts: 1, OS: []string{"centos7"}},
	}
	labs := map[instance.ID]*Lab{}
	logs := map[instance.ID]*bytes.Buffer{a: {}, b: {}}
	for _, id := range ids {
		t.Cleanup(func() {
			if err := DownInstance(context.Background(), id, "", nil); err != nil {
				t.Errorf("down %s: %v", id, err)
			}
		})
	}
	start := time.Now()
	var mu sync.Mutex
	var eg errgroup.Group
	for _, id := range ids {
		eg.Go(func() error {
			o := plans[id]
			o.Log = logs[id]
			l, err := Up(ctx, o)
			if err != nil {
				return fmt.Errorf("%s: %w\n%s", id, err, logs[id])
			}
			mu.Lock()
			labs[id] = l
			mu.Unlock()
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Logf("both up in %s", time.Since(start).Round(100*time.Millisecond))
	la, lb := labs[a], labs[b]

	t.Run("each host is on its own instance's network", func(t *testing.T) {
		for _, l := range []*Lab{la, lb} {
			for _, h := range l.Hosts() {
				if !l.Instance().Subnet().Contains(mustAddr(t, h.Address)) {
					t.Errorf("%s %s: address %s is outside %s", l.Instance(), h.Name, h.Address, l.Instance().Subnet())
				}
				out := hostShell(t, ctx, l, h.Name, "ip -4 -o addr show dev eth0; ip route show default")
				if !strings.Contains(out, " "+h.Address+"/24 ") || !strings.Contains(out, "default via "+l.BridgeAddr()+" ") {
					t.Errorf("%s %s: eth0 and route:\n%s", l.Instance(), h.Name, out)
				}
				if rc := hostShell(t, ctx, l, h.Name, "cat /etc/resolv.conf"); !slices.Contains(strings.Split(rc, "\n"), "nameserver "+l.BridgeAddr()) {
					t.Errorf("%s %s: resolv.conf names another bridge:\n%s", l.Instance(), h.Name, rc)
				}
			}
		}
	})

	t.Run("each host reaches its own mirror", func(t *testing.T) {
		for _, l := range []*Lab{la, lb} {
			other := la
			if l == la {
				other = lb
			}
			for _, h := range l.Hosts() {
				code := hostShell(t, ctx, l, h.Name, "curl -s -o /dev/null -w '%{http_code}' "+l.MirrorURL()+"/docker-ce/")
				if code != "200" {
					t.Errorf("%s %s: GET %s/docker-ce/ answered %q", l.Instance(), h.Name, l.MirrorURL(), code)
				}
				// The request is in this lab's mirror log, from the host's
				// own address, and not in the other lab's.
				line := " " + h.Address + ":"
				if !strings.Contains(readFile(t, filepath.Join(l.StateDir(), "mirror.log")), line) {
					t.Errorf("%s's mirror log has no request from %s %s", l.Instance(), h.Name, h.Address)
				}
				if strings.Contains(readFile(t, filepath.Join(other.StateDir(), "mirror.log")), line) {
					t.Errorf("%s's mirror log has a request from %s's %s", other.Instance(), l.Instance(), h.Name)
				}
			}
		}
	})

	t.Run("each address is its own host", func(t *testing.T) {
		// Both labs have a lab1: from the machine, each address answers
		// with its own host's SSH key; from inside, the other lab's lab1
		// address is never the host itself.
		for _, l := range []*Lab{la, lb} {
			for _, h := range l.Hosts() {
				if got, want := hostKeyAt(t, h.Address), hostKeyFile(t, h); got != want {
					t.Errorf("%s %s: %s answers with key %s, the host's own is %s", l.Instance(), h.Name, h.Address, got, want)
				}
			}
		}
		for _, pair := range [][2]*Lab{{la, lb}, {lb, la}} {
			self, other := pair[0].Hosts()[0], pair[1].Hosts()[0]
			hostShell(t, ctx, pair[0], self.Name, "command -v ssh-keyscan")
			seen := hostShell(t, ctx, pair[0], self.Name, "ssh-keyscan -T 3 -t ed25519 "+other.Address+" 2>/dev/null | cut -d' ' -f2-3; true")
			if seen != "" && seen == hostKeyFile(t, self) {
				t.Errorf("%s %s reaches itself at %s's %s address %s", pair[0].Instance(), self.Name, pair[1].Instance(), other.Name, other.Address)
			}
			t.Logf("%s %s -> %s %s (%s): %q", pair[0].Instance(), self.Name, pair[1].Instance(), other.Name, other.Address, seen)
		}
	})

	// What b has on the machine, to compare after a's down.
	bLinks := Links(b)
	bMounts := mountsUnder(lb.StateDir())
	bHosts := lb.Hosts()
	if len(bLinks) != 1+len(bHosts) || len(bMounts) == 0 {
		t.Fatalf("%s before %s's down: links %v, %d mounts", b, a, bLinks, len(bMounts))
	}

	t.Run("down of one leaves the other untouched", func(t *testing.T) {
		aHosts := la.Hosts()
		var log bytes.Buffer
		if err := DownInstance(ctx, a, "", &log); err != nil {
			t.Fatalf("down %s: %v\n%s", a, err, log.String())
		}
		if left := InstanceLeftovers(a, a.StateDir()); len(left) > 0 {
			t.Errorf("%s left: %s", a, strings.Join(left, "; "))
		}
		for _, h := range aHosts {
			if (Proc{PID: h.LeaderPID}).running() {
				t.Errorf("%s %s: its PID 1 %d still runs", a, h.Name, h.LeaderPID)
			}
		}
		if got := Links(b); !slices.Equal(got, bLinks) {
			t.Errorf("%s's links were %v, now %v", b, bLinks, got)
		}
		if got := mountsUnder(lb.StateDir()); !slices.Equal(got, bMounts) {
			t.Errorf("%s's mounts changed: %d before, %d now", b, len(bMounts), len(got))
		}
		if left := InstanceLeftovers(b, b.StateDir()); len(left) == 0 {
			t.Errorf("%s has nothing left on the machine", b)
		}
		for _, p := range []*Proc{lb.st.Mirror, lb.st.Registry} {
			if p == nil || !p.Alive() {
				t.Errorf("%s's mirror or registry (%v) is gone", b, p)
			}
		}
		for _, h := range bHosts {
			if !(Proc{PID: h.LeaderPID}).running() {
				t.Errorf("%s %s: its PID 1 %d is gone", b, h.Name, h.LeaderPID)
			}
			if got := hostShell(t, ctx, lb, h.Name, "systemctl is-system-running"); got != "running" {
				t.Errorf("%s %s: systemd says %q", b, h.Name, got)
			}
			if code := hostShell(t, ctx, lb, h.Name, "curl -s -o /dev/null -w '%{http_code}' "+lb.MirrorURL()+"/docker-ce/"); code != "200" {
				t.Errorf("%s %s: its mirror answered %q after %s's down", b, h.Name, code, a)
			}
			if err := sshBanner(h.Address); err != nil {
				t.Errorf("%s %s: sshd: %v", b, h.Name, err)
			}
		}
		if n := atoi(t, readTrimmed(t, inotify)); n < 8192 {
			t.Errorf("%s's down lowered %s to %d while %s is up", a, inotify, n, b)
		}
	})

	t.Run("down of the other leaves nothing of either", func(t *testing.T) {
		var log bytes.Buffer
		if err := DownInstance(ctx, b, "", &log); err != nil {
			t.Fatalf("down %s: %v\n%s", b, err, log.String())
		}
		for _, id := range ids {
			if left := InstanceLeftovers(id, id.StateDir()); len(left) > 0 {
				t.Errorf("%s left: %s", id, strings.Join(left, "; "))
			}
		}
		for _, h := range bHosts {
			if (Proc{PID: h.LeaderPID}).running() {
				t.Errorf("%s %s: its PID 1 %d still runs", b, h.Name, h.LeaderPID)
			}
		}
		// The inotify limits are the machine's again, unless another lab
		// (not this test's) is up and holds them.
		if got := readTrimmed(t, inotify); got != inotifyBefore && len(bridgesUp()) == 0 {
			t.Errorf("%s is %s after both downs, was %s", inotify, got, inotifyBefore)
		}
	})
}

// running reports whether any process has the PID (a zombie has exited).
func (p Proc) running() bool {
	state, _, ok := procStat(p.PID)
	return ok && state != 'Z' && state != 'X'
}

// hostShell runs a shell line in a lab host and returns its trimmed output.
func hostShell(t *testing.T, ctx context.Context, l *Lab, host, line string) string {
	t.Helper()
	out, stderr, err := l.Exec(ctx, host, "sh", "-c", line)
	if err != nil {
		t.Fatalf("%s %s: %s: %v\n%s%s", l.Instance(), host, line, err, out, stderr)
	}
	return strings.TrimSpace(string(out))
}

// hostKeyAt returns the ed25519 host key that the SSH server at addr
// shows, as "type base64".
func hostKeyAt(t *testing.T, addr string) string {
	t.Helper()
	var key ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: "probe",
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errors.New("key seen")
		},
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           10 * time.Second,
	}
	_, err := ssh.Dial("tcp", net.JoinHostPort(addr, "22"), cfg)
	if key == nil {
		t.Fatalf("no host key from %s: %v", addr, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// hostKeyFile is the host's own ed25519 host key, read from its root file
// system on the machine, as "type base64".
func hostKeyFile(t *testing.T, h Host) string {
	t.Helper()
	f := strings.Fields(readFile(t, filepath.Join(h.Root, "etc/ssh/ssh_host_ed25519_key.pub")))
	if len(f) < 2 {
		t.Fatalf("%s: no ed25519 host key", h.Name)
	}
	return f[0] + " " + f[1]
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(readFile(t, path))
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
