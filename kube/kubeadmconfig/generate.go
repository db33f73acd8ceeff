package kubeadmconfig

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/provision/inventory"
)

// Role is what kubeadm does on a host.
type Role string

// The roles a host can have in the kube phase.
const (
	// RoleInit is kubeadm init, on the first control plane in the file.
	RoleInit Role = "init"
	// RoleJoinControlPlane is kubeadm join --control-plane, on every other
	// control plane.
	RoleJoinControlPlane Role = "join-control-plane"
	// RoleJoinWorker is kubeadm join, on every host that is not a control plane.
	RoleJoinWorker Role = "join-worker"
)

// RoleOf tells what kubeadm does on h.
func RoleOf(c *inventory.Cluster, h *inventory.Host) Role {
	switch {
	case c.FirstControlPlane() == h:
		return RoleInit
	case h.HasRole(inventory.RoleControlPlane):
		return RoleJoinControlPlane
	default:
		return RoleJoinWorker
	}
}

// Credentials are what a join needs from the running cluster. They are
// secrets: whoever holds them can join the cluster until the token expires.
type Credentials struct {
	// Token is a bootstrap token, "abcdef.0123456789abcdef".
	Token string
	// CACertHash is "sha256:<hex>" of the cluster CA's public key.
	CACertHash string
	// CertificateKey decrypts the control-plane certificates kubeadm
	// init phase upload-certs stored; control-plane joins only.
	CertificateKey string
}

// Placeholders stand in for the credentials in a render without them. They
// are well-formed, so kubeadm validates the configuration as it is.
const (
	PlaceholderToken          = "000000.0000000000000000"
	PlaceholderCACertHash     = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	PlaceholderCertificateKey = "0000000000000000000000000000000000000000000000000000000000000000"
	placeholderNote           = "placeholder: kprep apply puts the real value here"
)

// Placeholders returns the credentials a render without a cluster shows.
func Placeholders() Credentials {
	return Credentials{Token: PlaceholderToken, CACertHash: PlaceholderCACertHash, CertificateKey: PlaceholderCertificateKey}
}

// API groups and versions of the documents.
const (
	kubeadmV1beta4 = "kubeadm.k8s.io/v1beta4"
	kubeadmV1beta3 = "kubeadm.k8s.io/v1beta3"
	kubeletV1beta1 = "kubelet.config.k8s.io/v1beta1"
	kubeProxyV1a1  = "kubeproxy.config.k8s.io/v1alpha1"
	// v1beta4 is read by kubeadm 1.31 and later.
	v1beta4FromMinor = 31
	// The kubelet has failCgroupV1 from 1.31.
	failCgroupV1FromMinor = 31

	defaultBindPort        = 6443
	defaultImageRepository = "registry.k8s.io"
	bootstrapTokenGroup    = "system:bootstrappers:kubeadm:default-node-token"
)

// CRISockets maps kubernetes.cri to the socket kubeadm and the kubelet use.
var CRISockets = map[string]string{
	"containerd":  "unix:///run/containerd/containerd.sock",
	"cri-dockerd": "unix:///run/cri-dockerd.sock",
}

// Render returns the kubeadm configuration for h, as kubeadm reads it from
// --config: the documents of kubeadm init on the first control plane, the
// JoinConfiguration elsewhere. Joins take creds; a nil creds renders the
// placeholders. c must have passed inventory.Validate.
func Render(c *inventory.Cluster, h *inventory.Host, creds *Credentials) ([]byte, error) {
	g, err := newGenerator(c, h)
	if err != nil {
		return nil, err
	}
	role := RoleOf(c, h)
	var docs []any
	switch role {
	case RoleInit:
		docs = []any{g.initConfiguration(), g.clusterConfiguration(), g.kubeletConfiguration(), g.kubeProxyConfiguration()}
	default:
		if creds == nil {
			p := Placeholders()
			creds = &p
		}
		j, err := g.joinConfiguration(role, *creds)
		if err != nil {
			return nil, err
		}
		docs = []any{j}
	}
	return g.encode(role, docs)
}

