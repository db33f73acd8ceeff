package hostprep

import (
	"slices"

	"github.com/kprep/kprep/provision/inventory"
)

// firewallRules is what a host's firewall must let in.
type firewallRules struct {
	Ports     []string // "6443/tcp", "30000-32767/tcp"
	Protocols []string // IP protocols by name: "ipip"
}

// rulesFor returns the ports a host's roles and the cluster's CNI need
// (Kubernetes "Ports and Protocols"; flannel's and Calico's docs).
func rulesFor(h *inventory.Host, cni string) firewallRules {
	var r firewallRules
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
