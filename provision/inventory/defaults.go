package inventory

import (
	"maps"
	"path/filepath"
	"strings"
	"time"
)

// The defaults, all in one place. APIVersion and Kind have none: a file must
// say what it is.
const (
	APIVersion  = "kprep/v1" // the only apiVersion this kprep reads
	KindCluster = "Cluster"  // the only kind

	defaultUser           = "root"
	defaultPort           = 22
	defaultSudo           = "auto"
	defaultHostKeyPolicy  = "accept-new"
	defaultKnownHosts     = "~/.ssh/known_hosts"
	defaultConnectTimeout = 10 * time.Second
	defaultConcurrency    = 20

	defaultFirewall = "disable"
	defaultSELinux  = "permissive"
	defaultSwap     = "off"

	defaultLogDriver  = "json-file"
	defaultDockerRepo = "https://download.docker.com"
	defaultVaultURL   = "https://vault.centos.org"

	// defaultKubeRepo is pkgs.k8s.io's root: each minor's repo is under it
	// (<root>/v1.34/rpm/), as under its mirrors' (mirrors.aliyun.com/kubernetes-new/core/stable).
	defaultKubeRepo      = "https://pkgs.k8s.io/core:/stable:"
	defaultCRI           = "containerd"
	defaultPodSubnet     = "10.244.0.0/16"
	defaultServiceSubnet = "10.96.0.0/12"
	defaultCNI           = "flannel"

	// The API endpoint's local mode (controlPlaneEndpoint empty). The name
	// is under .internal, which ICANN keeps for private use, so no DNS
	// server answers it and kprep's /etc/hosts entry is the only one.
	defaultLocalEndpointName = "kube-apiserver.kprep.internal"
	defaultAPIServerPort     = 6443 // kubeadm's bindPort
	// DefaultProxyImage is the Docker official HAProxy image (3.2 is an LTS
	// branch); Docker Hub pulls go through docker.registryMirrors. The
	// lab's registry carries an image under this name.
	DefaultProxyImage = "docker.io/library/haproxy:3.2.3-alpine"

	defaultKubeProxyMode = "iptables"
	// defaultConntrackMaxPerCore is kube-proxy's own default, written out so
	// the generated configuration says what it does.
	defaultConntrackMaxPerCore = 32768
	// A join token must outlive a join (image pulls included) and no more:
	// kprep deletes it after the join, and the TTL bounds a token a run
	// that died could not delete.
	defaultJoinTokenTTL = 15 * time.Minute
	defaultReadyTimeout = 10 * time.Minute

	defaultFlannelBackend       = "vxlan"
	defaultFlannelRegistry      = "ghcr.io" // ghcr.io/flannel-io/flannel
	defaultCalicoEncapsulation  = "VXLAN"
	defaultCalicoRegistry       = "quay.io" // quay.io/calico/node
	failCgroupV1DefaultsOnMinor = 35        // the kubelet's failCgroupV1 is true from 1.35

	defaultCRIDockerdVersion = "0.3.16"
	// defaultCRIDockerdURL is where Mirantis publishes cri-dockerd's releases.
	defaultCRIDockerdURL = "https://github.com/Mirantis/cri-dockerd/releases/download/v{version}/cri-dockerd-{version}.{arch}.tgz"
)

// defaultLogOpts keeps json-file logs from filling the disk, which dockerd's
// own default (no limit) does on a long-running node.
var defaultLogOpts = map[string]string{"max-size": "50m", "max-file": "3"}

