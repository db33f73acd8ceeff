package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kprep/kprep/kube/kubeadmconfig"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// ResetOptions say what kprep reset may do.
type ResetOptions struct {
	// Resetting names the hosts being reset; the control planes not among
	// them stay, and the reset drains and deletes Nodes through them.
	Resetting []string
	// Force resets the last control plane too, and control planes whose
	// removal would cost etcd its quorum, and goes on when a Node cannot
	// be drained or no control plane that stays answers.
	Force bool
}

// ResetSteps returns the steps of kprep reset, in the order they run:
// every worker first (each on its own, all at once), then the control
// planes, one at a time. The order is declared with After directly rather
// than by running apply's build order backwards (provision.Options.Reverse):
// reset's steps are not apply's steps undone one by one, and a list that
// reads in the order it runs is the one a newcomer can follow.
func ResetSteps(o ResetOptions) []provision.Step {
	return []provision.Step{
		provision.Typed(ResetWorkerStep{o}),
		provision.Typed(ResetControlPlaneStep{o}),
	}
}

// ResetWorkerStep undoes the kube phase on a host without an API server:
// its Node drained and deleted through a control plane that stays, kubeadm
// reset, then what kubeadm reset leaves (the CNI's files, the kube and CNI
// iptables chains, the CNI's links, the kubelet's state, /etc/kubernetes,
// the endpoint's line), in that order. The host is then fresh for apply.
type ResetWorkerStep struct{ Options ResetOptions }

// ResetControlPlaneStep does the same on a control plane, after every
// worker, one control plane at a time. It first checks, through a control
// plane that stays, that etcd keeps its quorum without this member, and
// afterwards that kubeadm reset removed the member.
type ResetControlPlaneStep struct{ Options ResetOptions }

// Name implements provision.Step.
func (ResetWorkerStep) Name() string { return "reset/worker" }

// Name implements provision.Step.
func (ResetControlPlaneStep) Name() string { return "reset/control-plane" }

// AppliesTo implements provision.HostFilter.
func (ResetWorkerStep) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	return kubeadmconfig.RoleOf(c, h) == kubeadmconfig.RoleJoinWorker
}

// AppliesTo implements provision.HostFilter.
func (ResetControlPlaneStep) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	return h.HasRole(inventory.RoleControlPlane)
}

// After implements provision.Sequenced: workers go first, while the
// control planes that drain them still run.
func (ResetControlPlaneStep) After() []string { return []string{"reset/worker"} }

// Serial implements provision.Serial: one control plane at a time, each
// quorum check made after the last removal.
func (ResetControlPlaneStep) Serial() bool { return true }

// Probe implements provision.Step.
func (ResetWorkerStep) Probe(h *inventory.Host, _ *inventory.Cluster) string {
	return resetProbe(h, kubeletConf)
}

// Probe implements provision.Step.
func (ResetControlPlaneStep) Probe(h *inventory.Host, _ *inventory.Cluster) string {
	return resetProbe(h, adminConf)
}

// Diff implements provision.Step.
func (ResetWorkerStep) Diff(in provision.Input) ([]provision.Planned[struct{}], error) {
	return resetDiff(in)
}

// Diff implements provision.Step.
func (ResetControlPlaneStep) Diff(in provision.Input) ([]provision.Planned[struct{}], error) {
	return resetDiff(in)
}

// Apply implements provision.Step.
func (s ResetWorkerStep) Apply(ctx context.Context, t provision.Target, in provision.Input, _ []provision.Planned[struct{}]) error {
	cp, err := answeringControlPlane(ctx, t, stayingControlPlanes(in.Cluster, s.Options))
	if err != nil && !s.Options.Force {
		return err
	}
	if err := removeNode(ctx, cp, in.Host, s.Options.Force); err != nil {
		return err
	}
	return resetHost(ctx, t, in)
}

