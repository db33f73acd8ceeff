package inventory

import "time"

// Cluster is the whole inventory file (apiVersion kprep/v1, kind Cluster).
type Cluster struct {
	APIVersion  string     `yaml:"apiVersion"`
	Kind        string     `yaml:"kind"`
	Metadata    Metadata   `yaml:"metadata"`
	SSH         SSH        `yaml:"ssh"`
	Concurrency int        `yaml:"concurrency"`
	Hosts       []Host     `yaml:"hosts"`
	Hostprep    Hostprep   `yaml:"hostprep"`
	Docker      Docker     `yaml:"docker"`
	Kubernetes  Kubernetes `yaml:"kubernetes"`

	// Path is the file the inventory was read from; relative key files are
	// resolved against its folder.
	Path string `yaml:"-"`

	// src remembers where each value stood in the file, so that Validate
	// can place its errors; nil for a Cluster built in code.
	src *source
}

// Metadata names the cluster.
type Metadata struct {
	Name string `yaml:"name"`
}

// SSH says how to reach a host. The cluster-wide block holds defaults; a
// host's own block overrides them field by field.
type SSH struct {
	// Address is where kprep connects to log in, when that is not the
	// host's cluster address: a Vagrant machine's forwarded port on
	// 127.0.0.1, say, whose cluster address is its private network's. Only
	// a host's own ssh block may set it; empty means the host's address.
	Address         string        `yaml:"address"`
	User            string        `yaml:"user"`
	Port            int           `yaml:"port"`
	PrivateKeyFile  string        `yaml:"privateKeyFile"`
	PasswordEnv     string        `yaml:"passwordEnv"`
	Sudo            string        `yaml:"sudo"` // auto | true | false
	SudoPasswordEnv string        `yaml:"sudoPasswordEnv"`
	Bastion         *Bastion      `yaml:"bastion"`
	HostKeyPolicy   string        `yaml:"hostKeyPolicy"` // strict | accept-new | insecure
	KnownHostsFile  string        `yaml:"knownHostsFile"`
	ConnectTimeout  time.Duration `yaml:"connectTimeout"`
}

// Bastion is a jump host that connections to the cluster go through.
type Bastion struct {
	Address        string `yaml:"address"`
	Port           int    `yaml:"port"`
	User           string `yaml:"user"`
	PrivateKeyFile string `yaml:"privateKeyFile"`
	PasswordEnv    string `yaml:"passwordEnv"`
}

// Host is one machine of the cluster.
type Host struct {
	Name    string   `yaml:"name"`
	Address string   `yaml:"address"`
	Roles   []string `yaml:"roles"` // control-plane, worker
	// SSH holds this host's overrides as written; Connection is the merge of
	// the cluster defaults and these overrides, filled in by Load.
	SSH        *SSH `yaml:"ssh"`
	Connection SSH  `yaml:"-"`
	// Labels are set on the host's Node and kept there: a label removed by
	// hand comes back on the next apply.
	Labels map[string]string `yaml:"labels"`
	// Taints are set on the host's Node and kept there. The control-plane
	// taint is not written here: it follows the roles (see Kubernetes).
	Taints []Taint `yaml:"taints"`
}

// Taint is a Kubernetes node taint: pods without a matching toleration are
// kept off the node (NoSchedule, PreferNoSchedule) or evicted (NoExecute).
type Taint struct {
	Key    string `yaml:"key"`
	Value  string `yaml:"value"`
	Effect string `yaml:"effect"` // NoSchedule | PreferNoSchedule | NoExecute
}

// Role names.
const (
	RoleControlPlane = "control-plane"
	RoleWorker       = "worker"
)

// LoginAddress is where kprep connects to reach the host: its ssh.address
// when it has one, else its cluster address.
func (h *Host) LoginAddress() string {
	if h.Connection.Address != "" {
		return h.Connection.Address
	}
	return h.Address
}

