package kube

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// EndpointStep keeps the API endpoint's name resolving on every host in
// local mode (kubernetes.controlPlaneEndpoint empty), with one marked line
// in /etc/hosts. The name is in every kubeconfig kubeadm writes, so where
// it points is how a host reaches the API servers:
//   - a control plane that runs its API server: 127.0.0.1, its own;
//   - a host not joined yet: the first control plane, which kubeadm join
//     reads the cluster's details from;
//   - a joined worker: the first control plane.
//
// The join steps move a control plane's line to 127.0.0.1 once its API
// server runs, so the same run leaves every line as this step wants it.
type EndpointStep struct{}

// endpointMarker ends the line kprep keeps in /etc/hosts.
const endpointMarker = "# kprep: the API endpoint (kube/endpoint)"

// Name implements provision.Step.
func (EndpointStep) Name() string { return "kube/endpoint" }

// AppliesTo implements provision.HostFilter: local mode only; behind a
// load balancer the name is the operator's to resolve.
func (EndpointStep) AppliesTo(_ *inventory.Host, c *inventory.Cluster) bool {
	return c.Kubernetes.LocalMode()
}

// Probe reads /etc/hosts and whether the host has joined.
func (EndpointStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return endpointProbe()
}

func endpointProbe() string {
	return shell.File("etchosts", "/etc/hosts") + "\n" + shell.Status("has_kubelet_conf", "test -s "+kubeletConf)
}

// Diff implements provision.Step.
func (EndpointStep) Diff(in provision.Input) ([]provision.Planned[string], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	joined := st.Values["has_kubelet_conf"] == "0"
	hosts, _ := st.File("etchosts")
	addr, err := endpointAddress(in.Cluster, in.Host, joined)
	if err != nil {
		return nil, err
	}
	content, summary, err := withEndpointLine(string(hosts), in.Cluster.Kubernetes.LocalEndpoint.Name, addr)
	if err != nil || summary == "" {
		return nil, err
	}
	return []provision.Planned[string]{{Key: "etchosts", Summary: summary,
		Action: fmt.Sprintf("write %s %s in /etc/hosts", addr, in.Cluster.Kubernetes.LocalEndpoint.Name), Data: content}}, nil
}

// Apply implements provision.Step.
func (EndpointStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[string]) error {
	for _, c := range changes {
		if err := t.WriteFile(ctx, "/etc/hosts", []byte(c.Data), transport.WriteOptions{Mode: 0o644}); err != nil {
			return err
		}
	}
	return nil
}

// endpointAddress is where the endpoint's name must point on h.
func endpointAddress(c *inventory.Cluster, h *inventory.Host, joined bool) (string, error) {
	first := c.FirstControlPlane()
	if h == first || (h.HasRole(inventory.RoleControlPlane) && joined) {
		return "127.0.0.1", nil
	}
	if net.ParseIP(first.Address) == nil {
		return "", fmt.Errorf("local mode points %s at the first control plane, %s, whose address %q is not an IP; give it an IP address or set kubernetes.controlPlaneEndpoint",
			c.Kubernetes.LocalEndpoint.Name, first.Name, first.Address)
	}
	return first.Address, nil
}

// withEndpointLine returns /etc/hosts with kprep's endpoint line mapping
// name to addr, and what differed ("" when nothing). A line of the user's
// that maps the name is an error: kprep does not guess which one wins.
func withEndpointLine(hosts, name, addr string) (string, string, error) {
	want := addr + " " + name + " " + endpointMarker
	var out []string
	var have []string
	lines := strings.Split(strings.TrimSuffix(hosts, "\n"), "\n")
	if hosts == "" {
		lines = nil
	}
	for i, line := range lines {
		if strings.HasSuffix(line, endpointMarker) {
			have = append(have, line)
			continue
		}
		body, _, _ := strings.Cut(line, "#")
		if f := strings.Fields(body); len(f) > 1 && containsName(f[1:], name) {
			return "", "", fmt.Errorf("/etc/hosts line %d maps %s to %s already; remove that line and let kprep keep the endpoint's name (it points it at the API servers)", i+1, name, f[0])
		}
		out = append(out, line)
	}
	if len(have) == 1 && have[0] == want {
		return hosts, "", nil
	}
	out = append(out, want)
	summary := fmt.Sprintf("/etc/hosts does not resolve %s (want %s)", name, addr)
	if len(have) > 0 {
		old := strings.Fields(have[0])[0]
		summary = fmt.Sprintf("/etc/hosts resolves %s to %s, want %s", name, old, addr)
	}
	return strings.Join(out, "\n") + "\n", summary, nil
}

func containsName(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}
