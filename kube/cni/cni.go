// Package cni renders the pod network manifest apply installs: flannel
// (the default) or Calico, at versions pinned here, from kprep's own
// manifests in templates/files/cni. The images come from the inventory's
// registry for that CNI, the pod range from kubernetes.podSubnet, and each
// node's pod traffic goes over the interface that holds its inventory
// address (the kubelet's node IP), never the one of the default route.
package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/templates"
)

// Pinned versions. The images are pulled from
// <kubernetes.flannel.imageRegistry>/flannel-io/... and
// <kubernetes.calico.imageRegistry>/calico/...
const (
	FlannelVersion          = "v0.28.10"
	FlannelCNIPluginVersion = "v1.9.1-flannel3" // the plugin image flannel v0.28.10's own manifest uses
	CalicoVersion           = "v3.31.7"
)

// Manifest returns the manifest for the inventory's CNI, or nil for cni: none.
func Manifest(c *inventory.Cluster) ([]byte, error) {
	switch c.Kubernetes.CNI {
	case "flannel":
		return Flannel(c)
	case "calico":
		return Calico(c)
	case "none":
		return nil, nil
	}
	return nil, fmt.Errorf("kubernetes.cni %q: kprep has no manifest for it", c.Kubernetes.CNI)
}

// Images lists the images the inventory's CNI pulls, for an offline
// registry to hold.
func Images(c *inventory.Cluster) []string {
	switch c.Kubernetes.CNI {
	case "flannel":
		i := flannelImagesOf(c)
		return []string{i.flannel, i.cniPlugin}
	case "calico":
		i := calicoImagesOf(c)
		return []string{i.cni, i.node, i.kubeControllers}
	}
	return nil
}

type flannelImages struct{ flannel, cniPlugin string }

func flannelImagesOf(c *inventory.Cluster) flannelImages {
	r := strings.TrimRight(c.Kubernetes.Flannel.ImageRegistry, "/")
	return flannelImages{
		flannel:   r + "/flannel-io/flannel:" + FlannelVersion,
		cniPlugin: r + "/flannel-io/flannel-cni-plugin:" + FlannelCNIPluginVersion,
	}
}

type calicoImages struct{ cni, node, kubeControllers string }

func calicoImagesOf(c *inventory.Cluster) calicoImages {
	r := strings.TrimRight(c.Kubernetes.Calico.ImageRegistry, "/")
	return calicoImages{
		cni:             r + "/calico/cni:" + CalicoVersion,
		node:            r + "/calico/node:" + CalicoVersion,
		kubeControllers: r + "/calico/kube-controllers:" + CalicoVersion,
	}
}

// quoted writes s as a JSON string, which YAML reads as a double-quoted
// scalar: whatever the inventory holds, it stays one value.
func quoted(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// podRanges splits kubernetes.podSubnet into its IPv4 and IPv6 ranges.
func podRanges(c *inventory.Cluster) (v4, v6 string, err error) {
	for _, part := range strings.Split(c.Kubernetes.PodSubnet, ",") {
		p, perr := netip.ParsePrefix(strings.TrimSpace(part))
		if perr != nil {
			return "", "", fmt.Errorf("kubernetes.podSubnet %q: %w", c.Kubernetes.PodSubnet, perr)
		}
		if p.Addr().Is4() {
			v4 = p.String()
		} else {
			v6 = p.String()
		}
	}
	return v4, v6, nil
}

func render(name string, data any) ([]byte, error) {
	out, err := templates.Render(name, data)
	if err != nil {
		return nil, fmt.Errorf("cni: %w", err)
	}
	return out, nil
}
