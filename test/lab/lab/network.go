package lab

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// The lab's network: one bridge on the machine, one veth per host. The
// names are fixed so that Down finds leftovers of a crashed run by name.
const (
	// BridgeName is the machine's bridge all hosts hang on.
	BridgeName = "kprep-lab0"
	// BridgeAddr is the machine's address on it: hosts reach the mirror and
	// the registry there.
	BridgeAddr = "192.168.77.1"
	// bridgePrefix is the bridge network's prefix length.
	bridgePrefix = 24
	// firstHostOctet is lab1's last octet: lab1 is 192.168.77.11.
	firstHostOctet = 11
	// vethPrefix starts the machine-side name of each host's veth.
	vethPrefix = "kprep-h-"
	// hostIface is the host's side of its veth, named as on a real server.
	hostIface = "eth0"
	// MirrorPort and RegistryPort are where the mirror and registry listen.
	MirrorPort   = 8080
	RegistryPort = 5000
)

// hostName is the name of the i-th host (0-based): lab1, lab2...
func hostName(i int) string { return fmt.Sprintf("lab%d", i+1) }

// hostAddress is the i-th host's address.
func hostAddress(i int) string { return fmt.Sprintf("192.168.77.%d", firstHostOctet+i) }

// vethName is the machine-side name of a host's veth (at most 15 bytes).
func vethName(host string) string { return vethPrefix + host }

// ensureBridge creates the bridge with the machine's address, or checks the
// one that is there.
func ensureBridge(ctx context.Context) error {
	if _, err := net.InterfaceByName(BridgeName); err != nil {
		if _, err := runCmd(ctx, nil, "ip", "link", "add", BridgeName, "type", "bridge"); err != nil {
			return fmt.Errorf("create bridge %s: %w", BridgeName, err)
		}
	}
	out, err := runCmd(ctx, nil, "ip", "-o", "-4", "addr", "show", "dev", BridgeName)
	if err != nil {
		return fmt.Errorf("read bridge %s: %w", BridgeName, err)
	}
	cidr := fmt.Sprintf("%s/%d", BridgeAddr, bridgePrefix)
	if !strings.Contains(string(out), " "+cidr+" ") {
		if _, err := runCmd(ctx, nil, "ip", "addr", "add", cidr, "dev", BridgeName); err != nil {
			return fmt.Errorf("give bridge %s the address %s: %w", BridgeName, cidr, err)
		}
	}
	if _, err := runCmd(ctx, nil, "ip", "link", "set", BridgeName, "up"); err != nil {
		return fmt.Errorf("bring bridge %s up: %w", BridgeName, err)
	}
	return nil
}

// attachHost gives the host whose PID 1 is leader its network: a veth with
// the host end, eth0, inside the host's network namespace. systemd-networkd
// in the host configures the address when eth0 appears.
func attachHost(ctx context.Context, host string, leader int) error {
	veth := vethName(host)
	if _, err := runCmd(ctx, nil, "ip", "link", "add", veth, "type", "veth",
		"peer", "name", hostIface, "netns", fmt.Sprint(leader)); err != nil {
		return fmt.Errorf("host %s: create veth %s: %w", host, veth, err)
	}
	if _, err := runCmd(ctx, nil, "ip", "link", "set", veth, "master", BridgeName, "up"); err != nil {
		return fmt.Errorf("host %s: put veth %s on bridge %s: %w", host, veth, BridgeName, err)
	}
	return nil
}

// labLinks lists the machine's links the lab made: the bridge and host veths.
func labLinks() []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var names []string
	for _, i := range ifaces {
		if i.Name == BridgeName || strings.HasPrefix(i.Name, vethPrefix) {
			names = append(names, i.Name)
		}
	}
	return names
}

// removeLinks deletes the lab's links; the veths go first (they usually
// vanish with their host's namespace already).
func removeLinks(ctx context.Context) error {
	var errs []string
	links := labLinks()
	for pass := 0; pass < 2; pass++ {
		for _, name := range links {
			if (name == BridgeName) != (pass == 1) {
				continue
			}
			if _, err := net.InterfaceByName(name); err != nil {
				continue
			}
			if _, err := runCmd(ctx, nil, "ip", "link", "del", name); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove links: %s", strings.Join(errs, "; "))
	}
	return nil
}