// ApplyDefaults fills every field the file left out, resolves ~ and relative
// key paths, and sets each host's Connection to the cluster's ssh block
// merged with the host's own. Load calls it; code that builds a Cluster calls
// it before Validate. Calling it again changes nothing.
func ApplyDefaults(c *Cluster, opts Options) {
	opts = opts.complete()
	// An explicit 0 (port: 0) is kept, so that Validate reports it instead
	// of it silently becoming the default.
	unset := func(path string, zero bool) bool { return zero && !c.src.isSet(path) }

	s := &c.SSH
	s.User = orDefault(s.User, defaultUser)
	if unset("ssh.port", s.Port == 0) {
		s.Port = defaultPort
	}
	s.Sudo = orDefault(s.Sudo, defaultSudo)
	s.HostKeyPolicy = orDefault(s.HostKeyPolicy, defaultHostKeyPolicy)
	s.KnownHostsFile = orDefault(s.KnownHostsFile, defaultKnownHosts)
	if unset("ssh.connectTimeout", s.ConnectTimeout == 0) {
		s.ConnectTimeout = defaultConnectTimeout
	}
	paths := pathResolver(c.Path, opts)
	resolvePaths(s, paths)
	defaultBastion(s.Bastion, "ssh.bastion", s.User, unset, paths)

	for i := range c.Hosts {
		h := &c.Hosts[i]
		p := indexPath("hosts", i) + ".ssh"
		if h.SSH != nil {
			resolvePaths(h.SSH, paths)
			defaultBastion(h.SSH.Bastion, p+".bastion", s.User, unset, paths)
		}
		h.Connection = mergeSSH(*s, h.SSH, func(field string) bool { return c.src.isSet(p + "." + field) })
	}

	if unset("concurrency", c.Concurrency == 0) {
		c.Concurrency = defaultConcurrency
	}

	hp := &c.Hostprep
	hp.Firewall = orDefault(hp.Firewall, defaultFirewall)
	hp.SELinux = orDefault(hp.SELinux, defaultSELinux)
	hp.Swap = orDefault(hp.Swap, defaultSwap)
	if hp.Hostname == nil {
		yes := true
		hp.Hostname = &yes
	}

	d := &c.Docker
	d.LogDriver = orDefault(d.LogDriver, defaultLogDriver)
	d.Repo = orDefault(d.Repo, defaultDockerRepo)
	d.GPGCheck = orTrue(d.GPGCheck)
	d.CentOS7Vault.Enabled = orTrue(d.CentOS7Vault.Enabled)
	d.CentOS7Vault.URL = orDefault(d.CentOS7Vault.URL, defaultVaultURL)
	// nil, not empty: "logOpts: {}" asks for dockerd's own behaviour.
	if d.LogDriver == defaultLogDriver && d.LogOpts == nil {
		d.LogOpts = maps.Clone(defaultLogOpts)
	}

	k := &c.Kubernetes
	k.Repo = orDefault(k.Repo, defaultKubeRepo)
	k.CRI = orDefault(k.CRI, defaultCRI)
	k.PodSubnet = orDefault(k.PodSubnet, defaultPodSubnet)
	k.ServiceSubnet = orDefault(k.ServiceSubnet, defaultServiceSubnet)
	k.CNI = orDefault(k.CNI, defaultCNI)
	k.CRIDockerd.Version = orDefault(k.CRIDockerd.Version, defaultCRIDockerdVersion)
	k.CRIDockerd.URL = orDefault(k.CRIDockerd.URL, defaultCRIDockerdURL)

	// localEndpoint is filled only in local mode, so an empty Name tells
	// every consumer the endpoint is external.
	if k.ControlPlaneEndpoint == "" {
		le := &k.LocalEndpoint
		le.Name = orDefault(le.Name, defaultLocalEndpointName)
		if unset("kubernetes.localEndpoint.port", le.Port == 0) {
			le.Port = defaultAPIServerPort
		}
		le.ProxyImage = orDefault(le.ProxyImage, DefaultProxyImage)
	}
	k.KubeProxy.Mode = orDefault(k.KubeProxy.Mode, defaultKubeProxyMode)
	if k.KubeProxy.ConntrackMaxPerCore == nil {
		n := defaultConntrackMaxPerCore
		k.KubeProxy.ConntrackMaxPerCore = &n
	}
	if k.Kubelet.FailCgroupV1 == nil {
		if minor, ok := k.Minor(); ok {
			fail := minor >= failCgroupV1DefaultsOnMinor
			k.Kubelet.FailCgroupV1 = &fail
		}
	}
	if unset("kubernetes.joinTokenTTL", k.JoinTokenTTL == 0) {
		k.JoinTokenTTL = defaultJoinTokenTTL
	}
	if unset("kubernetes.readyTimeout", k.ReadyTimeout == 0) {
		k.ReadyTimeout = defaultReadyTimeout
	}
	k.Flannel.Backend = orDefault(k.Flannel.Backend, defaultFlannelBackend)
	k.Flannel.ImageRegistry = orDefault(k.Flannel.ImageRegistry, defaultFlannelRegistry)
	k.Calico.Encapsulation = orDefault(k.Calico.Encapsulation, defaultCalicoEncapsulation)
	k.Calico.ImageRegistry = orDefault(k.Calico.ImageRegistry, defaultCalicoRegistry)
}

