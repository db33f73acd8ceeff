// Package kube brings the cluster up with kubeadm and keeps it as the
// inventory says: the API endpoint's name, kubeadm init on the first
// control plane, control planes joined one at a time, workers joined in
// parallel, and every node Ready. Each concern is a step of its own; what
// "done" means on a host is read on that host (its kubelet.conf, and the
// Node the API server has for it), so a rerun on a healthy cluster runs no
// changing command.
package kube

import (
	"fmt"
	"strings"
	"time"

	"github.com/kprep/kprep/kube/kubeadmconfig"
	"github.com/kprep/kprep/kube/preflight"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
)

// Files kubeadm and kprep keep on a host.
const (
	kubeDir        = "/etc/kubernetes"
	adminConf      = kubeDir + "/admin.conf"
	kubeletConf    = kubeDir + "/kubelet.conf"
	bootstrapConf  = kubeDir + "/bootstrap-kubelet.conf"
	manifestsDir   = kubeDir + "/manifests"
	caCert         = kubeDir + "/pki/ca.crt"
	kubeletConfig  = "/var/lib/kubelet/config.yaml"
	etcdDataDir    = "/var/lib/etcd"
	kprepKubeDir   = kubeDir + "/kprep"
	initConfigPath = kprepKubeDir + "/kubeadm-init.yaml"
	joinConfigPath = kprepKubeDir + "/kubeadm-join.yaml"
)

// Timeouts of the long commands: kubeadm pulls images and waits for the
// control plane, which on a slow mirror takes minutes.
const (
	kubeadmTimeout  = 15 * time.Minute
	registerTimeout = 3 * time.Minute
	kubectlTimeout  = "10s" // kubectl --request-timeout in probes
)

// cri is the CRI socket kubeadm and the kubelet use.
func cri(c *inventory.Cluster) string { return kubeadmconfig.CRISockets[c.Kubernetes.CRI] }

// kubectl runs kubectl with a kubeconfig and a bounded request time.
func kubectl(kubeconfig string, args ...string) string {
	return kubectlCmd(kubeconfig, kubectlTimeout) + " " + shell.Join(args...)
}

// kubectlCmd is kubectl with a kubeconfig and a request time-out ("0":
// none, for a command with a time-out of its own).
func kubectlCmd(kubeconfig, timeout string) string {
	return "kubectl --kubeconfig=" + shell.Quote(kubeconfig) + " --request-timeout=" + timeout
}

// ignoreFlag is kubeadm's --ignore-preflight-errors for init and join,
// with a leading space, or "".
func ignoreFlag() (string, error) {
	flag, err := preflight.IgnoreFlag(preflight.KubeadmIgnores)
	if err != nil || flag == "" {
		return "", err
	}
	return " " + flag, nil
}

// nodeProbe prints what the API server says of the host's Node, asked with
// kubeconfig (kubelet.conf: a node may read its own Node), as
//
//	node_rc=0
//	node=<InternalIPs>|<Ready status>|<Ready reason>
//
// or node_rc=<kubectl's status> and node_err=<its message>; node_rc=none
// without the kubeconfig, node_rc=nokubectl without kubectl.
func nodeProbe(kubeconfig, name string) string {
	get := kubectl(kubeconfig, "get", "node", name, "-o",
		`jsonpath={range .status.addresses[?(@.type=="InternalIP")]}{.address}{" "}{end}|{.status.conditions[?(@.type=="Ready")].status}|{.status.conditions[?(@.type=="Ready")].reason}`)
	return fmt.Sprintf(`if [ ! -s %[1]s ]; then echo node_rc=none
elif ! command -v kubectl >/dev/null; then echo node_rc=nokubectl
else
  out=$(%[2]s 2>&1); rc=$?
  echo "node_rc=$rc"
  if [ $rc = 0 ]; then printf 'node=%%s\n' "$out"; else printf 'node_err=%%s\n' "$(printf '%%s' "$out" | tr '\n' ' ')"; fi
fi`, shell.Quote(kubeconfig), get)
}

// nodeState is what nodeProbe found.
type nodeState struct {
	// Checked is false when there was no kubeconfig or kubectl to ask with.
	Checked bool
	// NoKubectl: the kubeconfig is there, kubectl is not.
	NoKubectl bool
	// Found: the API server has a Node of that name.
	Found bool
	// Unreachable holds kubectl's error when the API server did not answer
	// (or refused) rather than saying the Node is not there.
	Unreachable string
	IPs         []string
	Ready       string // True, False, Unknown
	Reason      string
}

func parseNode(st shell.State) nodeState {
	switch rc := st.Values["node_rc"]; rc {
	case "", "none":
		return nodeState{}
	case "nokubectl":
		return nodeState{NoKubectl: true}
	case "0":
		ips, rest, _ := strings.Cut(st.Values["node"], "|")
		ready, reason, _ := strings.Cut(rest, "|")
		return nodeState{Checked: true, Found: true, IPs: strings.Fields(ips), Ready: ready, Reason: reason}
	default:
		msg := st.Values["node_err"]
		if strings.Contains(msg, "NotFound") || strings.Contains(msg, "not found") {
			return nodeState{Checked: true}
		}
		return nodeState{Checked: true, Unreachable: strings.TrimSpace(msg)}
	}
}

// hasIP reports whether the Node carries ip as an InternalIP.
func (n nodeState) hasIP(ip string) bool {
	for _, a := range n.IPs {
		if a == ip {
			return true
		}
	}
	return false
}

// kubeletProbe prints whether the kubelet runs and starts at boot.
func kubeletProbe() string {
	return kubeletUnit("kubelet_active", "kubelet_enabled")
}

// kubeletUnit prints the kubelet unit's ActiveState and UnitFileState (what
// systemctl is-active and is-enabled print) under the keys given, "" for
// none. The probe script asks systemd once for every step's units
// (shell.Show); a systemctl per question cost each about ten milliseconds
// of the host's CPU.
func kubeletUnit(activeKey, enabledKey string) string {
	var b strings.Builder
	b.WriteString(shell.Show("kubelet.service", "ActiveState", "UnitFileState"))
	if activeKey != "" {
		fmt.Fprintf(&b, "\necho \"%s=$kprep_ActiveState\"", activeKey)
	}
	if enabledKey != "" {
		fmt.Fprintf(&b, "\necho \"%s=$kprep_UnitFileState\"", enabledKey)
	}
	return b.String()
}

// leftoversProbe lists what an earlier kubeadm run left on the host, so a
// cut-off init or join is told from a fresh host: "left=<paths>".
func leftoversProbe() string {
	return fmt.Sprintf(`left=
for p in %s; do [ -e "$p" ] && left="$left $p"; done
[ -n "$(ls -A %s 2>/dev/null)" ] && left="$left %s"
[ -d %s/member ] && left="$left %s"
echo "left=$left"`, strings.Join([]string{kubeletConf, bootstrapConf, adminConf, kubeletConfig, caCert}, " "),
		manifestsDir, manifestsDir, etcdDataDir, etcdDataDir)
}
