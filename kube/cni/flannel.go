package cni

import (
	"encoding/json"

	"github.com/kprep/kprep/provision/inventory"
)

// flannelNetConf is flanneld's net-conf.json.
type flannelNetConf struct {
	Network     string `json:"Network,omitempty"`
	EnableIPv4  bool   `json:"EnableIPv4"`
	IPv6Network string `json:"IPv6Network,omitempty"`
	EnableIPv6  bool   `json:"EnableIPv6"`
	// EnableNFTables makes flanneld write its masquerade rules with
	// nftables, as kube-proxy does in nftables mode.
	EnableNFTables bool           `json:"EnableNFTables"`
	Backend        flannelBackend `json:"Backend"`
}

type flannelBackend struct {
	Type string `json:"Type"`
}

// cniConfList is a CNI network configuration list.
type cniConfList struct {
	Name       string `json:"name"`
	CNIVersion string `json:"cniVersion"`
	Plugins    []any  `json:"plugins"`
}

// flannelConfList is 10-flannel.conflist: flannel, which delegates to the
// bridge plugin, then portmap for hostPort.
var flannelConfList = cniConfList{
	Name:       "cbr0",
	CNIVersion: "0.3.1",
	Plugins: []any{
		map[string]any{"type": "flannel", "delegate": map[string]any{"hairpinMode": true, "isDefaultGateway": true}},
		map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
	},
}

// flannelValues fill templates/files/cni/flannel.yaml; every field is a
// JSON-quoted string.
type flannelValues struct {
	Version        string
	Image          string
	CNIPluginImage string
	NetConf        string
	CNIConf        string
}

// Flannel renders flannel's manifest for the cluster.
func Flannel(c *inventory.Cluster) ([]byte, error) {
	v4, v6, err := podRanges(c)
	if err != nil {
		return nil, err
	}
	k := &c.Kubernetes
	netConf, err := json.MarshalIndent(flannelNetConf{
		Network: v4, EnableIPv4: v4 != "",
		IPv6Network: v6, EnableIPv6: v6 != "",
		EnableNFTables: k.KubeProxy.Mode == "nftables",
		Backend:        flannelBackend{Type: k.Flannel.Backend},
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	cniConf, err := json.MarshalIndent(flannelConfList, "", "  ")
	if err != nil {
		return nil, err
	}
	images := flannelImagesOf(c)
	return render("cni/flannel.yaml", flannelValues{
		Version:        FlannelVersion,
		Image:          quoted(images.flannel),
		CNIPluginImage: quoted(images.cniPlugin),
		NetConf:        quoted(string(netConf) + "\n"),
		CNIConf:        quoted(string(cniConf) + "\n"),
	})
}
