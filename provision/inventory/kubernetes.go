package inventory

import (
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/go-version"
)

// This file answers the questions about the kube phase that several
// packages ask of a loaded inventory, so that each answers them the same way.

// ControlPlaneTaintKey is the taint kubeadm puts on control planes.
const ControlPlaneTaintKey = "node-role.kubernetes.io/control-plane"

// Minor returns the minor number of kubernetes.version: 34 for 1.34.4. ok is
// false when the version does not parse (Validate reports that).
func (k *Kubernetes) Minor() (minor int, ok bool) {
	v, err := version.NewVersion(k.Version)
	if err != nil || len(v.Segments()) < 2 {
		return 0, false
	}
	return v.Segments()[1], true
}

// LocalMode reports whether kprep's local mode serves the API endpoint:
// controlPlaneEndpoint is empty.
func (k *Kubernetes) LocalMode() bool { return k.ControlPlaneEndpoint == "" }

// PodRanges returns podSubnet's ranges: one, or two for dual stack
// ("10.244.0.0/16,fd00:10:244::/56"), trimmed.
func (k *Kubernetes) PodRanges() []string { return splitRanges(k.PodSubnet) }

// ServiceRanges returns serviceSubnet's ranges, as PodRanges.
func (k *Kubernetes) ServiceRanges() []string { return splitRanges(k.ServiceSubnet) }

func splitRanges(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// APIEndpoint is kubeadm's controlPlaneEndpoint: the load balancer as
// written (host or host:port) in external mode, name:port in local mode.
func (k *Kubernetes) APIEndpoint() string {
	if !k.LocalMode() {
		return k.ControlPlaneEndpoint
	}
	return net.JoinHostPort(k.LocalEndpoint.Name, strconv.Itoa(k.LocalEndpoint.Port))
}

// KeepsControlPlaneTaint reports whether the host's Node carries the
// control-plane NoSchedule taint: a control plane keeps it unless it also
// has the worker role, which asks for ordinary pods to run there.
func (h *Host) KeepsControlPlaneTaint() bool {
	return h.HasRole(RoleControlPlane) && !h.HasRole(RoleWorker)
}
