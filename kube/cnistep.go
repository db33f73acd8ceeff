package kube

import (
	"context"
	"fmt"

	"github.com/kprep/kprep/kube/cni"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// CNIStep installs the pod network (kubernetes.cni: flannel or calico)
// from the manifest kube/cni renders, on the first control plane once the
// cluster is up. It keeps the manifest it applied in
// /etc/kubernetes/kprep/cni.yaml: a manifest that differs from the
// inventory's, or a DaemonSet gone from the cluster, is applied again.
type CNIStep struct{}

const cniManifestPath = kprepKubeDir + "/cni.yaml"

// cniDaemonSet is the DaemonSet each CNI runs on every node, namespace/name.
var cniDaemonSet = map[string][2]string{
	"flannel": {"kube-flannel", "kube-flannel-ds"},
	"calico":  {"kube-system", "calico-node"},
}

// Name implements provision.Step.
func (CNIStep) Name() string { return "kube/cni" }

// After implements provision.Sequenced.
func (CNIStep) After() []string { return []string{"kube/init"} }

// AppliesTo implements provision.HostFilter: the first control plane, when
// kprep installs a CNI.
func (CNIStep) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	return c.FirstControlPlane() == h && c.Kubernetes.CNI != "none"
}

// Probe reads the manifest kprep applied and whether the CNI's DaemonSet
// is in the cluster.
func (CNIStep) Probe(_ *inventory.Host, c *inventory.Cluster) string {
	ds := cniDaemonSet[c.Kubernetes.CNI]
	return shell.File("manifest", cniManifestPath) + "\n" +
		shell.Status("daemonset", "[ -s "+adminConf+" ] && "+kubectl(adminConf, "-n", ds[0], "get", "daemonset", ds[1], "-o", "name"))
}

// Diff implements provision.Step.
func (CNIStep) Diff(in provision.Input) ([]provision.Planned[[]byte], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	want, err := cni.Manifest(in.Cluster)
	if err != nil {
		return nil, err
	}
	have, exists := st.File("manifest")
	ds := cniDaemonSet[in.Cluster.Kubernetes.CNI]
	summary := hostfile.Compare(cniManifestPath, have, exists, want)
	if summary == "" && st.Values["daemonset"] != "0" {
		summary = fmt.Sprintf("the DaemonSet %s/%s is not in the cluster", ds[0], ds[1])
	}
	if summary == "" {
		return nil, nil
	}
	return []provision.Planned[[]byte]{{Key: "manifest", Summary: summary,
		Action: fmt.Sprintf("write %s and kubectl apply it (%s)", cniManifestPath, in.Cluster.Kubernetes.CNI), Data: want}}, nil
}

// Apply implements provision.Step.
func (CNIStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[[]byte]) error {
	for _, c := range changes {
		if err := t.WriteFile(ctx, cniManifestPath, c.Data, transport.WriteOptions{Mode: 0o644, NoBackup: true}); err != nil {
			return err
		}
		if _, err := t.Run(ctx, transport.Command{Line: kubectl(adminConf, "apply", "-f", cniManifestPath)}); err != nil {
			return fmt.Errorf("apply the %s manifest: %w", in.Cluster.Kubernetes.CNI, err)
		}
	}
	return nil
}
