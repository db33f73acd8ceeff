package images

import (
	"strings"
	"testing"

	"github.com/kprep/kprep/provision/inventory"
)

func cluster(t *testing.T, extra string) *inventory.Cluster {
	t.Helper()
	text := `apiVersion: kprep/v1
kind: Cluster
metadata: {name: lab}
hosts:
  - {name: cp1, address: 192.168.77.11, roles: [control-plane]}
  - {name: cp2, address: 192.168.77.12, roles: [control-plane]}
  - {name: w1, address: 192.168.77.13, roles: [worker]}
  - {name: cw, address: 192.168.77.14, roles: [control-plane, worker]}
` + extra
	c, err := inventory.Parse("lab.yaml", []byte(text), inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func list(needs []Need) string {
	var s []string
	for _, n := range needs {
		s = append(s, n.Image+" <- "+n.Why)
	}
	return strings.Join(s, "\n")
}

func TestNeededByRole(t *testing.T) {
	c := cluster(t, `kubernetes:
  version: "1.34.4"
  imageRepository: 192.168.82.1:5000/google_containers
  flannel: {imageRegistry: 192.168.82.1:5000}
  localEndpoint: {proxyImage: 192.168.82.1:5000/library/haproxy:3.2.3-alpine}
`)
	cp := `192.168.82.1:5000/google_containers/kube-apiserver:v1.34.4 <- kubeadm (control plane)
192.168.82.1:5000/google_containers/kube-controller-manager:v1.34.4 <- kubeadm (control plane)
192.168.82.1:5000/google_containers/kube-scheduler:v1.34.4 <- kubeadm (control plane)
192.168.82.1:5000/google_containers/etcd:3.6.5-0 <- kubeadm (control plane)
192.168.82.1:5000/google_containers/pause:3.10.1 <- kubeadm (control plane)
192.168.82.1:5000/google_containers/kube-proxy:v1.34.4 <- kube-proxy (DaemonSet)
192.168.82.1:5000/google_containers/coredns:v1.12.1 <- CoreDNS (Deployment)
192.168.82.1:5000/flannel-io/flannel:v0.28.10 <- flannel (CNI)
192.168.82.1:5000/flannel-io/flannel-cni-plugin:v1.9.1-flannel3 <- flannel (CNI)`
	worker := `192.168.82.1:5000/google_containers/pause:3.10.1 <- the container runtime (pod sandbox)
192.168.82.1:5000/google_containers/kube-proxy:v1.34.4 <- kube-proxy (DaemonSet)
192.168.82.1:5000/google_containers/coredns:v1.12.1 <- CoreDNS (Deployment)
192.168.82.1:5000/flannel-io/flannel:v0.28.10 <- flannel (CNI)
192.168.82.1:5000/flannel-io/flannel-cni-plugin:v1.9.1-flannel3 <- flannel (CNI)
192.168.82.1:5000/library/haproxy:3.2.3-alpine <- the API server proxy (local mode)`
	for i, want := range []string{cp, cp, worker, cp} {
		needs, unknown := Needed(c, &c.Hosts[i])
		if got := list(needs); got != want || len(unknown) != 0 {
			t.Errorf("%s:\n%s\nwant\n%s\nunknown %q", c.Hosts[i].Name, got, want, unknown)
		}
	}
}

func TestNeededDefaultsCalicoSandboxAndExternalEndpoint(t *testing.T) {
	c := cluster(t, `kubernetes:
  version: "1.34.4"
  controlPlaneEndpoint: lb.example.com:6443
  cni: calico
  sandboxImage: reg.example.com/pause:3.9
`)
	needs, _ := Needed(c, &c.Hosts[0])
	got := list(needs)
	for _, want := range []string{
		"registry.k8s.io/coredns/coredns:v1.12.1 <- CoreDNS", // kubeadm's own path in its default repository
		"registry.k8s.io/pause:3.10.1 <- kubeadm (control plane)",
		"reg.example.com/pause:3.9 <- the container runtime (pod sandbox)",
		"quay.io/calico/cni:v3.31.7 <- calico (CNI)",
		"quay.io/calico/node:v3.31.7 <- calico (CNI)",
		"quay.io/calico/kube-controllers:v3.31.7 <- calico (CNI)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("control plane: no %q in\n%s", want, got)
		}
	}
	needs, _ = Needed(c, &c.Hosts[2])
	if got := list(needs); strings.Contains(got, "haproxy") || strings.Contains(got, "apiserver") || strings.Contains(got, "registry.k8s.io/pause") {
		t.Errorf("a worker behind a load balancer needs no proxy, control plane or kubeadm pause image:\n%s", got)
	}
}

func TestNeededUnknownVersionSaysSo(t *testing.T) {
	c := cluster(t, `kubernetes: {version: "1.33.2", cni: none}
`)
	needs, unknown := Needed(c, &c.Hosts[0])
	got := list(needs)
	if strings.Contains(got, "etcd") || strings.Contains(got, "coredns") || !strings.Contains(got, "registry.k8s.io/kube-apiserver:v1.33.2") ||
		!strings.Contains(got, "registry.k8s.io/pause:3.10 ") {
		t.Errorf("1.33.2:\n%s", got)
	}
	if len(unknown) != 2 || !strings.Contains(unknown[0], "etcd tag kubeadm 1.33.2") || !strings.Contains(unknown[1], "1.34.4") {
		t.Errorf("unknown: %q", unknown)
	}
	// A known version of another minor: its own tags, and its pause.
	c = cluster(t, `kubernetes: {version: "1.36.3", cni: none}
`)
	needs, unknown = Needed(c, &c.Hosts[0])
	got = list(needs)
	for _, want := range []string{"registry.k8s.io/etcd:3.6.8-0 ", "registry.k8s.io/coredns/coredns:v1.14.2 ", "registry.k8s.io/pause:3.10.2 "} {
		if !strings.Contains(got, want) || len(unknown) != 0 {
			t.Errorf("1.36.3: no %q in\n%s\n(unknown %q)", want, got, unknown)
		}
	}
}
