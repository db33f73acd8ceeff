package kube

import "github.com/kprep/kprep/provision"

// Steps returns the kube phase's steps in the order they run: the repo
// before the packages, the packages (which bring the kubelet's unit and its
// environment file) before the kubelet's settings, the endpoint's name
// before anything reads a kubeconfig, init before any join, and Ready last.
func Steps() []provision.Step {
	return []provision.Step{
		provision.Typed(RepoStep{}),
		provision.Typed(PackagesStep{}),
		provision.Typed(KubeletStep{}),
		provision.Typed(EndpointStep{}),
		provision.Typed(InitStep{}),
		provision.Typed(JoinControlPlaneStep{}),
		provision.Typed(JoinWorkerStep{}),
		provision.Typed(ReadyStep{}),
	}
}
