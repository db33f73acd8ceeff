package kube

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/steptest"
)

func TestKubeProxyHostsDiff(t *testing.T) {
	c := cluster()
	moved := steptest.FileRecord("etchosts", "127.0.0.1 localhost\n127.0.0.1 kube-apiserver.kprep.internal "+endpointMarker+"\n")
	for _, tc := range []struct {
		name, state string
		want        []string
	}{
		{"kube-proxy started after the line moved", moved + "kube_proxy_endpoint=127.0.0.1\n", nil},
		{"kube-proxy not running yet", moved + "kube_proxy_endpoint=\n", nil},
		{"no line yet", "file etchosts -\nkube_proxy_endpoint=192.168.77.11\n", nil},
		{"kube-proxy started before the join moved the line", moved + "kube_proxy_endpoint=192.168.77.11\n",
			[]string{"kube-proxy resolves kube-apiserver.kprep.internal to 192.168.77.11, the host to 127.0.0.1 (its copy of /etc/hosts is from before the host's line moved)"}},
		{"kube-proxy's copy without the name", moved + "kube_proxy_endpoint=-\n",
			[]string{"kube-proxy resolves kube-apiserver.kprep.internal to nothing, the host to 127.0.0.1 (its copy of /etc/hosts is from before the host's line moved)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changes := mustDiff(t, KubeProxyHostsStep{}, inputFor(c, 2, tc.state))
			if diff := cmp.Diff(tc.want, steptest.Summaries(changes)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if len(changes) > 0 && changes[0].Data != "127.0.0.1" {
				t.Errorf("data %q", changes[0].Data)
			}
		})
	}
	c.Kubernetes.ControlPlaneEndpoint = "lb.example.com:6443"
	if (KubeProxyHostsStep{}).AppliesTo(&c.Hosts[2], c) {
		t.Error("the step runs behind a load balancer")
	}
}

// TestKubeProxyEndpointReadsAHostsFile runs the probe's awk on hosts files
// as kube-proxy's copy has them.
func TestKubeProxyEndpointReadsAHostsFile(t *testing.T) {
	c := cluster()
	script := kubeProxyEndpoint(c)
	// The loop reads /proc/<pid>/root/etc/hosts; take its awk alone.
	awk := script[strings.Index(script, "awk "):strings.LastIndex(script, " /proc/")]
	for hosts, want := range map[string]string{
		"# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.168.77.11 kube-apiserver.kprep.internal # kprep: the API endpoint (kube/endpoint)\n": "192.168.77.11",
		"127.0.0.1 localhost KUBE-APISERVER.kprep.internal\n":             "127.0.0.1",
		"127.0.0.1 localhost\n# 10.0.0.1 kube-apiserver.kprep.internal\n": "-",
	} {
		cmd := exec.Command("sh", "-c", awk)
		cmd.Stdin = strings.NewReader(hosts)
		out, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%q: %q %v, want %q", hosts, out, err, want)
		}
	}
}
