package inventory

import (
	"fmt"
	"maps"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strings"
)

// This file checks what the cluster is to become: hostprep, docker and
// kubernetes.

func (v *validator) hostprep() {
	hp := &v.c.Hostprep
	v.oneOf("hostprep.firewall", hp.Firewall, "disable", "open-ports", "keep")
	v.oneOf("hostprep.selinux", hp.SELinux, "permissive", "disabled", "keep")
	v.oneOf("hostprep.swap", hp.Swap, "off", "keep")
	// Keys and values go into a sysctl.d drop-in line by line: a newline
	// would write a second setting nobody asked for.
	for _, key := range slices.Sorted(maps.Keys(hp.Sysctl)) {
		p := fieldPath("hostprep.sysctl", key)
		switch val := hp.Sysctl[key]; {
		case !sysctlKey.MatchString(key):
			v.errorf(p, "%q is not a sysctl key like net.ipv4.ip_forward", clip(key))
		case val == "":
			v.errorf(p, "needs a value")
		case strings.ContainsAny(val, "\r\n"):
			v.errorf(p, "the value must be on one line")
		}
	}
}

func (v *validator) docker() {
	d := &v.c.Docker
	if d.Version != "" && !isVersion(d.Version, 1) {
		v.errorf("docker.version", `%q is not a version; write it like "24.0.9", or "" for the newest in the repo`, clip(d.Version))
	}
	v.url("docker.repo", d.Repo)
	for i, m := range d.RegistryMirrors {
		p := indexPath("docker.registryMirrors", i)
		if !isHTTPURL(m) {
			hint := ""
			if !strings.Contains(m, "://") && isHTTPURL("https://"+m) {
				hint = fmt.Sprintf("; write it with its scheme, like %q", "https://"+m)
			}
			v.errorf(p, "%q is not an http:// or https:// URL%s", clip(m), hint)
		}
	}
	for i, r := range d.InsecureRegistries {
		if strings.Contains(r, "://") {
			v.errorf(indexPath("docker.insecureRegistries", i), "%q must not have a scheme; dockerd takes host:port or a CIDR range here", clip(r))
		}
	}
	if d.DataRoot != "" && !path.IsAbs(d.DataRoot) {
		v.errorf("docker.dataRoot", "%q must be an absolute path", clip(d.DataRoot))
	}
	v.url("docker.proxy.http", d.Proxy.HTTP)
	v.url("docker.proxy.https", d.Proxy.HTTPS)
	v.url("docker.centos7Vault.url", d.CentOS7Vault.URL)
}

// url checks an optional URL field.
func (v *validator) url(path, u string) {
	if u != "" && !isHTTPURL(u) {
		v.errorf(path, "%q is not an http:// or https:// URL", clip(u))
	}
}

func (v *validator) kubernetes() {
	k := &v.c.Kubernetes
	switch {
	case k.Version == "":
		v.errorf("kubernetes.version", `required; write it like "1.34.4"`)
	case !isVersion(k.Version, 3):
		v.errorf("kubernetes.version", `%q is not a full version; write it like "1.34.4"`, clip(k.Version))
	}
	v.oneOf("kubernetes.cri", k.CRI, "containerd", "cri-dockerd")
	v.oneOf("kubernetes.cni", k.CNI, "flannel", "calico", "none")
	v.url("kubernetes.repo", k.Repo)
	if strings.Contains(k.ImageRepository, "://") {
		v.errorf("kubernetes.imageRepository", "%q must not have a scheme; write it like registry.k8s.io", clip(k.ImageRepository))
	}
	v.imageRef("kubernetes.sandboxImage", k.SandboxImage, "registry.k8s.io/pause:3.10.1")
	v.criDockerd(&k.CRIDockerd)

	const podPath, servicePath = "kubernetes.podSubnet", "kubernetes.serviceSubnet"
	pods := v.subnets(podPath, k.PodSubnet, defaultPodSubnet)
	services := v.subnets(servicePath, k.ServiceSubnet, defaultServiceSubnet)
	for _, s := range services {
		for _, p := range pods {
			if !s.Overlaps(p) {
				continue
			}
			// Report it at the one the user wrote, not at a default.
			if v.defaulted(servicePath) && !v.defaulted(podPath) {
				v.errorf(podPath, "%s overlaps %s %s; pods and services need ranges of their own", p, servicePath, v.shown(servicePath, s))
			} else {
				v.errorf(servicePath, "%s overlaps %s %s; pods and services need ranges of their own", s, podPath, v.shown(podPath, p))
			}
		}
	}
	v.noHostsIn(podPath, pods)
	v.noHostsIn(servicePath, services)

	v.apiEndpoint()
	v.kubeProxy()
	v.kubelet()
	v.namespaces()
	v.joinAndReady()
	v.cniSettings()
}

