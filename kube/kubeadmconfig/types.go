package kubeadmconfig

import "gopkg.in/yaml.v3"

// The documents kprep writes, as typed values. Each holds only the fields
// kprep sets; kubeadm defaults the rest. The field names are kubeadm's
// (kubeadm.k8s.io/v1beta4 and v1beta3, kubelet.config.k8s.io/v1beta1,
// kubeproxy.config.k8s.io/v1alpha1), checked against the real kubeadm by the
// test in test/kubebuild.

// typeMeta starts every document.
type typeMeta struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
}

type initConfiguration struct {
	typeMeta         `yaml:",inline"`
	BootstrapTokens  []bootstrapToken `yaml:"bootstrapTokens"`
	LocalAPIEndpoint apiEndpoint      `yaml:"localAPIEndpoint"`
	NodeRegistration nodeRegistration `yaml:"nodeRegistration"`
}

// bootstrapToken is the token kubeadm init makes. Without one in the
// configuration kubeadm makes a token that lives 24 hours; kprep's lives
// kubernetes.joinTokenTTL.
type bootstrapToken struct {
	TTL         string   `yaml:"ttl"`
	Description string   `yaml:"description"`
	Usages      []string `yaml:"usages"`
	Groups      []string `yaml:"groups"`
}

type apiEndpoint struct {
	AdvertiseAddress string `yaml:"advertiseAddress"`
	BindPort         int    `yaml:"bindPort"`
}

type nodeRegistration struct {
	Name             string    `yaml:"name"`
	CRISocket        string    `yaml:"criSocket"`
	KubeletExtraArgs extraArgs `yaml:"kubeletExtraArgs"`
	// Taints is always written: kubeadm reads a missing list as "the
	// control-plane taint on control planes", an empty one as "none".
	Taints []taint `yaml:"taints"`
}

type taint struct {
	Key    string `yaml:"key"`
	Value  string `yaml:"value,omitempty"`
	Effect string `yaml:"effect"`
}

// extraArgs are command-line flags for a component: a list of name/value
// pairs in v1beta4, a mapping in v1beta3.
type extraArgs struct {
	args   []arg
	asList bool
}

type arg struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// MarshalYAML writes the flags in the form the API version takes.
func (e extraArgs) MarshalYAML() (any, error) {
	if e.asList {
		return e.args, nil
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, a := range e.args {
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: a.Name},
			&yaml.Node{Kind: yaml.ScalarNode, Value: a.Value, Style: yaml.DoubleQuotedStyle})
	}
	return m, nil
}

type clusterConfiguration struct {
	typeMeta             `yaml:",inline"`
	KubernetesVersion    string     `yaml:"kubernetesVersion"`
	ControlPlaneEndpoint string     `yaml:"controlPlaneEndpoint"`
	ImageRepository      string     `yaml:"imageRepository"`
	Networking           networking `yaml:"networking"`
	APIServer            apiServer  `yaml:"apiServer"`
}

type networking struct {
	PodSubnet     string `yaml:"podSubnet"`
	ServiceSubnet string `yaml:"serviceSubnet"`
}

type apiServer struct {
	CertSANs []string `yaml:"certSANs"`
}

type kubeletConfiguration struct {
	typeMeta     `yaml:",inline"`
	CgroupDriver string `yaml:"cgroupDriver"`
	// FailCgroupV1 is left out before Kubernetes 1.31, whose kubelet lacks it.
	FailCgroupV1 *bool `yaml:"failCgroupV1,omitempty"`
	// EvictionHard is the inventory's, when it sets one.
	EvictionHard map[string]string `yaml:"evictionHard,omitempty"`
}

type kubeProxyConfiguration struct {
	typeMeta  `yaml:",inline"`
	Mode      string    `yaml:"mode"`
	Conntrack conntrack `yaml:"conntrack"`
}

type conntrack struct {
	MaxPerCore int `yaml:"maxPerCore"`
}

type joinConfiguration struct {
	typeMeta         `yaml:",inline"`
	Discovery        discovery         `yaml:"discovery"`
	NodeRegistration nodeRegistration  `yaml:"nodeRegistration"`
	ControlPlane     *joinControlPlane `yaml:"controlPlane,omitempty"`
}

type discovery struct {
	BootstrapToken bootstrapTokenDiscovery `yaml:"bootstrapToken"`
}

// bootstrapTokenDiscovery pins the cluster CA by the hash of its public
// key: kprep never sets unsafeSkipCAVerification.
type bootstrapTokenDiscovery struct {
	APIServerEndpoint string   `yaml:"apiServerEndpoint"`
	Token             string   `yaml:"token"`
	CACertHashes      []string `yaml:"caCertHashes"`
}

type joinControlPlane struct {
	LocalAPIEndpoint apiEndpoint `yaml:"localAPIEndpoint"`
	CertificateKey   string      `yaml:"certificateKey"`
}
