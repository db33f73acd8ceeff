// Package kube holds the kube phase's steps: the Kubernetes package repo,
// the pinned kubelet, kubeadm, kubectl and kubernetes-cni, and the
// kubelet's node settings. Each concern is a step of its own, one per file,
// listed in order by Steps. Its sub-packages hold what the steps stand on:
// the kubeadm configuration (kubeadmconfig), the preflight checks
// (preflight), the CA pin (cahash) and the CNI manifests (cni).
package kube
