package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kprep/kprep/kube/kubeadmconfig"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// KubeProxyHostsStep keeps kube-proxy resolving the API endpoint's name
// the way its host does, in local mode. kube-proxy reaches the API server
// by that name (kubeadm's kube-proxy kubeconfig), and runs on the host
// network, where the kubelet gives each container a copy of the host's
// /etc/hosts made when the container starts. A kube-proxy that started
// before the join or proxy step moved the host's line to 127.0.0.1 would
// keep reaching the first control plane only, and lose the API servers
// with it. Its container is stopped so that the kubelet starts it again
// with a fresh copy; nothing else is touched, and no API server is needed.
type KubeProxyHostsStep struct{}

// Name implements provision.Step.
func (KubeProxyHostsStep) Name() string { return "kube/kube-proxy-hosts" }

// AppliesTo implements provision.HostFilter: local mode, every node.
func (KubeProxyHostsStep) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	return c.Kubernetes.LocalMode() && (h.HasRole(inventory.RoleControlPlane) || kubeadmconfig.RoleOf(c, h) == kubeadmconfig.RoleJoinWorker)
}

// Probe reads the host's /etc/hosts and the address each running
// kube-proxy's copy gives the name.
func (KubeProxyHostsStep) Probe(_ *inventory.Host, c *inventory.Cluster) string {
	return shell.File("etchosts", "/etc/hosts") + "\n" + shell.Value("kube_proxy_endpoint", kubeProxyEndpoint(c))
}

// kubeProxyEndpoint prints, for each running kube-proxy, the address its
// /etc/hosts gives the endpoint's name ("-" for none), one a line.
func kubeProxyEndpoint(c *inventory.Cluster) string {
	return fmt.Sprintf(`for p in $(pgrep -x kube-proxy); do awk -v n=%s 'BEGIN {a="-"} {sub(/#.*/, ""); for (i = 2; i <= NF; i++) if (tolower($i) == n) {a=$1; exit}} END {print a}' /proc/$p/root/etc/hosts; done`,
		shell.Quote(strings.ToLower(c.Kubernetes.LocalEndpoint.Name)))
}

// Diff implements provision.Step.
func (KubeProxyHostsStep) Diff(in provision.Input) ([]provision.Planned[string], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	hosts, _ := st.File("etchosts")
	want := endpointLineAddress(string(hosts))
	seen := strings.Fields(st.Values["kube_proxy_endpoint"])
	if want == "" || len(seen) == 0 {
		return nil, nil // no line yet, or no kube-proxy running: it starts with the host's copy
	}
	for _, addr := range seen {
		if addr != want {
			name := in.Cluster.Kubernetes.LocalEndpoint.Name
			return []provision.Planned[string]{{Key: "kube-proxy", Data: want,
				Summary: fmt.Sprintf("kube-proxy resolves %s to %s, the host to %s (its copy of /etc/hosts is from before the host's line moved)", name, orNoLine(addr), want),
				Action:  "stop its container; the kubelet starts it again with a fresh copy"}}, nil
		}
	}
	return nil, nil
}

func orNoLine(addr string) string {
	if addr == "-" {
		return "nothing"
	}
	return addr
}

// kubeProxyRestartWait bounds the wait for the kubelet to start kube-proxy
// again (its restart back-off starts at 10 s).
const kubeProxyRestartWait = 2 * time.Minute

// Apply stops the running kube-proxy and waits until the kubelet has
// started one that resolves the name as the host does.
func (KubeProxyHostsStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[string]) error {
	for _, ch := range changes {
		ready := fmt.Sprintf(`[ "$( { %s; } 2>/dev/null | sort -u)" = %s ]`, kubeProxyEndpoint(in.Cluster), shell.Quote(ch.Data))
		line := fmt.Sprintf(`pkill -x kube-proxy; i=0; until %s; do i=$((i+1)); [ $i -ge %d ] && exit 1; sleep 2; done`,
			ready, int(kubeProxyRestartWait/(2*time.Second)))
		if _, err := t.Run(ctx, transport.Command{Line: line, Label: "stop kube-proxy and wait for the kubelet to start it with the host's /etc/hosts",
			Timeout: kubeProxyRestartWait + time.Minute}); err != nil {
			return fmt.Errorf("kube-proxy did not come back resolving the endpoint to %s within %s: %w", ch.Data, kubeProxyRestartWait, err)
		}
	}
	return nil
}

// endpointLineAddress is the address kprep's endpoint line in hosts gives
// the name, "" without the line.
func endpointLineAddress(hosts string) string {
	for _, line := range strings.Split(hosts, "\n") {
		if strings.HasSuffix(line, endpointMarker) {
			if f := strings.Fields(line); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}
