package instance

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// names is every machine-wide name of an instance, for comparison.
type names struct {
	Bridge, Subnet, BridgeAddr, Host1, Host3, VethLab1, Mirror, Registry string
	State, Cgroup, MachineLock, TestsLock                                string
}

func namesOf(t *testing.T, id ID) names {
	t.Helper()
	veth, err := id.Veth("lab1")
	if err != nil {
		t.Fatal(err)
	}
	return names{
		Bridge: id.Bridge(), Subnet: id.Subnet().String(), BridgeAddr: id.BridgeAddr(),
		Host1: id.HostAddr(0), Host3: id.HostAddr(2), VethLab1: veth,
		Mirror: id.MirrorURL(), Registry: id.RegistryAddr(),
		State: id.StateDir(), Cgroup: id.CgroupRoot(), MachineLock: id.MachineLock(), TestsLock: id.TestsLock(),
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct {
		id   ID
		want names
	}{
		// ID 0 is the lab as it was before instances: nothing changes for
		// users and CI.
		{0, names{
			Bridge: "kprep-lab0", Subnet: "192.168.77.0/24", BridgeAddr: "192.168.77.1",
			Host1: "192.168.77.11", Host3: "192.168.77.13", VethLab1: "kprep-h-lab1",
			Mirror: "http://192.168.77.1:8080", Registry: "192.168.77.1:5000",
			State: "/var/lib/kprep-lab", Cgroup: "kprep-lab",
			MachineLock: "/run/lock/kprep-lab.lock", TestsLock: "/run/lock/kprep-lab-tests.lock",
		}},
		{1, names{
			Bridge: "kprep-lab1", Subnet: "192.168.78.0/24", BridgeAddr: "192.168.78.1",
			Host1: "192.168.78.11", Host3: "192.168.78.13", VethLab1: "kprep-h1-lab1",
			Mirror: "http://192.168.78.1:8080", Registry: "192.168.78.1:5000",
			State: "/var/lib/kprep-lab-1", Cgroup: "kprep-lab-1",
			MachineLock: "/run/lock/kprep-lab-1.lock", TestsLock: "/run/lock/kprep-lab-tests-1.lock",
		}},
		{9, names{
			Bridge: "kprep-lab9", Subnet: "192.168.86.0/24", BridgeAddr: "192.168.86.1",
			Host1: "192.168.86.11", Host3: "192.168.86.13", VethLab1: "kprep-h9-lab1",
			Mirror: "http://192.168.86.1:8080", Registry: "192.168.86.1:5000",
			State: "/var/lib/kprep-lab-9", Cgroup: "kprep-lab-9",
			MachineLock: "/run/lock/kprep-lab-9.lock", TestsLock: "/run/lock/kprep-lab-tests-9.lock",
		}},
	} {
		if d := cmp.Diff(c.want, namesOf(t, c.id)); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.id, d)
		}
	}
}

func TestVethNamesFitAndStayApart(t *testing.T) {
	for id := ID(0); id <= Max; id++ {
		for _, host := range []string{"lab1", "lab200"} {
			name, err := id.Veth(host)
			if err != nil || len(name) > 15 {
				t.Errorf("%s %s: veth %q (%d bytes), %v", id, host, name, len(name), err)
			}
		}
		// Down finds an instance's veths by prefix: no other instance's
		// veth, and no bridge, may carry it.
		for other := ID(0); other <= Max; other++ {
			v, _ := other.Veth("lab1")
			if other != id && strings.HasPrefix(v, id.VethPrefix()) {
				t.Errorf("%s's veth %s starts with %s's prefix %s", other, v, id, id.VethPrefix())
			}
			if strings.HasPrefix(other.Bridge(), id.VethPrefix()) {
				t.Errorf("bridge %s starts with %s's veth prefix", other.Bridge(), id)
			}
		}
	}
	if _, err := ID(9).Veth("lab2000"); err == nil {
		t.Error("a 16-byte veth name was accepted")
	}
}

func TestSubnetsDoNotOverlap(t *testing.T) {
	for a := ID(0); a <= Max; a++ {
		s := a.Subnet()
		for _, addr := range []string{a.BridgeAddr(), a.HostAddr(0), a.HostAddr(199)} {
			if !strings.HasPrefix(addr, strings.TrimSuffix(s.Addr().String(), "0")) {
				t.Errorf("%s: address %s is outside %s", a, addr, s)
			}
		}
		for b := a + 1; b <= Max; b++ {
			if s.Overlaps(b.Subnet()) {
				t.Errorf("%s's %s overlaps %s's %s", a, s, b, b.Subnet())
			}
		}
	}
}

func TestParseAndBridgeFor(t *testing.T) {
	for _, bad := range []string{"", "-1", "10", "x", "1.5"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	for id := ID(0); id <= Max; id++ {
		if got, err := Parse(id.String()[len("lab "):]); err != nil || got != id {
			t.Errorf("Parse of %s: %v, %v", id, got, err)
		}
		if got, ok := BridgeFor(id.Bridge()); !ok || got != id {
			t.Errorf("BridgeFor(%s) = %v, %v", id.Bridge(), got, ok)
		}
	}
	for _, name := range []string{"kprep-lab", "kprep-lab10", "kprep-h-lab1", "kprep-labx", "eth0"} {
		if id, ok := BridgeFor(name); ok {
			t.Errorf("BridgeFor(%q) = %v", name, id)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(Env, "")
	if id, err := FromEnv(); id != 0 || err != nil {
		t.Errorf("unset: %v, %v", id, err)
	}
	t.Setenv(Env, "7")
	if id, err := FromEnv(); id != 7 || err != nil {
		t.Errorf("7: %v, %v", id, err)
	}
	t.Setenv(Env, "12")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), Env) {
		t.Errorf("12: %v", err)
	}
}
