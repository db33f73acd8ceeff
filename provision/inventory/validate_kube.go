package inventory

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// This file checks the kube phase's settings: the API endpoint, kube-proxy,
// the kubelet, join tokens, the CNI, namespaces, and each host's labels and
// taints.

// apiEndpoint checks the one field that decides the API endpoint's mode,
// and the local mode's settings.
func (v *validator) apiEndpoint() {
	k := &v.c.Kubernetes
	if !k.LocalMode() {
		if !isEndpoint(k.ControlPlaneEndpoint) {
			v.errorf("kubernetes.controlPlaneEndpoint", "%q is not host or host:port", clip(k.ControlPlaneEndpoint))
		}
		if v.c.src.isSet("kubernetes.localEndpoint") {
			v.errorf("kubernetes.localEndpoint", "is used only when controlPlaneEndpoint is empty (kprep's local mode); with a load balancer in controlPlaneEndpoint, remove it")
		}
		return
	}
	le := &k.LocalEndpoint
	const p = "kubernetes.localEndpoint"
	switch _, err := netip.ParseAddr(le.Name); {
	case err == nil:
		v.errorf(p+".name", "%q is an IP address; local mode needs a name, which each host's /etc/hosts resolves its own way", le.Name)
	case !isHostName(le.Name):
		v.errorf(p+".name", "%q is not a host name like %s", clip(le.Name), defaultLocalEndpointName)
	default:
		for i := range v.c.Hosts {
			if strings.EqualFold(v.c.Hosts[i].Name, le.Name) || strings.EqualFold(v.c.Hosts[i].Address, le.Name) {
				v.errorf(p+".name", "%q is also hosts[%d]; the endpoint needs a name of its own", le.Name, i)
			}
		}
	}
	v.port(p+".port", le.Port)
	if le.ProxyImage == "" {
		v.errorf(p+".proxyImage", "required; give an HAProxy image like %s", DefaultProxyImage)
	}
	v.imageRef(p+".proxyImage", le.ProxyImage, DefaultProxyImage)
}

func (v *validator) kubeProxy() {
	kp := &v.c.Kubernetes.KubeProxy
	v.oneOf("kubernetes.kubeProxy.mode", kp.Mode, "iptables", "ipvs", "nftables")
	if minor, ok := v.c.Kubernetes.Minor(); ok && kp.Mode == "nftables" && minor < 31 {
		v.errorf("kubernetes.kubeProxy.mode", "nftables needs Kubernetes 1.31 or later (it is alpha behind a feature gate before); use iptables, or raise kubernetes.version")
	}
	if n := kp.ConntrackMaxPerCore; n != nil && *n < 0 {
		v.errorf("kubernetes.kubeProxy.conntrackMaxPerCore", "%d is negative; give the entries per CPU, or 0 to leave the host's nf_conntrack_max alone", *n)
	}
}

func (v *validator) kubelet() {
	k := &v.c.Kubernetes
	for _, signal := range slices.Sorted(maps.Keys(k.Kubelet.EvictionHard)) {
		p := fieldPath("kubernetes.kubelet.evictionHard", signal)
		switch value := k.Kubelet.EvictionHard[signal]; {
		case !slices.Contains(evictionSignals, signal):
			v.errorf(p, "%q is not an eviction signal; use one of %s", clip(signal), strings.Join(evictionSignals, ", "))
		case !evictionValue.MatchString(value):
			v.errorf(p, "%q is not a threshold; write a percentage (5%%) or a quantity (500Mi)", clip(value))
		}
	}
	if minor, ok := k.Minor(); ok && minor < 31 && k.Kubelet.FailCgroupV1 != nil && *k.Kubelet.FailCgroupV1 {
		v.errorf("kubernetes.kubelet.failCgroupV1", "the kubelet has this setting from Kubernetes 1.31; remove it for %s", k.Version)
	}
}

// reservedNamespaces are made by Kubernetes itself.
var reservedNamespaces = []string{"default", "kube-node-lease", "kube-public", "kube-system"}

func (v *validator) namespaces() {
	seen := map[string]int{}
	for i, ns := range v.c.Kubernetes.Namespaces {
		p := indexPath("kubernetes.namespaces", i)
		switch j, dup := seen[ns]; {
		case !isDNSLabel(ns):
			v.errorf(p, "%q is not a namespace name: lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit", clip(ns))
		case slices.Contains(reservedNamespaces, ns):
			v.errorf(p, "%s is made by Kubernetes itself; leave it out", ns)
		case dup:
			v.errorf(p, "%q is listed twice (first as kubernetes.namespaces[%d])", ns, j)
		default:
			seen[ns] = i
		}
	}
}

// maxJoinTokenTTL bounds a join token's life: a token is a credential to
// join the cluster, and a join never needs long.
const maxJoinTokenTTL = 15 * time.Minute

