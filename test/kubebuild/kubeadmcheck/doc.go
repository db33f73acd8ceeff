// Package kubeadmcheck holds the test that hands every golden kubeadm
// configuration kprep renders (kube/kubeadmconfig/testdata) to the real
// kubeadm's own configuration loading and validation, in process: the code
// behind `kubeadm config validate`, from k8s.io/kubernetes v1.34.4.
package kubeadmcheck