// generator holds what every document of one host is made from.
type generator struct {
	c        *inventory.Cluster
	h        *inventory.Host
	minor    int
	nodeIP   netip.Addr
	v1beta4  bool
	endpoint string // controlPlaneEndpoint, always with a port
}

func newGenerator(c *inventory.Cluster, h *inventory.Host) (*generator, error) {
	minor, ok := c.Kubernetes.Minor()
	if !ok {
		return nil, fmt.Errorf("kubernetes.version %q is not a version", c.Kubernetes.Version)
	}
	ip, err := netip.ParseAddr(h.Address)
	if err != nil {
		return nil, fmt.Errorf("host %s: address %q is a name, but kubeadm advertises and registers a node by its IP address; give the host's IP as its address", h.Name, h.Address)
	}
	g := &generator{c: c, h: h, minor: minor, nodeIP: ip.Unmap(), v1beta4: minor >= v1beta4FromMinor}
	g.endpoint = c.Kubernetes.APIEndpoint()
	if _, _, err := net.SplitHostPort(g.endpoint); err != nil {
		// A load balancer written without a port listens on the API
		// servers' port, as kubeadm assumes.
		g.endpoint = net.JoinHostPort(g.endpoint, strconv.Itoa(defaultBindPort))
	}
	if _, ok := CRISockets[c.Kubernetes.CRI]; !ok {
		return nil, fmt.Errorf("kubernetes.cri %q has no CRI socket kprep knows", c.Kubernetes.CRI)
	}
	return g, nil
}

func (g *generator) kubeadmAPI() string {
	if g.v1beta4 {
		return kubeadmV1beta4
	}
	return kubeadmV1beta3
}

// bindPort is the port this host's API server listens on: the endpoint's
// port in local mode, where the name resolves to 127.0.0.1 on control
// planes; kubeadm's 6443 behind a load balancer.
func (g *generator) bindPort() int {
	if g.c.Kubernetes.LocalMode() {
		return g.c.Kubernetes.LocalEndpoint.Port
	}
	return defaultBindPort
}

func (g *generator) initConfiguration() initConfiguration {
	return initConfiguration{
		typeMeta: typeMeta{g.kubeadmAPI(), "InitConfiguration"},
		BootstrapTokens: []bootstrapToken{{
			TTL:         g.c.Kubernetes.JoinTokenTTL.String(),
			Description: "made by kubeadm init for kprep; kprep makes a fresh token for each join",
			Usages:      []string{"signing", "authentication"},
			Groups:      []string{bootstrapTokenGroup},
		}},
		LocalAPIEndpoint: apiEndpoint{AdvertiseAddress: g.nodeIP.String(), BindPort: g.bindPort()},
		NodeRegistration: g.nodeRegistration(),
	}
}

