// Package runtime installs and configures the container runtime on a host:
// the Docker CE package repo, Docker CE at the pinned version, daemon.json,
// the proxy drop-ins, the CRI runtime Kubernetes talks to (containerd's CRI
// plugin or cri-dockerd), and the services running with exactly that
// configuration. Each concern is a step of its own; the write steps only
// write files, and ServiceStep restarts or reloads what runs with a
// configuration other than the one on disk.
package runtime

import "github.com/kprep/kprep/provision"

// Steps returns the runtime steps in the order they run: the repo before the
// packages, conflicting packages out before Docker CE goes in, every file
// before the services that read it.
func Steps() []provision.Step {
	return []provision.Step{
		provision.Typed(RepoStep{}),
		provision.Typed(ConflictsStep{}),
		provision.Typed(PackagesStep{}),
		provision.Typed(DaemonJSONStep{}),
		provision.Typed(ProxyStep{}),
		provision.Typed(ContainerdStep{}),
		provision.Typed(RegistriesStep{}),
		provision.Typed(CRIDockerdStep{}),
		provision.Typed(ServiceStep{}),
	}
}

// installSteps are the steps that install or remove packages: what a
// step that reads an installed binary's defaults depends on (see
// provision.DependsOn).
var installSteps = []string{ConflictsStep{}.Name(), PackagesStep{}.Name()}
