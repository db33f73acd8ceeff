package kube

import (
	"context"
	"fmt"

	"github.com/kprep/kprep/kube/kubeadmconfig"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

// JoinControlPlaneStep joins every control plane after the first, one at a
// time: each checks the cluster is healthy (the first control plane's
// /readyz, etcd included) before it joins, and its own API server is ready
// before the next one starts, so etcd never has two new members at once.
type JoinControlPlaneStep struct{}

// JoinWorkerStep joins the workers, all at once.
type JoinWorkerStep struct{}

// Name implements provision.Step.
func (JoinControlPlaneStep) Name() string { return "kube/join-control-plane" }

// Name implements provision.Step.
func (JoinWorkerStep) Name() string { return "kube/join-worker" }

// After implements provision.Sequenced: the cluster must be up.
func (JoinControlPlaneStep) After() []string { return []string{"kube/init"} }

// After implements provision.Sequenced: the cluster must be up.
func (JoinWorkerStep) After() []string { return []string{"kube/init"} }

// Serial implements provision.Serial.
func (JoinControlPlaneStep) Serial() bool { return true }

// AppliesTo implements provision.HostFilter.
func (JoinControlPlaneStep) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	return kubeadmconfig.RoleOf(c, h) == kubeadmconfig.RoleJoinControlPlane
}

// AppliesTo implements provision.HostFilter.
func (JoinWorkerStep) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	return kubeadmconfig.RoleOf(c, h) == kubeadmconfig.RoleJoinWorker
}

// Probe reads the Node through kubelet.conf (a node may read its own), the
// kubelet, leftovers and /etc/hosts.
func (JoinControlPlaneStep) Probe(h *inventory.Host, _ *inventory.Cluster) string {
	return membershipProbe(h, kubeletConf)
}

// Probe implements provision.Step.
func (JoinWorkerStep) Probe(h *inventory.Host, _ *inventory.Cluster) string {
	return membershipProbe(h, kubeletConf)
}

// Diff implements provision.Step.
func (JoinControlPlaneStep) Diff(in provision.Input) ([]provision.Planned[membership], error) {
	return membershipDiff(in, "kubeadm join --control-plane", kubeletConf)
}

// Diff implements provision.Step.
func (JoinWorkerStep) Diff(in provision.Input) ([]provision.Planned[membership], error) {
	return membershipDiff(in, "kubeadm join", kubeletConf)
}

// Apply implements provision.Step.
func (JoinControlPlaneStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[membership]) error {
	return applyJoin(ctx, t, in, changes)
}

// Apply implements provision.Step.
func (JoinWorkerStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[membership]) error {
	return applyJoin(ctx, t, in, changes)
}

func applyJoin(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[membership]) error {
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
			if err := kubeadmJoin(ctx, t, in); err != nil {
				return err
			}
			continue
		}
		if err := kubeletFixes(ctx, t, m, kubeletConf, h.Name); err != nil {
			return err
		}
	}
	return nil
}

// kubeadmJoin joins h with fresh credentials. The configuration holds the
// token (and a control plane's certificate key), so it lives on the host
// only while kubeadm reads it, readable by root alone.
func kubeadmJoin(ctx context.Context, t provision.Target, in provision.Input) error {
	c, h := in.Cluster, in.Host
	controlPlane := kubeadmconfig.RoleOf(c, h) == kubeadmconfig.RoleJoinControlPlane
	if controlPlane {
		if err := clusterHealthy(ctx, t, c); err != nil {
			return err
		}
	}
	creds, err := joinCredentials(ctx, t, c, h)
	if err != nil {
		return err
	}
	config, err := kubeadmconfig.Render(c, h, &creds)
	if err != nil {
		return err
	}
	if err := t.WriteFile(ctx, joinConfigPath, config, transport.WriteOptions{Mode: 0o600, NoBackup: true}); err != nil {
		return err
	}
	ignore, err := ignoreFlag()
	if err != nil {
		return err
	}
	line := fmt.Sprintf(`f=%s; kubeadm config validate --config "$f" && kubeadm join --config "$f"%s; rc=$?; rm -f "$f"; exit $rc`, joinConfigPath, ignore)
	if _, err := t.Run(ctx, transport.Command{Line: line, Timeout: kubeadmTimeout,
		Secrets: []string{creds.Token, creds.CertificateKey}}); err != nil {
		return err
	}
	if err := waitForNode(ctx, t, kubeletConf, h.Name); err != nil {
		return err
	}
	if !controlPlane {
		return nil
	}
	// Its own API server now answers: the endpoint's name can point there.
	if c.Kubernetes.LocalMode() {
		if err := pointEndpointAtSelf(ctx, t, in); err != nil {
			return err
		}
	}
	_, err = t.Run(ctx, transport.Command{Line: waitReadyz(adminConf), Label: "wait for " + h.Name + "'s API server to be ready", Timeout: registerTimeout + registerTimeout/2})
	return err
}

// clusterHealthy checks the first control plane's API server is ready,
// its etcd included, before a control plane joins: a join into a cluster
// whose etcd is unhealthy can cost the cluster its quorum.
func clusterHealthy(ctx context.Context, t provision.Target, c *inventory.Cluster) error {
	first := c.FirstControlPlane()
	cp, err := t.Peer(first.Name)
	if err != nil {
		return err
	}
	if _, err := cp.Run(ctx, transport.Command{Line: kubectl(adminConf, "get", "--raw", "/readyz?verbose")}); err != nil {
		return fmt.Errorf("the cluster is not healthy (the API server on %s is not ready, etcd included), so no control plane joins now: %w", first.Name, err)
	}
	return nil
}

// waitReadyz waits until the API server kubeconfig names answers /readyz.
func waitReadyz(kubeconfig string) string {
	get := kubectl(kubeconfig, "get", "--raw", "/readyz")
	return fmt.Sprintf(`i=0; until %s >/dev/null 2>&1; do i=$((i+1)); [ $i -ge %d ] && { %s; exit 1; }; sleep 2; done`,
		get, int(registerTimeout.Seconds()/2), get)
}

// pointEndpointAtSelf moves the endpoint's line in /etc/hosts to 127.0.0.1
// on a control plane that has just joined, as kube/endpoint wants it.
func pointEndpointAtSelf(ctx context.Context, t provision.Target, in provision.Input) error {
	return writeEndpointLine(ctx, t, in, "127.0.0.1")
}
