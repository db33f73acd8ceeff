// Package instance names everything a lab takes on this machine. Several
// labs run side by side, each an instance with an ID from 0 to 9
// (KPREP_LAB_ID): its bridge, subnet, veths, state folder, cgroups, locks,
// mirror and registry addresses all derive from the ID here and nowhere
// else, so that no two instances share a name and `down` of one finds only
// its own leftovers. ID 0 keeps the names the lab had before it had IDs.
package instance

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// ID numbers a lab instance on the machine: 0 to Max.
type ID int

const (
	// Env is the environment variable that picks the instance.
	Env = "KPREP_LAB_ID"
	// Max is the highest ID: ten /24 subnets from 192.168.77.0 to
	// 192.168.86.0, and one digit in the veth names.
	Max = 9
	// CacheDir is the cache folder all instances share: its entries are
	// keyed by recipe and built under locks, so no instance owns one.
	CacheDir = "/var/cache/kprep-lab"
	// MirrorPort and RegistryPort are where the mirror and the registry
	// listen on an instance's bridge address.
	MirrorPort   = 8080
	RegistryPort = 5000
	// BridgePrefix is the prefix length of each instance's subnet.
	BridgePrefix = 24
	// firstHostOctet is lab1's last octet: lab1 is .11.
	firstHostOctet = 11
	// ifNameMax is the longest network interface name Linux takes
	// (IFNAMSIZ 16, less the terminating zero).
	ifNameMax = 15
)

// Machine-wide files that all instances share.
const (
	// SysctlLock serialises the instances' changes to the machine's sysctls.
	SysctlLock = "/run/lock/kprep-lab-sysctls.lock"
	// SysctlRecord holds the machine's original sysctl values while any
	// instance holds them raised (in /run: a reboot resets both).
	SysctlRecord = "/run/kprep-lab/sysctls.json"
)

// Parse reads an ID as KPREP_LAB_ID or --id give it.
func Parse(s string) (ID, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > Max {
		return 0, fmt.Errorf("lab ID %q: want a number from 0 to %d", s, Max)
	}
	return ID(n), nil
}

// FromEnv returns the ID in KPREP_LAB_ID, or 0 when it is unset or empty.
func FromEnv() (ID, error) {
	v := os.Getenv(Env)
	if v == "" {
		return 0, nil
	}
	id, err := Parse(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", Env, err)
	}
	return id, nil
}

// suffix is what ID N>0 appends to ID 0's names ("-N"); "" for ID 0.
func (id ID) suffix() string {
	if id == 0 {
		return ""
	}
	return fmt.Sprintf("-%d", int(id))
}

// String is "lab N", for messages.
func (id ID) String() string { return fmt.Sprintf("lab %d", int(id)) }

// Bridge is the machine's bridge the instance's hosts hang on: kprep-labN.
func (id ID) Bridge() string { return fmt.Sprintf("kprep-lab%d", int(id)) }

// BridgeFor returns the instance whose bridge is called name.
func BridgeFor(name string) (ID, bool) {
	rest, ok := strings.CutPrefix(name, "kprep-lab")
	if !ok || len(rest) != 1 {
		return 0, false
	}
	id, err := Parse(rest)
	return id, err == nil && id.Bridge() == name
}

// Subnet is the instance's network: 192.168.(77+N).0/24.
func (id ID) Subnet() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(77 + int(id)), 0}), BridgePrefix)
}

// BridgeAddr is the machine's address on the bridge (.1): the hosts'
// gateway, and where they reach the mirror and the registry.
func (id ID) BridgeAddr() string { return id.octet(1) }

// HostAddr is the address of the i-th host (0-based): lab1 is .11.
func (id ID) HostAddr(i int) string { return id.octet(firstHostOctet + i) }

func (id ID) octet(n int) string {
	a := id.Subnet().Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a).String()
}

// MirrorURL is the package mirror's URL as the hosts reach it.
func (id ID) MirrorURL() string { return fmt.Sprintf("http://%s:%d", id.BridgeAddr(), MirrorPort) }

// MirrorAddr is where the mirror's HTTP server listens (host:port).
func (id ID) MirrorAddr() string { return fmt.Sprintf("%s:%d", id.BridgeAddr(), MirrorPort) }

// RegistryAddr is the image registry's host:port (plain HTTP).
func (id ID) RegistryAddr() string { return fmt.Sprintf("%s:%d", id.BridgeAddr(), RegistryPort) }

// VethPrefix starts the machine-side name of each of the instance's host
// veths: kprep-h- for ID 0, kprep-hN- for N. No prefix starts another.
func (id ID) VethPrefix() string {
	if id == 0 {
		return "kprep-h-"
	}
	return fmt.Sprintf("kprep-h%d-", int(id))
}

// Veth is the machine-side name of a host's veth; an error when it would
// not fit in a network interface name.
func (id ID) Veth(host string) (string, error) {
	name := id.VethPrefix() + host
	if len(name) > ifNameMax {
		return "", fmt.Errorf("veth name %q is longer than Linux's %d bytes", name, ifNameMax)
	}
	return name, nil
}

// StateDir is the instance's default state folder: /var/lib/kprep-lab,
// /var/lib/kprep-lab-N.
func (id ID) StateDir() string { return "/var/lib/kprep-lab" + id.suffix() }

// CgroupRoot is the folder under every cgroup hierarchy that holds the
// instance's hosts: kprep-lab, kprep-lab-N.
func (id ID) CgroupRoot() string { return "kprep-lab" + id.suffix() }

// MachineLock serialises the instance's lab commands (up, down).
func (id ID) MachineLock() string { return "/run/lock/kprep-lab" + id.suffix() + ".lock" }

// TestsLock is held by a test for as long as its lab of this instance is up.
func (id ID) TestsLock() string { return "/run/lock/kprep-lab-tests" + id.suffix() + ".lock" }