// orTrue gives an unset switch its default, on.
func orTrue(b *bool) *bool {
	if b == nil {
		yes := true
		return &yes
	}
	return b
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// defaultBastion completes a jump host: port 22 and, when no user is given,
// the cluster's ssh user. Its key is not inherited: with none given the
// transport uses the agent, as ssh -J does.
func defaultBastion(b *Bastion, path, user string, unset func(string, bool) bool, paths func(string) string) {
	if b == nil {
		return
	}
	if unset(path+".port", b.Port == 0) {
		b.Port = defaultPort
	}
	b.User = orDefault(b.User, user)
	b.PrivateKeyFile = paths(b.PrivateKeyFile)
}

// mergeSSH overlays a host's ssh block on the cluster's, field by field; a
// host's bastion replaces the cluster's whole. isSet tells an explicit zero
// in the host block from an absent field.
func mergeSSH(base SSH, host *SSH, isSet func(field string) bool) SSH {
	m := base
	if host != nil {
		over := func(dst *string, v string) {
			if v != "" {
				*dst = v
			}
		}
		over(&m.Address, host.Address)
		over(&m.User, host.User)
		over(&m.PrivateKeyFile, host.PrivateKeyFile)
		over(&m.PasswordEnv, host.PasswordEnv)
		over(&m.Sudo, host.Sudo)
		over(&m.SudoPasswordEnv, host.SudoPasswordEnv)
		over(&m.HostKeyPolicy, host.HostKeyPolicy)
		over(&m.KnownHostsFile, host.KnownHostsFile)
		if host.Port != 0 || isSet("port") {
			m.Port = host.Port
		}
		if host.ConnectTimeout != 0 || isSet("connectTimeout") {
			m.ConnectTimeout = host.ConnectTimeout
		}
		if host.Bastion != nil {
			m.Bastion = host.Bastion
		}
	}
	if m.Bastion != nil {
		// A copy, so that changing one host's connection changes no other.
		b := *m.Bastion
		m.Bastion = &b
	}
	return m
}

func resolvePaths(s *SSH, paths func(string) string) {
	s.PrivateKeyFile = paths(s.PrivateKeyFile)
	s.KnownHostsFile = paths(s.KnownHostsFile)
}

// pathResolver expands ~ to the home folder and makes relative paths
// absolute against the inventory file's folder, so that a key path in the
// file means the same wherever kprep is run from.
func pathResolver(inventory string, opts Options) func(string) string {
	base := ""
	if inventory != "" {
		base = filepath.Dir(inventory)
		if abs, err := filepath.Abs(base); err == nil {
			base = abs
		}
	}
	return func(p string) string {
		if p == "~" || strings.HasPrefix(p, "~/") {
			home, err := opts.HomeDir()
			if err != nil || home == "" {
				return p // left as written; Validate then says the file is missing
			}
			return filepath.Join(home, p[1:])
		}
		if p == "" || filepath.IsAbs(p) || base == "" {
			return p
		}
		return filepath.Join(base, p)
	}
}
