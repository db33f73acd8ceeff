package kube

import "github.com/kprep/kprep/provision"

// Steps returns the kube phase's steps in the order they run: what the
// host cannot do before anything changes, the repo
// before the packages, the packages (which bring the kubelet's unit and its
// environment file) before the kubelet's settings, the endpoint's name
// before anything reads a kubeconfig, init (then the CNI) before any join,
// a worker's API server proxy after its join (kubeadm join wants an empty manifests
// folder), kube-proxy's copy of /etc/hosts checked once every line has
// moved, the Node's labels and taints and the namespaces once every
// node joined, and Ready last.
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
		provision.Typed(APIServerProxyStep{}),
		provision.Typed(KubeProxyHostsStep{}),
		provision.Typed(NodeStep{}),
		provision.Typed(NamespacesStep{}),
		provision.Typed(ReadyStep{}),
	}
}
