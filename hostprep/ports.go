package hostprep

import (
	"slices"

	"github.com/kprep/kprep/provision/inventory"
)

// firewallRules is what a host's firewall must let in.
type firewallRules struct {
	Ports     []string // "6443/tcp", "30000-32767/tcp"
	Protocols []string // IP protocols by name: "ipip"
	// Sources are the pod network's ranges, which firewalld's trusted zone
	// must hold: pods on one node reach pods on another through the
	// FORWARD path, which firewalld rejects for any zone but trusted
	// (CentOS 7's firewalld 0.6 ends FORWARD with a REJECT; 1.x's
	// nftables table rejects in its own forward chain, whatever the CNI's
	// iptables rules accept). Binding the ranges as sources, not the CNI's
	// interfaces, holds for every CNI.
	Sources []string
}

// rulesFor returns the ports a host's roles and the cluster's CNI need
// (Kubernetes "Ports and Protocols"; flannel's and Calico's docs) and the
// pod network's ranges to trust (Kubernetes.PodRanges).
func rulesFor(h *inventory.Host, cni string, podRanges []string) firewallRules {
	r := firewallRules{Sources: podRanges}
	if h.HasRole(inventory.RoleControlPlane) {
		r.Ports = append(r.Ports, "6443/tcp", "2379-2380/tcp", "10250/tcp", "10257/tcp", "10259/tcp")
	}
	if h.HasRole(inventory.RoleWorker) {
		r.Ports = append(r.Ports, "10250/tcp", "10256/tcp", "30000-32767/tcp")
	}
	switch cni {
	case "flannel":
		r.Ports = append(r.Ports, "8472/udp")
	case "calico":
		r.Ports = append(r.Ports, "179/tcp", "4789/udp", "5473/tcp")
		r.Protocols = append(r.Protocols, "ipip")
	}
	slices.Sort(r.Ports)
	r.Ports = slices.Compact(r.Ports)
	return r
}
