// Package hostprep prepares a host for Kubernetes: hostname, firewall,
// SELinux, swap, kernel modules and sysctls, each a step of its own.
package hostprep

import "github.com/kprep/kprep/provision"

// Steps returns the host preparation steps in the order they run: the
// hostname before anything registers the node, the firewall before the
// container runtime starts, modules before the sysctls they create.
func Steps() []provision.Step {
	return []provision.Step{
		provision.Typed(HostnameStep{}),
		provision.Typed(FirewallStep{}),
		provision.Typed(SELinuxStep{}),
		provision.Typed(SwapStep{}),
		provision.Typed(ModulesStep{}),
		provision.Typed(SysctlStep{}),
	}
}
