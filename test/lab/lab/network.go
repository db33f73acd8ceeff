package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/kprep/kprep/test/lab/instance"
)

// The lab's network: one bridge on the machine per instance, one veth per
// host. The names (package instance) are fixed per instance so that Down
// finds leftovers of a crashed run by name, and only its own.

// hostIface is the host's side of its veth, named as on a real server.
const hostIface = "eth0"

// hostName is the name of the i-th host (0-based): lab1, lab2...
func hostName(i int) string { return fmt.Sprintf("lab%d", i+1) }

// ensureBridge creates the instance's bridge with the machine's address, or
// checks the one that is there. It refuses a subnet that another of the
// machine's interfaces already has: the hosts would not reach the mirror.
func ensureBridge(ctx context.Context, id instance.ID) error {
	bridge := id.Bridge()
	if other := subnetUser(id.Subnet(), bridge); other != "" {
		return fmt.Errorf("%s's subnet %s is already on the machine's interface %s; pick another %s", id, id.Subnet(), other, instance.Env)
	}
	if _, err := net.InterfaceByName(bridge); err != nil {
		if _, err := runCmd(ctx, nil, "ip", "link", "add", bridge, "type", "bridge"); err != nil {
			return fmt.Errorf("create bridge %s: %w", bridge, err)
		}
	}
	out, err := runCmd(ctx, nil, "ip", "-o", "-4", "addr", "show", "dev", bridge)
	if err != nil {
		return fmt.Errorf("read bridge %s: %w", bridge, err)
	}
	cidr := fmt.Sprintf("%s/%d", id.BridgeAddr(), instance.BridgePrefix)
	if !strings.Contains(string(out), " "+cidr+" ") {
		if _, err := runCmd(ctx, nil, "ip", "addr", "add", cidr, "dev", bridge); err != nil {
			return fmt.Errorf("give bridge %s the address %s: %w", bridge, cidr, err)
		}
	}
	if _, err := runCmd(ctx, nil, "ip", "link", "set", bridge, "up"); err != nil {
		return fmt.Errorf("bring bridge %s up: %w", bridge, err)
	}
	return nil
}

// subnetUser names an interface other than bridge with an address in
// subnet, or "".
func subnetUser(subnet netip.Prefix, bridge string) string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, i := range ifaces {
		if i.Name == bridge {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && subnet.Overlaps(p) {
				return i.Name
			}
		}
	}
	return ""
}

// attachHost gives the host whose PID 1 is leader its network: a veth with
// the host end, eth0, inside the host's network namespace. systemd-networkd
// in the host configures the address when eth0 appears.
func attachHost(ctx context.Context, id instance.ID, host string, leader int) error {
	veth, err := id.Veth(host)
	if err != nil {
		return fmt.Errorf("host %s: %w", host, err)
	}
	if _, err := runCmd(ctx, nil, "ip", "link", "add", veth, "type", "veth",
		"peer", "name", hostIface, "netns", fmt.Sprint(leader)); err != nil {
		return fmt.Errorf("host %s: create veth %s: %w", host, veth, err)
	}
	if _, err := runCmd(ctx, nil, "ip", "link", "set", veth, "master", id.Bridge(), "up"); err != nil {
		return fmt.Errorf("host %s: put veth %s on bridge %s: %w", host, veth, id.Bridge(), err)
	}
	return nil
}

// labLinks lists the machine's links the instance made: its bridge and its
// host veths (other instances' names never match, see package instance).
func labLinks(id instance.ID) []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var names []string
	for _, i := range ifaces {
		if i.Name == id.Bridge() || strings.HasPrefix(i.Name, id.VethPrefix()) {
			names = append(names, i.Name)
		}
	}
	return names
}

// Links lists the machine's network links of the lab instance id: its
// bridge and host veths. Empty when the instance is down.
func Links(id instance.ID) []string { return labLinks(id) }

// bridgesUp lists the instances whose bridge is on the machine: the labs
// that are up, or left over, whichever code started them.
func bridgesUp() []instance.ID {
	ifaces, _ := net.Interfaces()
	var ids []instance.ID
	for _, i := range ifaces {
		if id, ok := instance.BridgeFor(i.Name); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// linkExists tells whether the machine has a link of that name.
func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// removeLinks deletes the instance's links; the veths go first (they
// usually vanish with their host's namespace already).
func removeLinks(ctx context.Context, id instance.ID) error {
	var errs []string
	links := labLinks(id)
	for pass := 0; pass < 2; pass++ {
		for _, name := range links {
			if (name == id.Bridge()) != (pass == 1) {
				continue
			}
			if !linkExists(name) {
				continue
			}
			// A veth can vanish between the look and the del, as its
			// host's namespace goes: gone is what down wants.
			if _, err := runCmd(ctx, nil, "ip", "link", "del", name); err != nil && linkExists(name) {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove links: %s", strings.Join(errs, "; "))
	}
	return nil
}