func (g *generator) nodeRegistration() nodeRegistration {
	taints := []taint{}
	if g.h.KeepsControlPlaneTaint() {
		taints = append(taints, taint{Key: inventory.ControlPlaneTaintKey, Effect: "NoSchedule"})
	}
	for _, t := range g.h.Taints {
		taints = append(taints, taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
	}
	return nodeRegistration{
		Name:      g.h.Name,
		CRISocket: CRISockets[g.c.Kubernetes.CRI],
		// The kubelet would otherwise pick the address of the default
		// route, which on a Vagrant box is the NAT 10.0.2.15 every box shares.
		KubeletExtraArgs: extraArgs{asList: g.v1beta4, args: []arg{{Name: "node-ip", Value: g.nodeIP.String()}}},
		Taints:           taints,
	}
}

func (g *generator) clusterConfiguration() clusterConfiguration {
	k := &g.c.Kubernetes
	repo := k.ImageRepository
	if repo == "" {
		repo = defaultImageRepository
	}
	return clusterConfiguration{
		typeMeta:             typeMeta{g.kubeadmAPI(), "ClusterConfiguration"},
		KubernetesVersion:    "v" + k.Version,
		ControlPlaneEndpoint: g.endpoint,
		ImageRepository:      repo,
		Networking:           networking{PodSubnet: k.PodSubnet, ServiceSubnet: k.ServiceSubnet},
		APIServer:            apiServer{CertSANs: g.certSANs()},
	}
}

// certSANs names every way a client reaches an API server: the endpoint,
// each control plane by name and address (so one can be reached directly
// while the endpoint is down), and the loopback a local-mode host uses.
func (g *generator) certSANs() []string {
	var sans []string
	add := func(s string) {
		if s != "" && !slices.Contains(sans, s) {
			sans = append(sans, s)
		}
	}
	host, _, _ := net.SplitHostPort(g.endpoint)
	add(host)
	for _, cp := range g.c.ControlPlanes() {
		add(cp.Name)
		if ip, err := netip.ParseAddr(cp.Address); err == nil {
			add(ip.Unmap().String())
		} else {
			add(cp.Address)
		}
	}
	add("127.0.0.1")
	add("localhost")
	return sans
}

func (g *generator) kubeletConfiguration() kubeletConfiguration {
	kc := kubeletConfiguration{
		typeMeta: typeMeta{kubeletV1beta1, "KubeletConfiguration"},
		// kprep's runtime steps set containerd's SystemdCgroup and dockerd's
		// native.cgroupdriver to systemd; the kubelet must match them.
		CgroupDriver: "systemd",
		EvictionHard: g.c.Kubernetes.Kubelet.EvictionHard,
	}
	if fail := g.c.Kubernetes.Kubelet.FailCgroupV1; fail != nil && g.minor >= failCgroupV1FromMinor {
		v := *fail
		kc.FailCgroupV1 = &v
	}
	return kc
}

func (g *generator) kubeProxyConfiguration() kubeProxyConfiguration {
	kp := &g.c.Kubernetes.KubeProxy
	maxPerCore := 0
	if kp.ConntrackMaxPerCore != nil {
		maxPerCore = *kp.ConntrackMaxPerCore
	}
	return kubeProxyConfiguration{
		typeMeta:  typeMeta{kubeProxyV1a1, "KubeProxyConfiguration"},
		Mode:      kp.Mode,
		Conntrack: conntrack{MaxPerCore: maxPerCore},
	}
}

func (g *generator) joinConfiguration(role Role, creds Credentials) (joinConfiguration, error) {
	if creds.Token == "" || creds.CACertHash == "" {
		return joinConfiguration{}, fmt.Errorf("host %s: a join needs a bootstrap token and the CA hash", g.h.Name)
	}
	j := joinConfiguration{
		typeMeta: typeMeta{g.kubeadmAPI(), "JoinConfiguration"},
		Discovery: discovery{BootstrapToken: bootstrapTokenDiscovery{
			APIServerEndpoint: g.endpoint,
			Token:             creds.Token,
			CACertHashes:      []string{creds.CACertHash},
		}},
		NodeRegistration: g.nodeRegistration(),
	}
	if role == RoleJoinControlPlane {
		if creds.CertificateKey == "" {
			return joinConfiguration{}, fmt.Errorf("host %s: a control-plane join needs the certificate key", g.h.Name)
		}
		j.ControlPlane = &joinControlPlane{
			LocalAPIEndpoint: apiEndpoint{AdvertiseAddress: g.nodeIP.String(), BindPort: g.bindPort()},
			CertificateKey:   creds.CertificateKey,
		}
	}
	return j, nil
}

// encode writes the documents as one YAML stream, with a comment saying
// what it is and each placeholder marked.
func (g *generator) encode(role Role, docs []any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	for i, d := range docs {
		var n yaml.Node
		if err := n.Encode(d); err != nil {
			return nil, fmt.Errorf("kubeadm config for %s: %w", g.h.Name, err)
		}
		markPlaceholders(&n)
		if i == 0 {
			n.HeadComment = fmt.Sprintf("kubeadm configuration of %s (%s), Kubernetes %s, written by kprep", g.h.Name, role, g.c.Kubernetes.Version)
		}
		if err := enc.Encode(&n); err != nil {
			return nil, fmt.Errorf("kubeadm config for %s: %w", g.h.Name, err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// markPlaceholders puts a comment beside every placeholder value.
func markPlaceholders(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case PlaceholderToken, PlaceholderCACertHash, PlaceholderCertificateKey:
			n.LineComment = placeholderNote
		}
	}
	for _, c := range n.Content {
		markPlaceholders(c)
	}
}
