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
//   - a joined host without an API server, whose proxy runs: 127.0.0.1,
//     the proxy in front of every API server (kube/apiserver-proxy);
//   - a host not joined yet, or one whose proxy does not run (its image
//     cannot be pulled, say): the first control plane, which kubeadm join
//     reads the cluster's details from.
//
// Whether the proxy runs is read from the host's processes, not asked over
// the network, so a slow answer never moves the line back and forth.
//
// The join and proxy steps move a line to 127.0.0.1 once what answers
// there runs, so the same run leaves every line as this step wants it.
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

// Probe reads /etc/hosts, whether the host has joined and, on a host
// served by the proxy, whether the proxy runs.
func (EndpointStep) Probe(h *inventory.Host, c *inventory.Cluster) string {
	if (APIServerProxyStep{}).AppliesTo(h, c) {
		return endpointProbe() + "\n" + proxyRunningProbe()
	}
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
	proxied := joined && st.Values["proxy_running"] != ""
	hosts, _ := st.File("etchosts")
	addr, err := endpointAddress(in.Cluster, in.Host, joined, proxied)
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

// endpointAddress is where the endpoint's name must point on h: joined
// tells whether h has joined, proxied whether its API server proxy runs.
func endpointAddress(c *inventory.Cluster, h *inventory.Host, joined, proxied bool) (string, error) {
	first := c.FirstControlPlane()
	if h == first || (h.HasRole(inventory.RoleControlPlane) && joined) || (!h.HasRole(inventory.RoleControlPlane) && proxied) {
		return "127.0.0.1", nil
	}
	if net.ParseIP(first.Address) == nil {
		return "", fmt.Errorf("local mode points %s at the first control plane, %s, whose address %q is not an IP; give it an IP address or set kubernetes.controlPlaneEndpoint",
			c.Kubernetes.LocalEndpoint.Name, first.Name, first.Address)
	}
	return first.Address, nil
}

// writeEndpointLine points the endpoint's name at addr in /etc/hosts, as
// the step's probe read it (in.State holds its etchosts record).
func writeEndpointLine(ctx context.Context, t provision.Target, in provision.Input, addr string) error {
	st, err := shell.Parse(in.State)
	if err != nil {
		return err
	}
	hosts, _ := st.File("etchosts")
	content, summary, err := withEndpointLine(string(hosts), in.Cluster.Kubernetes.LocalEndpoint.Name, addr)
	if err != nil || summary == "" {
		return err
	}
	return t.WriteFile(ctx, "/etc/hosts", []byte(content), transport.WriteOptions{Mode: 0o644})
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
