package kube

import (
	"context"
	"fmt"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// Whether a host is in the cluster is decided the same way for kubeadm
// init and join: its kubeconfig is there AND the API server has a Node of
// its name with its inventory address. Everything short of that is said
// in words and mended by the least that mends it.

// membership is what the init and join steps do on a host.
type membership struct {
	// Reset runs kubeadm reset first: an earlier init or join was cut off.
	Reset bool
	// Kubeadm runs kubeadm init or join.
	Kubeadm bool
	// StartKubelet enables and starts a stopped or disabled kubelet.
	StartKubelet bool
	// Register restarts the kubelet so it registers its deleted Node again.
	Register bool
}

// membershipProbe reads a host's standing: the Node as kubeconfig sees it,
// the kubelet, what earlier kubeadm runs left, and /etc/hosts.
func membershipProbe(h *inventory.Host, kubeconfig string) string {
	return strings.Join([]string{nodeProbe(kubeconfig, h.Name), kubeletProbe(), leftoversProbe(), endpointProbe()}, "\n")
}

// membershipDiff decides what a host needs to be a member. verb is
// "kubeadm init" or "kubeadm join"; kubeconfig the file the probe asked
// the API server with.
func membershipDiff(in provision.Input, verb, kubeconfig string) ([]provision.Planned[membership], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	h := in.Host
	node := parseNode(st)
	left := strings.Fields(st.Values["left"])
	switch {
	case node.NoKubectl:
		// Not a reason to reset anything: kube/packages installs kubectl
		// before this step runs, and the step is probed again then.
		return []provision.Planned[membership]{{Key: "unknown",
			Summary: fmt.Sprintf("whether %s is in the cluster is read with kubectl, which is not installed yet", h.Name),
			Action:  "checked again once kube/packages has installed kubectl"}}, nil
	case node.Found && !node.hasIP(h.Address):
		return nil, fmt.Errorf("the API server's Node %s has the address %s, but the inventory gives %s: kprep does not move a node; "+
			"remove it (kprep reset --hosts %s) and apply again, or fix the inventory", h.Name, strings.Join(node.IPs, ", "), h.Address, h.Name)
	case node.Found:
		var changes []provision.Planned[membership]
		if st.Values["kubelet_active"] != "active" || st.Values["kubelet_enabled"] != "enabled" {
			changes = append(changes, provision.Planned[membership]{Key: "kubelet",
				Summary: fmt.Sprintf("the kubelet is %s (at boot: %s)", orNone(st.Values["kubelet_active"]), orNone(st.Values["kubelet_enabled"])),
				Action:  "systemctl enable --now kubelet", Data: membership{StartKubelet: true}})
		}
		return changes, nil
	case node.Unreachable != "":
		return nil, fmt.Errorf("cannot tell whether %s is in the cluster: the API server did not answer with %s (%s); "+
			"kprep does not reset a host it cannot check: bring the API server back and apply again", h.Name, kubeconfig, node.Unreachable)
	case node.Checked:
		// The API server answered that it has no such Node: deleted by
		// hand, while the host still holds its credentials. The kubelet
		// registers it again when it starts.
		return []provision.Planned[membership]{{Key: "register",
			Summary: fmt.Sprintf("the API server has no Node %s, though the host has %s", h.Name, kubeconfig),
			Action:  "systemctl restart kubelet (it registers the Node again); wait for the Node", Data: membership{Register: true, StartKubelet: true}}}, nil
	case len(left) > 0:
		return []provision.Planned[membership]{{Key: "kubeadm",
			Summary: fmt.Sprintf("an earlier %s was cut off: %s", verb, strings.Join(left, " ")),
			Action:  "kubeadm reset -f, then " + verb, Data: membership{Reset: true, Kubeadm: true}}}, nil
	default:
		summary := h.Name + " is not in the cluster"
		if verb == "kubeadm init" {
			summary = "the cluster is not initialized"
		}
		return []provision.Planned[membership]{{Key: "kubeadm", Summary: summary, Action: verb, Data: membership{Kubeadm: true}}}, nil
	}
}

func orNone(s string) string {
	if s == "" {
		return "not installed"
	}
	return s
}

// kubeadmReset undoes what a cut-off init or join left, so kubeadm's own
// preflight finds a clean host.
func kubeadmReset(ctx context.Context, t provision.Target, c *inventory.Cluster) error {
	line := "kubeadm reset -f --cri-socket " + shell.Quote(cri(c))
	_, err := t.Run(ctx, transport.Command{Line: line, Timeout: kubeadmTimeout})
	return err
}

// kubeletFixes starts the kubelet, or restarts it so it registers its
// Node again, and waits until the API server has the Node.
func kubeletFixes(ctx context.Context, t provision.Target, m membership, kubeconfig, name string) error {
	if m.Register {
		if _, err := t.Run(ctx, transport.Command{Line: "systemctl enable kubelet.service && systemctl restart kubelet.service"}); err != nil {
			return err
		}
		return waitForNode(ctx, t, kubeconfig, name)
	}
	if m.StartKubelet {
		_, err := t.Run(ctx, transport.Command{Line: "systemctl enable --now kubelet.service"})
		return err
	}
	return nil
}

// waitForNode waits until the API server, asked with kubeconfig, has the
// Node: the kubelet registers it a moment after kubeadm is done.
func waitForNode(ctx context.Context, t provision.Target, kubeconfig, name string) error {
	line := fmt.Sprintf(`i=0; until %s >/dev/null 2>&1; do i=$((i+1)); [ $i -ge %d ] && { %s; exit 1; }; sleep 2; done`,
		kubectl(kubeconfig, "get", "node", name), int(registerTimeout.Seconds()/2), kubectl(kubeconfig, "get", "node", name))
	if _, err := t.Run(ctx, transport.Command{Line: line, Label: "wait for the API server to have Node " + name, Timeout: registerTimeout + kubeadmTimeout/10}); err != nil {
		return fmt.Errorf("the Node %s did not appear within %s: %w", name, registerTimeout, err)
	}
	return nil
}
