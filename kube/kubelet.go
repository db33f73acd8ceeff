package kube

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/kube/kubeadmconfig"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// KubeletStep keeps the kubelet's node settings as the inventory says:
//   - its node IP is the host's inventory address (KUBELET_EXTRA_ARGS
//     --node-ip in the environment file the kubelet's unit reads), so a
//     Vagrant box's NAT 10.0.2.15, which every box has, never becomes it;
//   - its cgroup driver is systemd, the one kprep's runtime steps give
//     containerd and dockerd (kubeadm writes it from the KubeletConfiguration
//     kprep renders; a hand edit of /var/lib/kubelet/config.yaml is put back);
//   - its CRI socket is kubernetes.cri's: kubeadm writes it at the join, and
//     a node joined with another one is an error that says how to move it.
//
// A running kubelet is restarted when its settings changed; one that is not
// running (before kubeadm has configured it) is left to kubeadm to start.
type KubeletStep struct{}

// Files the kubelet step reads or writes besides kubeletConfig.
const (
	kubeadmFlagsPath    = "/var/lib/kubelet/kubeadm-flags.env"
	kubeletInstancePath = "/var/lib/kubelet/instance-config.yaml"
	// kubeletCgroupDriver matches the runtime steps' SystemdCgroup and
	// native.cgroupdriver=systemd.
	kubeletCgroupDriver = "systemd"
)

// kubeletEnvPath is the environment file the packages' kubelet unit reads.
func kubeletEnvPath(f facts.Facts) string {
	if f.Family == facts.FamilyDebian {
		return "/etc/default/kubelet"
	}
	return "/etc/sysconfig/kubelet"
}

// Name implements provision.Step.
func (KubeletStep) Name() string { return "kube/kubelet" }

// Probe reads both families' environment files, what kubeadm wrote, and
// whether the kubelet runs.
func (KubeletStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return strings.Join([]string{
		shell.File("sysconfig", "/etc/sysconfig/kubelet"),
		shell.File("default", "/etc/default/kubelet"),
		shell.File("config", kubeletConfig),
		shell.File("flags", kubeadmFlagsPath),
		shell.File("instance", kubeletInstancePath),
		kubeletUnit("active", ""),
	}, "\n")
}

// kubeletWork is what one change does: write a file (the environment file,
// or config.yaml with its cgroup driver put back), then restart a running
// kubelet.
type kubeletWork struct {
	Path    string
	Content []byte
	Restart bool
}

// Diff implements provision.Step.
func (KubeletStep) Diff(in provision.Input) ([]provision.Planned[kubeletWork], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(in.Host.Address)
	if err != nil {
		return nil, fmt.Errorf("host %s: address %q is a name; the kubelet's node IP must be the host's IP address, so give that as its address", in.Host.Name, in.Host.Address)
	}
	running := st.Values["active"] == "active"
	var changes []provision.Planned[kubeletWork]

	path, label := kubeletEnvPath(in.Facts), "sysconfig"
	if in.Facts.Family == facts.FamilyDebian {
		label = "default"
	}
	want := []byte(hostfile.Header("the kubelet's flags on this node.",
		"Edits are overwritten; the node IP is the host's address in the inventory.") +
		"KUBELET_EXTRA_ARGS=--node-ip=" + ip.Unmap().String() + "\n")
	have, exists := st.File(label)
	if summary := hostfile.Compare(path, have, exists, want); summary != "" {
		if exists {
			summary += fmt.Sprintf(" (node IP %s)", ip.Unmap())
		}
		action := "write " + path
		if running {
			action += ", restart the kubelet"
		}
		changes = append(changes, provision.Planned[kubeletWork]{Key: "env", Summary: summary, Action: action,
			Data: kubeletWork{Path: path, Content: want, Restart: running}})
	}

	if config, ok := st.File("config"); ok {
		fixed, driver, err := withCgroupDriver(config, kubeletCgroupDriver)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kubeletConfig, err)
		}
		if fixed != nil {
			changes = append(changes, provision.Planned[kubeletWork]{Key: "cgroupDriver",
				Summary: fmt.Sprintf("%s sets cgroupDriver %q; the runtime uses %s", kubeletConfig, driver, kubeletCgroupDriver),
				Action:  fmt.Sprintf("set cgroupDriver: %s in %s, restart the kubelet", kubeletCgroupDriver, kubeletConfig),
				Data:    kubeletWork{Path: kubeletConfig, Content: fixed, Restart: running}})
		}
	}

	if err := checkCRISocket(in.Cluster, st); err != nil {
		return nil, err
	}
	return changes, nil
}