// subnets parses a subnet field: one CIDR range, or an IPv4 and an IPv6 one
// separated by a comma (dual stack, as kubeadm takes them).
func (v *validator) subnets(path, value, example string) []netip.Prefix {
	parts := strings.Split(value, ",")
	var out []netip.Prefix
	for _, part := range parts {
		part = strings.TrimSpace(part)
		p, err := netip.ParsePrefix(part)
		if err != nil {
			v.errorf(path, "%q is not a CIDR range like %s", clip(part), example)
			return nil
		}
		if p.Masked() != p {
			v.errorf(path, "%s has bits set after the /%d; did you mean %s?", p, p.Bits(), p.Masked())
			return nil
		}
		out = append(out, p)
	}
	if len(out) > 2 || len(out) == 2 && out[0].Addr().Is4() == out[1].Addr().Is4() {
		v.errorf(path, "give one range, or one IPv4 and one IPv6 range separated by a comma")
		return nil
	}
	return out
}

// noHostsIn reports a subnet that holds a host's address: traffic to that
// host would be routed into the cluster network instead.
func (v *validator) noHostsIn(path string, subnets []netip.Prefix) {
	for _, s := range subnets {
		var inside []string
		for i := range v.c.Hosts {
			h := &v.c.Hosts[i]
			if ip, err := netip.ParseAddr(h.Address); err == nil && s.Contains(ip.Unmap()) {
				inside = append(inside, fmt.Sprintf("%s (%s)", h.Name, h.Address))
			}
		}
		if len(inside) == 0 {
			continue
		}
		what := "address"
		if len(inside) > 1 {
			what = "addresses"
		}
		v.errorf(path, "%s contains the %s of %s; choose a range no host is in", v.shown(path, s), what, shortList(inside, 3))
	}
}

// defaulted reports whether a loaded file left path to its default.
func (v *validator) defaulted(path string) bool {
	return v.c.src != nil && !v.c.src.isSet(path)
}

// shown formats a value for a message, saying when it is a default the user
// never wrote, so that they know which line to add.
func (v *validator) shown(path string, value fmt.Stringer) string {
	if v.defaulted(path) {
		return value.String() + " (the default)"
	}
	return value.String()
}

// imageRef checks an optional image reference such as
// registry.k8s.io/pause:3.10.1, which runtimes take without a scheme.
func (v *validator) imageRef(path, ref, example string) {
	switch {
	case ref == "":
	case strings.Contains(ref, "://"):
		v.errorf(path, "%q must not have a scheme; write it like %s", clip(ref), example)
	case strings.ContainsAny(ref, " \t\r\n\"'"):
		v.errorf(path, "%q is not an image reference like %s", clip(ref), example)
	}
}

// criDockerdPlaceholder matches the {name} placeholders of criDockerd.url.
var criDockerdPlaceholder = regexp.MustCompile(`\{[^{}]*\}`)

// criDockerd checks the cri-dockerd release: a version, and a URL whose
// only placeholders are {version} and {arch}.
func (v *validator) criDockerd(cd *CRIDockerd) {
	if !isVersion(cd.Version, 3) {
		v.errorf("kubernetes.criDockerd.version", `%q is not a full version; write it like "0.3.16"`, clip(cd.Version))
	}
	for _, arch := range slices.Sorted(maps.Keys(cd.SHA256)) {
		field := fieldPath("kubernetes.criDockerd.sha256", arch)
		if arch != "amd64" && arch != "arm64" {
			v.errorf(field, "%q is not an architecture cri-dockerd is released for; use amd64 or arm64", clip(arch))
		}
		if !sha256Hex.MatchString(cd.SHA256[arch]) {
			v.errorf(field, "%q is not a SHA-256: want 64 hexadecimal digits", clip(cd.SHA256[arch]))
		}
	}
	for _, p := range criDockerdPlaceholder.FindAllString(cd.URL, -1) {
		if p != "{version}" && p != "{arch}" {
			v.errorf("kubernetes.criDockerd.url", "%s is not a placeholder kprep fills in; use {version} and {arch}", p)
			return
		}
	}
	filled := strings.NewReplacer("{version}", "0.0.0", "{arch}", "amd64").Replace(cd.URL)
	if !isHTTPURL(filled) {
		v.errorf("kubernetes.criDockerd.url", "%q is not an http:// or https:// URL", clip(cd.URL))
	}
}

// sha256Hex is a SHA-256 written as sha256sum prints it.
var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)