func (v *validator) joinAndReady() {
	k := &v.c.Kubernetes
	if ttl := k.JoinTokenTTL; ttl < time.Minute || ttl > maxJoinTokenTTL {
		v.errorf("kubernetes.joinTokenTTL", "%s is out of range; give 1m to 15m (a join token lets anyone who has it join the cluster)", ttl)
	}
	if k.ReadyTimeout <= 0 {
		v.errorf("kubernetes.readyTimeout", "%s is too short; it must be more than 0s", k.ReadyTimeout)
	}
}

func (v *validator) cniSettings() {
	k := &v.c.Kubernetes
	v.oneOf("kubernetes.flannel.backend", k.Flannel.Backend, "vxlan", "host-gw")
	v.registry("kubernetes.flannel.imageRegistry", k.Flannel.ImageRegistry)
	v.oneOf("kubernetes.calico.encapsulation", k.Calico.Encapsulation, "VXLAN", "VXLANCrossSubnet", "IPIP", "IPIPCrossSubnet", "None")
	v.registry("kubernetes.calico.imageRegistry", k.Calico.ImageRegistry)
}

// registry checks a registry (host[:port][/path]) that images are pulled
// from by their upstream paths.
func (v *validator) registry(path, r string) {
	switch {
	case strings.Contains(r, "://"):
		v.errorf(path, "%q must not have a scheme; write it like registry.example.com:5000", clip(r))
	case !registryRef.MatchString(r):
		v.errorf(path, "%q is not a registry like registry.example.com:5000 or registry.example.com/mirror", clip(r))
	}
}

var registryRef = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._/-][a-z0-9]+)*)?$`)

// Label keys and values as Kubernetes takes them: a key is an optional DNS
// subdomain prefix and a slash, then a name of at most 63 characters; a
// value is empty or such a name.
var labelName = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)

// kubeletLabels are set by the kubelet itself at every start.
var kubeletLabels = []string{"kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch",
	"beta.kubernetes.io/os", "beta.kubernetes.io/arch"}

func (v *validator) nodeLabels(path string, labels map[string]string) {
	for _, key := range slices.Sorted(maps.Keys(labels)) {
		p := fieldPath(path, key)
		if msg := badLabelKey(key); msg != "" {
			v.errorf(p, "%s", msg)
			continue
		}
		if slices.Contains(kubeletLabels, key) {
			v.errorf(p, "the kubelet sets %s itself", key)
			continue
		}
		if msg := badLabelValue(labels[key]); msg != "" {
			v.errorf(p, "%s", msg)
		}
	}
}

func badLabelKey(key string) string {
	prefix, name, hasPrefix := strings.Cut(key, "/")
	if !hasPrefix {
		prefix, name = "", key
	}
	switch {
	case hasPrefix && (len(prefix) > 253 || !nodeName.MatchString(prefix)):
		return fmt.Sprintf("%q is not a label key: the part before / must be a lowercase DNS name like example.com", clip(key))
	case len(name) > 63 || !labelName.MatchString(name):
		return fmt.Sprintf("%q is not a label key: the name must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", clip(key))
	}
	return ""
}

func badLabelValue(val string) string {
	if val != "" && (len(val) > 63 || !labelName.MatchString(val)) {
		return fmt.Sprintf("%q is not a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, or empty", clip(val))
	}
	return ""
}

var taintEffects = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}

func (v *validator) taints(hostPath string, h *Host) {
	seen := map[string]int{}
	for i, t := range h.Taints {
		p := indexPath(hostPath+".taints", i)
		if t.Key == "" {
			v.errorf(p+".key", "required")
		} else if msg := badLabelKey(t.Key); msg != "" {
			v.errorf(p+".key", "%s", strings.Replace(msg, "label key", "taint key", 1))
		}
		if msg := badLabelValue(t.Value); msg != "" {
			v.errorf(p+".value", "%s", strings.Replace(msg, "label value", "taint value", 1))
		}
		if t.Effect == "" {
			v.errorf(p+".effect", "required; give one of %s", strings.Join(taintEffects, ", "))
		} else {
			v.oneOf(p+".effect", t.Effect, taintEffects...)
		}
		if t.Key == ControlPlaneTaintKey && h.HasRole(RoleControlPlane) {
			v.errorf(p+".key", "kprep sets the control-plane taint from the roles: a control plane keeps it, one that also has the worker role loses it; change roles instead")
		}
		id := t.Key + ":" + t.Effect
		if j, dup := seen[id]; dup {
			v.errorf(p, "%s is given twice (first as taints[%d]); a node has one taint per key and effect", id, j)
		} else {
			seen[id] = i
		}
	}
}

// isDNSLabel reports whether s is an RFC 1123 label, as namespace names are.
func isDNSLabel(s string) bool { return len(s) <= 63 && dnsLabelOnly.MatchString(s) }

var dnsLabelOnly = regexp.MustCompile(`^` + dnsLabel + `$`)

// evictionSignals are the kubelet's hard eviction signals on Linux.
var evictionSignals = []string{"memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available", "imagefs.inodesFree", "containerfs.available", "containerfs.inodesFree", "pid.available"}

// evictionValue is a threshold: a percentage or a resource quantity.
var evictionValue = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?%|[0-9]+(\.[0-9]+)?([KMGTPE]i?|[kmgtpe])?)$`)
