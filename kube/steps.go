package kube

import "github.com/kprep/kprep/provision"

// Steps returns the kube steps in the order they run on a host: the repo
// before the packages, the packages (which bring the kubelet's unit and its
// environment file) before the kubelet's settings.
func Steps() []provision.Step {
	return []provision.Step{
		provision.Typed(RepoStep{}),
		provision.Typed(PackagesStep{}),
		provision.Typed(KubeletStep{}),
	}
}
