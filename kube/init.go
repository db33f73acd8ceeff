package kube

import (
	"context"
	"fmt"

	"github.com/kprep/kprep/kube/kubeadmconfig"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

// InitStep runs kubeadm init on the first control plane of the inventory,
// with the configuration `kprep render kubeadm` shows, checked by the
// host's own `kubeadm config validate` first. An init that was cut off is
// reset and run again; a cluster that is up but whose API server does not
// answer is reported, never initialized again.
type InitStep struct{}

// Name implements provision.Step.
func (InitStep) Name() string { return "kube/init" }

// AppliesTo implements provision.HostFilter: the first control plane.
func (InitStep) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	return c.FirstControlPlane() == h
}

// Probe reads the Node through admin.conf, the kubelet and leftovers.
func (InitStep) Probe(h *inventory.Host, _ *inventory.Cluster) string {
	return membershipProbe(h, adminConf)
}

// Diff implements provision.Step.
func (InitStep) Diff(in provision.Input) ([]provision.Planned[membership], error) {
	return membershipDiff(in, "kubeadm init", adminConf)
}

// Apply implements provision.Step.
func (InitStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[membership]) error {
	c, h := in.Cluster, in.Host
	for _, ch := range changes {
		m := ch.Data
		if ch.Key == "unknown" {
			return fmt.Errorf("kubectl is still not installed on %s; kube/packages should have installed it", h.Name)
		}
		if m.Reset {
			if err := kubeadmReset(ctx, t, c); err != nil {
				return err
			}
		}
		if m.Kubeadm {
			if err := kubeadmInit(ctx, t, c, h); err != nil {
				return err
			}
			continue
		}
		if err := kubeletFixes(ctx, t, m, adminConf, h.Name); err != nil {
			return err
		}
	}
	return nil
}

// kubeadmInit writes the init configuration (no secret in it: kubeadm
// makes the CA and keys on the host), runs kubeadm init, deletes the
// bootstrap token init makes (joins get one of their own) and waits for
// the Node.
func kubeadmInit(ctx context.Context, t provision.Target, c *inventory.Cluster, h *inventory.Host) error {
	config, err := kubeadmconfig.Render(c, h, nil)
	if err != nil {
		return err
	}
	if _, err := t.Run(ctx, transport.Command{Line: hostfile.CheckCandidate(initConfigPath, `kubeadm config validate --config "$f"`), Stdin: config}); err != nil {
		return fmt.Errorf("kubeadm config validate refused the init configuration (kprep render kubeadm --host %s shows it): %w", h.Name, err)
	}
	if err := t.WriteFile(ctx, initConfigPath, config, transport.WriteOptions{Mode: 0o600, NoBackup: true}); err != nil {
		return err
	}
	ignore, err := ignoreFlag()
	if err != nil {
		return err
	}
	if _, err := t.Run(ctx, transport.Command{Line: "kubeadm init --config " + initConfigPath + ignore, Timeout: kubeadmTimeout}); err != nil {
		return err
	}
	// The only tokens of a cluster this new are the one init made.
	deleteInitTokens := fmt.Sprintf(`kubeadm token list --kubeconfig %[1]s -o jsonpath='{.token}{"\n"}' | cut -d. -f1 | while read -r id; do [ -n "$id" ] && kubeadm token delete "$id" --kubeconfig %[1]s; done; true`, adminConf)
	if _, err := t.Run(ctx, transport.Command{Line: deleteInitTokens, Label: "delete the bootstrap token kubeadm init made"}); err != nil {
		return err
	}
	return waitForNode(ctx, t, adminConf, h.Name)
}