// Apply implements provision.Step.
func (s ResetControlPlaneStep) Apply(ctx context.Context, t provision.Target, in provision.Input, _ []provision.Planned[struct{}]) error {
	c, h := in.Cluster, in.Host
	stays := stayingControlPlanes(c, s.Options)
	if len(stays) == 0 && !s.Options.Force {
		return fmt.Errorf("%s is the last control plane of the cluster: resetting it ends the cluster; add --force to do that", h.Name)
	}
	cp, err := answeringControlPlane(ctx, t, stays)
	if err != nil && !s.Options.Force {
		return err
	}
	if cp != nil {
		members, err := etcdMembers(ctx, cp.ex)
		if err != nil {
			return fmt.Errorf("%w (through %s; --force resets %s without the check)", err, cp.host.Name, h.Name)
		}
		if err := removalKeepsQuorum(members, etcdHealth(ctx, cp.ex, members), h); err != nil && !s.Options.Force {
			return fmt.Errorf("%w; bring the members that are down back first, or add --force", err)
		}
	}
	if err := removeNode(ctx, cp, h, s.Options.Force); err != nil {
		return err
	}
	if err := resetHost(ctx, t, in); err != nil {
		return err
	}
	if cp != nil {
		return removeEtcdMember(ctx, cp.ex, h)
	}
	return nil
}

// stayingControlPlanes are the inventory's control planes that are not
// being reset, in the inventory's order.
func stayingControlPlanes(c *inventory.Cluster, o ResetOptions) []*inventory.Host {
	var out []*inventory.Host
	for _, cp := range c.ControlPlanes() {
		if !slices.Contains(o.Resetting, cp.Name) {
			out = append(out, cp)
		}
	}
	return out
}

// peerControlPlane is a control plane that stays, reached for the reset.
type peerControlPlane struct {
	host *inventory.Host
	ex   provision.Executor
}

// answeringControlPlane returns the first control plane among stays whose
// API server answers (asked with its admin.conf), nil when none stays.
func answeringControlPlane(ctx context.Context, t provision.Target, stays []*inventory.Host) (*peerControlPlane, error) {
	if len(stays) == 0 {
		return nil, nil
	}
	var tried []string
	for _, h := range stays {
		ex, err := t.Peer(h.Name)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", h.Name, err))
			continue
		}
		if _, err := ex.Run(ctx, transport.Command{Line: kubectl(adminConf, "get", "--raw", "/readyz")}); err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", h.Name, err))
			continue
		}
		return &peerControlPlane{host: h, ex: ex}, nil
	}
	return nil, fmt.Errorf("no control plane that stays answers, so the Node cannot be drained and deleted (add --force to reset without it):\n%s", indent(strings.Join(tried, "\n")))
}

// drainTimeout bounds kubectl drain: pods that cannot be evicted (a
// PodDisruptionBudget) would hold it for ever.
const drainTimeout = 5 * time.Minute

// removeNode drains h's Node and deletes it through cp, a control plane
// that stays and answers. Without one (the whole cluster goes, or none
// answers and --force said go on) there is nothing to drain it through.
func removeNode(ctx context.Context, cp *peerControlPlane, h *inventory.Host, force bool) error {
	if cp == nil {
		return nil
	}
	name := shell.Quote(h.Name)
	// Evictions honour PodDisruptionBudgets; --force then deletes what
	// they still hold. kubectl's own --force takes pods no controller
	// would make again: the host is being reset, they go with it.
	drain := func(extra string) string {
		return fmt.Sprintf("%s drain %s --ignore-daemonsets --delete-emptydir-data --force --timeout=%s%s",
			kubectlCmd(adminConf, "0"), name, drainTimeout, extra)
	}
	exists := kubectl(adminConf, "get", "node", h.Name, "-o", "name")
	line := fmt.Sprintf(`if %s >/dev/null 2>&1; then %s; fi`, exists, drain(""))
	if _, err := cp.ex.Run(ctx, transport.Command{Line: line, Timeout: drainTimeout + time.Minute}); err != nil {
		if !force {
			return fmt.Errorf("drain %s through %s: %w (add --force to delete its pods without eviction)", h.Name, cp.host.Name, err)
		}
		if _, err := cp.ex.Run(ctx, transport.Command{Line: drain(" --disable-eviction"), Timeout: drainTimeout + time.Minute}); err != nil {
			return fmt.Errorf("drain %s through %s: %w", h.Name, cp.host.Name, err)
		}
	}
	_, err := cp.ex.Run(ctx, transport.Command{Line: kubectl(adminConf, "delete", "node", h.Name, "--ignore-not-found")})
	return err
}