// HasRole reports whether the host carries the role.
func (h *Host) HasRole(role string) bool {
	for _, r := range h.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Hostprep is the host preparation the kube phase needs.
type Hostprep struct {
	Firewall string            `yaml:"firewall"` // disable | open-ports | keep
	SELinux  string            `yaml:"selinux"`  // permissive | disabled | keep
	Swap     string            `yaml:"swap"`     // off | keep
	Sysctl   map[string]string `yaml:"sysctl"`
	Hostname *bool             `yaml:"hostname"`
}

// Docker is the Docker CE install and its daemon settings.
type Docker struct {
	Version            string   `yaml:"version"`
	Repo               string   `yaml:"repo"`
	RegistryMirrors    []string `yaml:"registryMirrors"`
	InsecureRegistries []string `yaml:"insecureRegistries"`
	LogDriver          string   `yaml:"logDriver"`
	// LogOpts must be written as YAML strings: dockerd refuses to start on
	// a number in log-opts, so `max-file: 3` is an error, not a conversion.
	LogOpts  map[string]string `yaml:"logOpts" kprep:"quoted"`
	DataRoot string            `yaml:"dataRoot"`
	Proxy    Proxy             `yaml:"proxy"`
	// LiveRestore keeps containers running while dockerd restarts, so a
	// restart for a changed setting does not stop the node's pods.
	LiveRestore bool `yaml:"liveRestore"`
	// GPGCheck makes yum check the packages' signatures with the repo's key.
	GPGCheck *bool `yaml:"gpgCheck"`
	// CentOS7Vault repoints CentOS 7's base repos at the vault.
	CentOS7Vault CentOS7Vault `yaml:"centos7Vault"`
}

// CentOS7Vault says where CentOS 7's base, updates and extras repos come
// from once their stock mirrorlist is gone (CentOS 7 ended on 2024-06-30):
// docker-ce needs container-selinux from extras.
type CentOS7Vault struct {
	// Enabled repoints CentOS-Base.repo when it still uses the dead
	// mirrorlist.centos.org or mirror.centos.org; false leaves it alone.
	Enabled *bool `yaml:"enabled"`
	// URL is the vault's root, laid out like vault.centos.org.
	URL string `yaml:"url"`
}

// Proxy is the HTTP(S) proxy the container runtimes pull through.
type Proxy struct {
	HTTP    string   `yaml:"http"`
	HTTPS   string   `yaml:"https"`
	NoProxy []string `yaml:"noProxy"`
}

// Kubernetes is the cluster kubeadm builds.
type Kubernetes struct {
	Version         string `yaml:"version"`
	Repo            string `yaml:"repo"`
	ImageRepository string `yaml:"imageRepository"`
	CRI             string `yaml:"cri"` // containerd | cri-dockerd
	PodSubnet       string `yaml:"podSubnet"`
	ServiceSubnet   string `yaml:"serviceSubnet"`
	// ControlPlaneEndpoint decides how nodes reach the API servers: set, it
	// is the host or host:port of your load balancer (external mode);
	// empty, kprep runs its local mode (see LocalEndpoint). kubeadm bakes
	// the endpoint into every kubeconfig, so it cannot change later.
	ControlPlaneEndpoint string `yaml:"controlPlaneEndpoint"`
	// LocalEndpoint configures the local mode; it is an error to set it
	// together with controlPlaneEndpoint.
	LocalEndpoint LocalEndpoint `yaml:"localEndpoint"`
	CNI           string        `yaml:"cni"` // flannel | calico | none
	// SandboxImage is the pod sandbox (pause) image the CRI runtime uses;
	// "" means imageRepository's pause at the version kubeadm expects.
	SandboxImage string `yaml:"sandboxImage"`
	// CRIDockerd is where cri-dockerd comes from when cri is cri-dockerd.
	CRIDockerd CRIDockerd `yaml:"criDockerd"`
	// Containerd holds containerd's CRI settings beyond the sandbox image
	// (cri: containerd).
	Containerd Containerd `yaml:"containerd"`
	// Namespaces are created once the cluster is up, and made again if
	// deleted; kprep never deletes one, even when it leaves this list.
	Namespaces []string `yaml:"namespaces"`
	// KubeProxy configures kube-proxy on every node.
	KubeProxy KubeProxy `yaml:"kubeProxy"`
	// Kubelet holds the kubelet settings an operator may need to change.
	Kubelet Kubelet `yaml:"kubelet"`
	// JoinTokenTTL is how long a bootstrap token kprep makes for a join
	// lives (at most 15m; kprep deletes it once the join is done).
	JoinTokenTTL time.Duration `yaml:"joinTokenTTL"`
	// ReadyTimeout is how long apply waits for the pods a host's kubelet
	// must pull and start: every node Ready once the CNI is installed,
	// CoreDNS, and in local mode a worker's API server proxy. Then it
	// reports why they are not.
	ReadyTimeout time.Duration `yaml:"readyTimeout"`
	// Flannel configures the flannel CNI (cni: flannel).
	Flannel Flannel `yaml:"flannel"`
	// Calico configures the Calico CNI (cni: calico).
	Calico Calico `yaml:"calico"`
}

// LocalEndpoint is kprep's local mode for the API endpoint, used when
// controlPlaneEndpoint is empty: the endpoint is a name that kprep's
// /etc/hosts block resolves on every host. A control plane resolves it to
// 127.0.0.1 and reaches its own API server; every other host resolves it to
// 127.0.0.1 too, where a proxy (a static pod) forwards to all the API
// servers; a host not yet joined resolves it to a running control plane.
// No load balancer, virtual IP or layer 2 is needed, and no kubeconfig is
// ever rewritten when control planes come or go.
type LocalEndpoint struct {
	// Name is the endpoint's host name. It goes into every kubeconfig and
	// the API server certificate; it must not be a name DNS answers.
	Name string `yaml:"name"`
	// Port is the endpoint's port, which the API servers bind in local mode.
	Port int `yaml:"port"`
	// ProxyImage is the TCP proxy run on hosts without an API server
	// (HAProxy: it checks each API server's health and stops sending to one
	// that is down).
	ProxyImage string `yaml:"proxyImage"`
}

// KubeProxy is kube-proxy's configuration.
type KubeProxy struct {
	// Mode is how kube-proxy programs Services: iptables, ipvs (needs the
	// ip_vs kernel modules; deprecated from Kubernetes 1.35) or nftables
	// (Kubernetes 1.31 and later).
	Mode string `yaml:"mode"`
	// ConntrackMaxPerCore is kube-proxy's conntrack.maxPerCore: it raises
	// nf_conntrack_max to this many entries per CPU. 0 leaves the host's
	// limit alone (needed where the sysctl is read-only, as in containers).
	ConntrackMaxPerCore *int `yaml:"conntrackMaxPerCore"`
}

// Kubelet is the part of the kubelet's configuration kprep lets you set;
// the rest (cgroup driver, CRI socket, node IP) follows from the inventory.
type Kubelet struct {
	// FailCgroupV1 makes the kubelet refuse to start on a cgroup v1 host.
	// The default is the kubelet's own for the version: false before
	// Kubernetes 1.35, true from 1.35. Set false to run 1.35+ on cgroup v1
	// (CentOS 7), which Kubernetes keeps only in maintenance mode.
	FailCgroupV1 *bool `yaml:"failCgroupV1"`
	// EvictionHard replaces the kubelet's hard eviction thresholds
	// (signal: quantity or percentage, "nodefs.available": "5%"); unset
	// keeps the kubelet's defaults. Set at kubeadm init: kubeadm hands the
	// cluster's kubelet configuration to every node that joins.
	EvictionHard map[string]string `yaml:"evictionHard"`
}

// Flannel is the flannel CNI's configuration.
type Flannel struct {
	// Backend carries pod traffic between nodes: vxlan (works across any
	// IP network) or host-gw (plain routes; every node on one L2 segment).
	Backend string `yaml:"backend"`
	// ImageRegistry holds flannel's images under their upstream paths
	// (flannel-io/flannel, flannel-io/flannel-cni-plugin).
	ImageRegistry string `yaml:"imageRegistry"`
}

// Calico is the Calico CNI's configuration.
type Calico struct {
	// Encapsulation is the IP pool's, in Calico's own words: VXLAN,
	// VXLANCrossSubnet, IPIP, IPIPCrossSubnet or None. VXLAN needs no BGP
	// and no ipip kernel module.
	Encapsulation string `yaml:"encapsulation"`
	// ImageRegistry holds Calico's images under their upstream paths
	// (calico/node, calico/cni, calico/kube-controllers).
	ImageRegistry string `yaml:"imageRegistry"`
}

// Containerd is the part of containerd's CRI configuration kprep lets you
// set.
type Containerd struct {
	// RestrictOOMScoreAdj makes containerd never give a container an
	// oom_score_adj below its own. Needed where the runtime may not lower
	// it: hosts that are themselves containers without CAP_SYS_RESOURCE
	// (kind's nodes, the kprep lab's hosts), where every pod sandbox fails
	// to start otherwise. Leave it false on machines.
	RestrictOOMScoreAdj bool `yaml:"restrictOOMScoreAdj"`
}

// CRIDockerd is the cri-dockerd release kprep installs: it ships no
// package repository, so it comes as a release tarball.
type CRIDockerd struct {
	Version string `yaml:"version"`
	// URL is the tarball's address; {version} and {arch} (amd64, arm64)
	// are filled in per host.
	URL string `yaml:"url"`
	// SHA256 is the tarball's SHA-256 per architecture (amd64, arm64), for
	// a version whose sums kprep does not know; a download that does not
	// match is never installed.
	SHA256 map[string]string `yaml:"sha256"`
}
