package kube

import "github.com/kprep/kprep/provision"

// Steps returns the kube phase's steps in the order they run: what the
// host cannot do before anything changes, the repo
// before the packages, the packages (which bring the kubelet's unit and its
// environment file) before the kubelet's settings, the endpoint's name
// before anything reads a kubeconfig, init before any join, and Ready last.
func Steps() []provision.Step {
	return []provision.Step{
		provision.Typed(PreflightStep{}),
		provision.Typed(RepoStep{}),
		provision.Typed(PackagesStep{}),
		provision.Typed(KubeletStep{}),
		provision.Typed(EndpointStep{}),
		provision.Typed(InitStep{}),
		provision.Typed(CNIStep{}),
		provision.Typed(JoinControlPlaneStep{}),
		provision.Typed(JoinWorkerStep{}),
		provision.Typed(NodeStep{}),
		provision.Typed(NamespacesStep{}),
		provision.Typed(ReadyStep{}),
	}
}
