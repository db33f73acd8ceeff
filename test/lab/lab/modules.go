package lab

import (
	"bufio"
	"compress/gzip"
	"os"
	"sort"
	"strings"
)

// builtinModules maps module names that kprep, dockerd and the kubelet load
// to the kernel option that builds them in and their path in
// modules.builtin.
var builtinModules = map[string]struct{ config, path string }{
	"overlay":              {"CONFIG_OVERLAY_FS", "kernel/fs/overlayfs/overlay.ko"},
	"br_netfilter":         {"CONFIG_BRIDGE_NETFILTER", "kernel/net/bridge/br_netfilter.ko"},
	"bridge":               {"CONFIG_BRIDGE", "kernel/net/bridge/bridge.ko"},
	"veth":                 {"CONFIG_VETH", "kernel/drivers/net/veth.ko"},
	"vxlan":                {"CONFIG_VXLAN", "kernel/drivers/net/vxlan/vxlan.ko"},
	"nf_conntrack":         {"CONFIG_NF_CONNTRACK", "kernel/net/netfilter/nf_conntrack.ko"},
	"nf_nat":               {"CONFIG_NF_NAT", "kernel/net/netfilter/nf_nat.ko"},
	"nf_tables":            {"CONFIG_NF_TABLES", "kernel/net/netfilter/nf_tables.ko"},
	"x_tables":             {"CONFIG_NETFILTER_XTABLES", "kernel/net/netfilter/x_tables.ko"},
	"xt_conntrack":         {"CONFIG_NETFILTER_XT_MATCH_CONNTRACK", "kernel/net/netfilter/xt_conntrack.ko"},
	"xt_MASQUERADE":        {"CONFIG_NETFILTER_XT_TARGET_MASQUERADE", "kernel/net/netfilter/xt_MASQUERADE.ko"},
	"xt_addrtype":          {"CONFIG_NETFILTER_XT_MATCH_ADDRTYPE", "kernel/net/netfilter/xt_addrtype.ko"},
	"xt_comment":           {"CONFIG_NETFILTER_XT_MATCH_COMMENT", "kernel/net/netfilter/xt_comment.ko"},
	"xt_mark":              {"CONFIG_NETFILTER_XT_MARK", "kernel/net/netfilter/xt_mark.ko"},
	"ip_tables":            {"CONFIG_IP_NF_IPTABLES", "kernel/net/ipv4/netfilter/ip_tables.ko"},
	"iptable_filter":       {"CONFIG_IP_NF_FILTER", "kernel/net/ipv4/netfilter/iptable_filter.ko"},
	"iptable_nat":          {"CONFIG_IP_NF_NAT", "kernel/net/ipv4/netfilter/iptable_nat.ko"},
	"iptable_mangle":       {"CONFIG_IP_NF_MANGLE", "kernel/net/ipv4/netfilter/iptable_mangle.ko"},
	"ip6_tables":           {"CONFIG_IP6_NF_IPTABLES", "kernel/net/ipv6/netfilter/ip6_tables.ko"},
	"ip6table_filter":      {"CONFIG_IP6_NF_FILTER", "kernel/net/ipv6/netfilter/ip6table_filter.ko"},
	"ip6table_nat":         {"CONFIG_IP6_NF_NAT", "kernel/net/ipv6/netfilter/ip6table_nat.ko"},
	"ip_set":               {"CONFIG_IP_SET", "kernel/net/netfilter/ipset/ip_set.ko"},
	"ip_vs":                {"CONFIG_IP_VS", "kernel/net/netfilter/ipvs/ip_vs.ko"},
	"nf_conntrack_netlink": {"CONFIG_NF_CT_NETLINK", "kernel/net/netfilter/nf_conntrack_netlink.ko"},
}

// modulesBuiltin returns a modules.builtin for the running kernel: the
// listed modules its config builds in. The machine's kernel loads no
// modules; with this file, `modprobe br_netfilter` inside a host exits 0 as
// on a real host where the module is there. A module the kernel lacks
// (ip_vs here) stays out, so modprobe fails for it as it would on the
// machine.
func modulesBuiltin() []byte {
	config := readKernelConfig()
	var lines []string
	for name, m := range builtinModules {
		v, known := config[m.config]
		if v == "y" || (!known && len(config) == 0 && exists("/sys/module/"+name)) {
			lines = append(lines, m.path)
		}
	}
	sort.Strings(lines)
	return []byte(strings.Join(lines, "\n") + "\n")
}

// readKernelConfig reads /proc/config.gz into option -> value; empty when
// the kernel does not expose it.
func readKernelConfig() map[string]string {
	config := map[string]string{}
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		return config
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return config
	}
	sc := bufio.NewScanner(z)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			config[k] = v
		}
	}
	return config
}
