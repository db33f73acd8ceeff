package cni

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kprep/kprep/provision/inventory"
)

// calicoCRD is one CustomResourceDefinition Calico needs on the Kubernetes
// datastore.
type calicoCRD struct {
	Kind, Plural, Singular, Group, Version, Scope string
	// Approval is the api-approved.kubernetes.io annotation a CRD in a
	// *.k8s.io group must carry.
	Approval string
	// Status gives the CRD a status subresource.
	Status bool
}

// calicoCRDs are the resources Calico v3.31 keeps in the Kubernetes API:
// its own in crd.projectcalico.org, and the admin network policies of
// sigs.k8s.io/network-policy-api, which it enforces.
var calicoCRDs = func() []calicoCRD {
	var crds []calicoCRD
	for _, r := range []struct{ kind, plural, scope string }{
		{"BGPConfiguration", "bgpconfigurations", "Cluster"},
		{"BGPFilter", "bgpfilters", "Cluster"},
		{"BGPPeer", "bgppeers", "Cluster"},
		{"BlockAffinity", "blockaffinities", "Cluster"},
		{"CalicoNodeStatus", "caliconodestatuses", "Cluster"},
		{"ClusterInformation", "clusterinformations", "Cluster"},
		{"FelixConfiguration", "felixconfigurations", "Cluster"},
		{"GlobalNetworkPolicy", "globalnetworkpolicies", "Cluster"},
		{"GlobalNetworkSet", "globalnetworksets", "Cluster"},
		{"HostEndpoint", "hostendpoints", "Cluster"},
		{"IPAMBlock", "ipamblocks", "Cluster"},
		{"IPAMConfig", "ipamconfigs", "Cluster"},
		{"IPAMHandle", "ipamhandles", "Cluster"},
		{"IPPool", "ippools", "Cluster"},
		{"IPReservation", "ipreservations", "Cluster"},
		{"KubeControllersConfiguration", "kubecontrollersconfigurations", "Cluster"},
		{"NetworkPolicy", "networkpolicies", "Namespaced"},
		{"NetworkSet", "networksets", "Namespaced"},
		{"StagedGlobalNetworkPolicy", "stagedglobalnetworkpolicies", "Cluster"},
		{"StagedKubernetesNetworkPolicy", "stagedkubernetesnetworkpolicies", "Namespaced"},
		{"StagedNetworkPolicy", "stagednetworkpolicies", "Namespaced"},
		{"Tier", "tiers", "Cluster"},
	} {
		crds = append(crds, calicoCRD{Kind: r.kind, Plural: r.plural, Singular: strings.ToLower(r.kind),
			Group: "crd.projectcalico.org", Version: "v1", Scope: r.scope})
	}
	for _, r := range []struct{ kind, plural string }{
		{"AdminNetworkPolicy", "adminnetworkpolicies"},
		{"BaselineAdminNetworkPolicy", "baselineadminnetworkpolicies"},
	} {
		crds = append(crds, calicoCRD{Kind: r.kind, Plural: r.plural, Singular: strings.ToLower(r.kind),
			Group: "policy.networking.k8s.io", Version: "v1alpha1", Scope: "Cluster", Status: true,
			Approval: quoted("https://github.com/kubernetes-sigs/network-policy-api/pull/30")})
	}
	return crds
}()

// calicoEncapsulations maps kubernetes.calico.encapsulation, Calico's own
// names, to the default pool's modes and the networking backend: vxlan
// needs no BGP; IPIP and plain routes run BIRD.
var calicoEncapsulations = map[string]struct{ vxlan, ipip, backend string }{
	"VXLAN":            {"Always", "Never", "vxlan"},
	"VXLANCrossSubnet": {"CrossSubnet", "Never", "vxlan"},
	"IPIP":             {"Never", "Always", "bird"},
	"IPIPCrossSubnet":  {"Never", "CrossSubnet", "bird"},
	"None":             {"Never", "Never", "bird"},
}

// calicoCNIConf is the CNI configuration calico's install-cni writes; it
// fills in the __NAMES__ on each node.
var calicoCNIConf = cniConfList{
	Name:       "k8s-pod-network",
	CNIVersion: "1.0.0",
	Plugins: []any{
		map[string]any{
			"type":           "calico",
			"log_level":      "info",
			"log_file_path":  "/var/log/calico/cni/cni.log",
			"datastore_type": "kubernetes",
			"nodename":       "__KUBERNETES_NODE_NAME__",
			"mtu":            "__CNI_MTU__",
			"ipam":           map[string]string{"type": "calico-ipam"},
			"policy":         map[string]string{"type": "k8s"},
			"kubernetes":     map[string]string{"kubeconfig": "__KUBECONFIG_FILEPATH__"},
		},
		map[string]any{"type": "portmap", "snat": true, "capabilities": map[string]bool{"portMappings": true}},
	},
}

// calicoValues fill templates/files/cni/calico.yaml; the fields from the
// inventory are JSON-quoted strings.
type calicoValues struct {
	Version              string
	CRDs                 []calicoCRD
	Bindings             []string
	Backend              string
	BGP                  bool
	CNIConf              string
	CNIImage             string
	NodeImage            string
	KubeControllersImage string
	PodCIDR              string
	VXLANMode            string
	IPIPMode             string
}

// Calico renders Calico's manifest for the cluster.
func Calico(c *inventory.Cluster) ([]byte, error) {
	v4, v6, err := podRanges(c)
	if err != nil {
		return nil, err
	}
	if v6 != "" || v4 == "" {
		return nil, fmt.Errorf("kubernetes.podSubnet %q: kprep's Calico takes one IPv4 range; use flannel for dual stack or IPv6", c.Kubernetes.PodSubnet)
	}
	enc, ok := calicoEncapsulations[c.Kubernetes.Calico.Encapsulation]
	if !ok {
		return nil, fmt.Errorf("kubernetes.calico.encapsulation %q is not one kprep knows", c.Kubernetes.Calico.Encapsulation)
	}
	conf, err := json.MarshalIndent(calicoCNIConf, "", "  ")
	if err != nil {
		return nil, err
	}
	// install-cni puts the MTU in place of __CNI_MTU__ as it stands, and
	// the plugin wants a number: so it stands unquoted, as in Calico's own
	// manifest (the text is JSON once install-cni has filled it in).
	confText := strings.Replace(string(conf), `"__CNI_MTU__"`, `__CNI_MTU__`, 1)
	images := calicoImagesOf(c)
	return render("cni/calico.yaml", calicoValues{
		Version:              CalicoVersion,
		CRDs:                 calicoCRDs,
		Bindings:             []string{"calico-node", "calico-cni-plugin", "calico-kube-controllers"},
		Backend:              quoted(enc.backend),
		BGP:                  enc.backend == "bird",
		CNIConf:              quoted(confText),
		CNIImage:             quoted(images.cni),
		NodeImage:            quoted(images.node),
		KubeControllersImage: quoted(images.kubeControllers),
		PodCIDR:              quoted(v4),
		VXLANMode:            quoted(enc.vxlan),
		IPIPMode:             quoted(enc.ipip),
	})
}