// What reset removes, and how it finds each.
const (
	cniConfigDir   = "/etc/cni/net.d"
	cniStateDir    = "/var/lib/cni"
	flannelRunDir  = "/run/flannel"
	kubeletDir     = "/var/lib/kubelet"
	chainPattern   = "(KUBE-|FLANNEL|CNI-)"
	cniLinkNames   = "flannel.1 cni0 vxlan.calico kube-ipvs0"
	iptablesTables = "filter nat mangle raw"
)

// resetProbe reads what the kube phase left on a host: the Node (asked
// with kubeconfig), the kubelet, the files and folders, iptables chains,
// nftables tables and links, and /etc/hosts.
func resetProbe(h *inventory.Host, kubeconfig string) string {
	lsA := func(key, dir string) string { return shell.Value(key, "ls -A "+dir) }
	return strings.Join([]string{
		nodeProbe(kubeconfig, h.Name),
		kubeletUnit("kubelet_active", ""),
		shell.Value("etc_kubernetes", "cd "+kubeDir+" && { ls -A | grep -vx manifests; ls -A manifests | sed 's|^|manifests/|'; }"),
		lsA("kubelet_state", kubeletDir),
		lsA("etcd_data", etcdDataDir),
		lsA("cni_config", cniConfigDir),
		shell.Value("cni_state", "for d in "+cniStateDir+" "+flannelRunDir+"; do [ -e $d ] && echo $d; done"),
		shell.Value("chains", fmt.Sprintf(`for ipt in iptables ip6tables; do command -v $ipt >/dev/null || continue; for t in %s; do $ipt -w -t $t -S 2>/dev/null | sed -n -E "s/^-N (%s[^ ]*)\$/$ipt:$t:\1/p"; done; done`,
			iptablesTables, chainPattern)),
		shell.Value("nft_tables", `command -v nft >/dev/null && nft list tables | sed -n -E 's/^table (ip|ip6) kube-proxy$/\1/p'`),
		shell.Value("links", "for l in "+cniLinkNames+"; do ip link show $l >/dev/null 2>&1 && echo $l; done"),
		shell.File("etchosts", "/etc/hosts"),
		shell.Status("has_kubeadm", "command -v kubeadm"),
	}, "\n")
}

// resetDiff lists what is left, one change for each kind of leftover; a
// clean host has none.
func resetDiff(in provision.Input) ([]provision.Planned[struct{}], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	var changes []provision.Planned[struct{}]
	add := func(key, summary, action string) {
		changes = append(changes, provision.Planned[struct{}]{Key: key, Summary: summary, Action: action})
	}
	if node := parseNode(st); node.Found {
		add("node", fmt.Sprintf("the cluster has the Node %s", in.Host.Name), "drain it and delete it through a control plane that stays")
	}
	if a := st.Values["kubelet_active"]; a == "active" || a == "activating" || a == "reloading" {
		add("kubelet", "the kubelet is "+a, "kubeadm reset (stops it and removes its containers)")
	}
	for _, f := range []struct{ key, what, action string }{
		{"etc_kubernetes", kubeDir + " holds", "remove them (kubeadm's kubeconfigs and certificates, the manifests, kprep's files)"},
		{"kubelet_state", kubeletDir + " holds", "unmount and remove them"},
		{"etcd_data", etcdDataDir + " holds", "remove them (the etcd member's data)"},
		{"cni_config", cniConfigDir + " holds", "remove them"},
		{"cni_state", "the CNI's state is left in", "remove " + cniStateDir + " and " + flannelRunDir},
		{"chains", "iptables chains are left:", "delete the rules that jump to them, then the chains"},
		{"nft_tables", "nftables has kube-proxy's tables of the families", "nft delete table"},
		{"links", "links are left:", "ip link delete"},
	} {
		if v := strings.TrimSpace(st.Values[f.key]); v != "" {
			add(f.key, f.what+" "+clipList(v), f.action)
		}
	}
	hosts, _ := st.File("etchosts")
	if strings.Contains(string(hosts), endpointMarker) {
		add("endpoint", "/etc/hosts has kprep's line for the API endpoint", "remove it")
	}
	return changes, nil
}

