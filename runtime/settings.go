package runtime

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/hashicorp/go-version"

	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
)

// This file holds the pure helpers several steps share: what the inventory
// asks of the runtime, worked out once.

// Paths of the files the runtime steps write or read.
const (
	daemonJSONPath       = "/etc/docker/daemon.json"
	containerdConfigPath = "/etc/containerd/config.toml"
	// containerdCertsDir holds one folder per registry with its hosts.toml.
	containerdCertsDir = "/etc/containerd/certs.d"
	criDockerdBinary   = "/usr/bin/cri-dockerd"
)

// defaultImageRepository is where kubeadm pulls from when the inventory
// names no mirror.
const defaultImageRepository = "registry.k8s.io"

// pauseVersions are the pause image versions kubeadm expects, by the first
// Kubernetes minor that moved to each (cmd/kubeadm/app/constants
// PauseVersion). kubeadm's preflight warns when the runtime's sandbox image
// differs, and pods wait on a pull the node may not be able to make.
var pauseVersions = []struct {
	minor   int
	version string
}{
	{36, "3.10.2"},
	{34, "3.10.1"},
	{31, "3.10"},
	{26, "3.9"},
	{25, "3.8"},
	{24, "3.7"},
	{0, "3.6"},
}

// sandboxImage is the pod sandbox image the CRI runtime is told to use:
// the inventory's own, or the pause image kubeadm expects for the
// Kubernetes version, from kubernetes.imageRepository.
func sandboxImage(c *inventory.Cluster) string {
	if c.Kubernetes.SandboxImage != "" {
		return c.Kubernetes.SandboxImage
	}
	return kubeadmPauseImage(c)
}

// kubeadmPauseImage is the pause image kubeadm lists (and pulls) for the
// Kubernetes version, from kubernetes.imageRepository.
func kubeadmPauseImage(c *inventory.Cluster) string {
	k := c.Kubernetes
	repo := strings.TrimRight(k.ImageRepository, "/")
	if repo == "" {
		repo = defaultImageRepository
	}
	minor := 0
	if v, err := version.NewVersion(k.Version); err == nil && len(v.Segments()) > 1 {
		minor = v.Segments()[1]
	}
	for _, p := range pauseVersions {
		if minor >= p.minor {
			return repo + "/pause:" + p.version
		}
	}
	return repo + "/pause:3.6"
}

// dockerBaseURL is the Docker CE mirror's root, without a trailing slash.
func dockerBaseURL(c *inventory.Cluster) string {
	return strings.TrimRight(c.Docker.Repo, "/")
}

// dockerYumTree returns the Docker CE tree and release an EL host takes
// its packages from: Rocky, Alma and RHEL have linux/rhel/N; CentOS and
// the EL-likes without a tree of their own (openEuler, Kylin) use
// linux/centos/N, with N the EL major the facts map them to (openEuler
// 22.03 is 8). The number is written out rather than left to $releasever,
// which is "22.03LTS" on openEuler and "8.6" on a RHEL locked to a minor.
func dockerYumTree(f facts.Facts) (tree string, release int, err error) {
	if f.Major < 7 {
		return "", 0, fmt.Errorf("there are no Docker CE packages for %s (EL %d); kprep supports EL 7 and later", f.OSName, f.Major)
	}
	switch strings.ToLower(f.OSID) {
	case "rocky", "almalinux", "rhel":
		return "rhel", f.Major, nil
	}
	return "centos", f.Major, nil
}

// dockerAptDistro returns the Docker CE apt tree for a Debian-family host.
func dockerAptDistro(f facts.Facts) (string, error) {
	id := strings.ToLower(f.OSID)
	if id != "ubuntu" && id != "debian" {
		return "", fmt.Errorf("there is no Docker CE apt repo for %s; kprep supports Ubuntu and Debian", f.OSName)
	}
	if f.Codename == "" {
		return "", fmt.Errorf("%s: the OS codename is unknown (VERSION_CODENAME in /etc/os-release), so the Docker apt suite cannot be chosen", f.OSName)
	}
	return id, nil
}

// proxyEnv is the environment the proxy drop-ins give docker and containerd,
// in the order they are written; nil when the inventory has no proxy.
func proxyEnv(c *inventory.Cluster) [][2]string {
	p := c.Docker.Proxy
	if p.HTTP == "" && p.HTTPS == "" {
		return nil
	}
	var env [][2]string
	if p.HTTP != "" {
		env = append(env, [2]string{"HTTP_PROXY", p.HTTP})
	}
	if p.HTTPS != "" {
		env = append(env, [2]string{"HTTPS_PROXY", p.HTTPS})
	}
	return append(env, [2]string{"NO_PROXY", strings.Join(noProxy(c), ",")})
}

// noProxy lists what the runtimes must reach directly: this machine, every
// node, the API endpoint, the service and pod ranges and the cluster's DNS
// suffixes (image pulls, registry mirrors inside the cluster, kubeadm's own
// checks), then what the inventory adds. Without them a proxy sees, and
// usually refuses, traffic that never leaves the cluster.
func noProxy(c *inventory.Cluster) []string {
	list := []string{"localhost", "127.0.0.1"}
	for _, h := range c.Hosts {
		list = append(list, h.Address)
		if h.Name != h.Address {
			list = append(list, h.Name)
		}
	}
	if ep := c.Kubernetes.ControlPlaneEndpoint; ep != "" {
		host := ep
		if h, _, err := net.SplitHostPort(ep); err == nil {
			host = h
		}
		list = append(list, host)
	}
	list = append(list, c.Kubernetes.ServiceRanges()...)
	list = append(list, c.Kubernetes.PodRanges()...)
	list = append(list, ".svc", ".cluster.local")
	list = append(list, c.Docker.Proxy.NoProxy...)
	var out []string
	for _, e := range list {
		if e != "" && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}