// withCgroupDriver returns config with its cgroupDriver set to want, or nil
// when it already is; driver is what it was.
func withCgroupDriver(config []byte, want string) (fixed []byte, driver string, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(config, &doc); err != nil {
		return nil, "", err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, "", fmt.Errorf("not a KubeletConfiguration mapping")
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "cgroupDriver" {
			driver = m.Content[i+1].Value
			if driver == want {
				return nil, driver, nil
			}
			m.Content[i+1].Value = want
		}
	}
	if driver == "" {
		// The kubelet's own default is cgroupfs.
		driver = "cgroupfs (not set)"
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "cgroupDriver"}, &yaml.Node{Kind: yaml.ScalarNode, Value: want})
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, "", err
	}
	return b.Bytes(), driver, enc.Close()
}

// criEndpoint finds the CRI socket kubeadm gave the kubelet, in
// kubeadm-flags.env (--container-runtime-endpoint) or, with kubeadm's
// NodeLocalCRISocket, instance-config.yaml (containerRuntimeEndpoint).
var (
	criFlag     = regexp.MustCompile(`--container-runtime-endpoint[= ]([^ "]+)`)
	criInstance = regexp.MustCompile(`(?m)^containerRuntimeEndpoint:\s*"?([^"\s]+)"?`)
)

// checkCRISocket refuses a node whose kubelet kubeadm set up for another
// CRI than kubernetes.cri: the socket is also the node's annotation and
// kubeadm's record, so moving it is a reset and a new join, not a file edit.
func checkCRISocket(c *inventory.Cluster, st shell.State) error {
	want := kubeadmconfig.CRISockets[c.Kubernetes.CRI]
	var have, from string
	if flags, ok := st.File("flags"); ok {
		if m := criFlag.FindSubmatch(flags); m != nil {
			have, from = string(m[1]), kubeadmFlagsPath
		}
	}
	if inst, ok := st.File("instance"); ok {
		if m := criInstance.FindSubmatch(inst); m != nil {
			have, from = string(m[1]), kubeletInstancePath
		}
	}
	if have == "" || sameSocket(have, want) {
		return nil
	}
	return fmt.Errorf("the kubelet was joined with the CRI socket %s (%s), but kubernetes.cri %s is %s: a node moves to another runtime by kprep reset of the host and a new join",
		have, from, c.Kubernetes.CRI, want)
}

// sameSocket tells whether two CRI endpoints name one socket: with or
// without unix://, and /var/run being /run (a link on every systemd
// distribution). kubeadm's own detection writes
// unix:///var/run/containerd/containerd.sock where kprep's configuration
// says unix:///run/containerd/containerd.sock.
func sameSocket(a, b string) bool {
	norm := func(s string) string {
		s = strings.TrimPrefix(s, "unix://")
		if rest, ok := strings.CutPrefix(s, "/var/run/"); ok {
			s = "/run/" + rest
		}
		return s
	}
	return norm(a) == norm(b)
}

// Apply implements provision.Step.
func (KubeletStep) Apply(ctx context.Context, t provision.Target, _ provision.Input, changes []provision.Planned[kubeletWork]) error {
	restart := false
	for _, c := range changes {
		if err := t.WriteFile(ctx, c.Data.Path, c.Data.Content, transport.WriteOptions{Mode: 0o644}); err != nil {
			return err
		}
		restart = restart || c.Data.Restart
	}
	if restart {
		// try-restart: only a kubelet that runs; kubeadm starts one that does not.
		if _, err := t.Run(ctx, transport.Command{Line: "systemctl try-restart kubelet"}); err != nil {
			return fmt.Errorf("restart the kubelet: %w", err)
		}
	}
	return nil
}
