// Package kubeadmconfig writes the kubeadm configuration each host gets:
// one generator for kubeadm init on the first control plane and kubeadm
// join on every other host, from typed values encoded as YAML.
//
// The API is kubeadm.k8s.io/v1beta4 for Kubernetes 1.31 and later, v1beta3
// before. The configuration always sets controlPlaneEndpoint (kubeadm
// cannot add one to a running cluster), advertises and registers each node
// with its inventory address (never a NAT address a Vagrant box also has),
// pins the cluster CA by its public key's hash on join, and names every
// control plane, the endpoint, 127.0.0.1 and localhost in the API server
// certificate.
//
// Join credentials (the bootstrap token, the CA hash, the certificate key
// of a control-plane join) are inputs: apply gets them from the first
// control plane at run time. Rendered without them, the configuration
// carries placeholders marked by a comment, which kubeadm still accepts as
// well-formed, so that `kprep render kubeadm` shows the exact shape a host
// gets without any secret in it.
package kubeadmconfig