// clipList shortens a long space-separated list for a summary.
func clipList(s string) string {
	f := strings.Fields(s)
	if len(f) <= 6 {
		return strings.Join(f, " ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(f[:6], " "), len(f)-6)
}

// resetHost undoes the kube phase on the host itself, each command safe to
// run again: kubeadm reset (it stops the kubelet, removes the containers,
// the etcd member of a control plane and most of kubeadm's files), then
// what it leaves, in order.
func resetHost(ctx context.Context, t provision.Target, in provision.Input) error {
	st, err := shell.Parse(in.State)
	if err != nil {
		return err
	}
	c := in.Cluster
	steps := []struct{ label, line string }{}
	if st.Values["has_kubeadm"] == "0" {
		steps = append(steps, struct{ label, line string }{"", "kubeadm reset -f --cri-socket " + shell.Quote(cri(c))})
	}
	steps = append(steps, []struct{ label, line string }{
		{"", `systemctl stop kubelet.service || [ "$(systemctl is-active kubelet.service)" = inactive ]`},
		{"remove the CNI's configuration and state", emptyDir(cniConfigDir) + " && rm -rf " + cniStateDir + " " + flannelRunDir},
		{"remove the kube and CNI iptables chains", removeChains()},
		{"", fmt.Sprintf("for l in %s; do if ip link show $l >/dev/null 2>&1; then ip link delete $l || exit 1; fi; done", cniLinkNames)},
		{"remove the kubelet's state", fmt.Sprintf(`awk '$2 ~ "^%[1]s/" {print $2}' /proc/mounts | sort -r | while read -r m; do umount "$m" || umount -l "$m" || exit 1; done && %[2]s`, kubeletDir, emptyDir(kubeletDir))},
		{"remove " + kubeDir + " and the etcd data", fmt.Sprintf("find %[1]s -mindepth 1 -maxdepth 1 ! -name manifests -exec rm -rf {} + ; %[2]s && %[3]s", kubeDir, emptyDir(manifestsDir), emptyDir(etcdDataDir))},
	}...)
	for _, s := range steps {
		if _, err := t.Run(ctx, transport.Command{Line: s.line, Label: s.label, Timeout: kubeadmTimeout}); err != nil {
			return err
		}
	}
	hosts, _ := st.File("etchosts")
	if kept := withoutEndpointLine(string(hosts)); kept != string(hosts) {
		return t.WriteFile(ctx, "/etc/hosts", []byte(kept), transport.WriteOptions{Mode: 0o644})
	}
	return nil
}

// emptyDir removes everything in dir (which may be missing), staying on
// dir's file system.
func emptyDir(dir string) string {
	return fmt.Sprintf("{ [ ! -d %[1]s ] || find %[1]s -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} + ; }", dir)
}

// removeChains deletes the kube and CNI chains of every table, IPv4 and
// IPv6, and nothing else: first the rules of other chains that jump to
// them (Docker's and firewalld's stay), then their rules, then the chains;
// and kube-proxy's nftables tables.
func removeChains() string {
	return fmt.Sprintf(`for ipt in iptables ip6tables; do
  command -v $ipt >/dev/null || continue
  for t in %[1]s; do
    rules=$($ipt -w -t $t -S 2>/dev/null) || continue
    chains=$(printf '%%s\n' "$rules" | sed -n -E 's/^-N (%[2]s[^ ]*)$/\1/p')
    printf '%%s\n' "$rules" | grep -E '^-A ' | grep -vE '^-A %[2]s' | grep -E -- ' -[jg] %[2]s' | sed 's/^-A /-D /' |
      while IFS= read -r rule; do eval "$ipt -w -t $t $rule" || exit 1; done || exit 1
    for ch in $chains; do $ipt -w -t $t -F "$ch" || exit 1; done
    for ch in $chains; do $ipt -w -t $t -X "$ch" || exit 1; done
  done
done
if command -v nft >/dev/null; then
  for f in $(nft list tables | sed -n -E 's/^table (ip|ip6) kube-proxy$/\1/p'); do nft delete table $f kube-proxy || exit 1; done
fi
true`, iptablesTables, chainPattern)
}

// withoutEndpointLine returns /etc/hosts without kprep's endpoint line.
func withoutEndpointLine(hosts string) string {
	if !strings.Contains(hosts, endpointMarker) {
		return hosts
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(hosts, "\n"), "\n") {
		if !strings.HasSuffix(line, endpointMarker) {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}
