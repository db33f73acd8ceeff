// Package preflight tells, before the kube phase touches a host, what on
// it keeps kubeadm or the kubelet from working, each problem with its fix
// in words. It is pure: facts and inventory in, problems out, so plan shows
// them from the one probe it already makes.
//
// The host is judged as the kube phase will find it: swap that hostprep
// turns off is no problem, swap the inventory keeps is.
package preflight

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-version"

	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
)

// Severity says whether a problem stops the kube phase on the host.
type Severity string

// Severities.
const (
	// Error: kubeadm or the kubelet would fail; apply must not start.
	Error Severity = "error"
	// Warning: it works, outside what Kubernetes or the runtime's makers
	// support or test; plan shows it, apply goes on.
	Warning Severity = "warning"
)

// Problem is one thing wrong with a host for the kube phase.
type Problem struct {
	// Check names the check: kernel, cgroup-v1, ipvs, nftables-kernel,
	// containerd, cri-dockerd, docker, conntrack, socat, swap.
	Check    string
	Severity Severity
	// Summary says what is wrong on this host.
	Summary string
	// Fix says what to do about it.
	Fix string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s: %s; %s", p.Severity, p.Check, p.Summary, p.Fix)
}

// Check returns the problems of host h, whose facts are f, for cluster c
// (which passed inventory.Validate), in a fixed order.
func Check(c *inventory.Cluster, h *inventory.Host, f facts.Facts) []Problem {
	k := &c.Kubernetes
	minor, ok := k.Minor()
	if !ok {
		return nil
	}
	ck := &checker{c: c, h: h, f: f, minor: minor, kernel: parseKernel(f.Kernel)}
	ck.kernelVersion()
	ck.cgroupV1()
	ck.kubeProxyMode()
	ck.runtimeVersions()
	ck.tools()
	ck.swap()
	return ck.problems
}

type checker struct {
	c        *inventory.Cluster
	h        *inventory.Host
	f        facts.Facts
	minor    int
	kernel   *version.Version // nil when uname -r does not parse
	problems []Problem
}

func (ck *checker) add(check string, sev Severity, summary, fix string) {
	ck.problems = append(ck.problems, Problem{Check: check, Severity: sev, Summary: summary, Fix: fix})
}

// parseKernel reads the numbers of uname -r: 3.10.0 of 3.10.0-1160.el7.x86_64.
func parseKernel(release string) *version.Version {
	head := release
	if i := strings.IndexFunc(release, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }); i >= 0 {
		head = release[:i]
	}
	v, err := version.NewVersion(strings.TrimSuffix(head, "."))
	if err != nil {
		return nil
	}
	return v
}

func (ck *checker) kernelBelow(v string) bool {
	return ck.kernel != nil && ck.kernel.LessThan(version.Must(version.NewVersion(v)))
}

// Kubernetes 1.32 moved kubeadm's kernel floor from 3.10 to 4.19
// (k8s.io/system-validators v1.9.1: an error in kubeadm 1.32 and 1.33;
// v1.10, in kubeadm 1.34+, warns that only LTS 5.4, 5.10, 5.15 and 6.x are
// supported). KubeOne and kubean refuse the same combination.
const (
	kernelFloorFromMinor  = 32
	kernelFloor           = "4.19"
	lastMinorForOldKernel = 31
)

func (ck *checker) kernelVersion() {
	if ck.minor < kernelFloorFromMinor || !ck.kernelBelow(kernelFloor) {
		return
	}
	newer := "a newer kernel from your distribution"
	if ck.f.Family == facts.FamilyRHEL && ck.f.Major == 7 {
		newer = "ELRepo's kernel-lt (5.4) or kernel-ml"
	}
	ck.add("kernel", Error,
		fmt.Sprintf("kernel %s is older than %s, which Kubernetes 1.%d needs (kubeadm 1.32 and 1.33 stop at SystemVerification on it; 1.34 and later call it unsupported)",
			ck.f.Kernel, kernelFloor, ck.minor),
		fmt.Sprintf("plan Kubernetes 1.%d or older on this kernel (kubernetes.version: \"1.31.14\"), or boot %s first", lastMinorForOldKernel, newer))
}

// cgroupV1: the kubelet refuses a cgroup v1 host when failCgroupV1 is true,
// its default from Kubernetes 1.35 (cgroup v1 is in maintenance mode since
// 1.31, KEP-4569).
func (ck *checker) cgroupV1() {
	fail := ck.c.Kubernetes.Kubelet.FailCgroupV1
	if ck.f.CgroupV != 1 || fail == nil || !*fail || ck.minor < 31 {
		return
	}
	v2 := "boot it with cgroup v2 (systemd.unified_cgroup_hierarchy=1 on the kernel command line; kernel 5.8 or later)"
	if ck.f.Family == facts.FamilyRHEL && ck.f.Major == 7 {
		v2 = "CentOS 7's systemd cannot run cgroup v2"
	}
	ck.add("cgroup-v1", Error,
		fmt.Sprintf("the host runs cgroup v1 and kubernetes.kubelet.failCgroupV1 is true (the kubelet's default from 1.35): the kubelet 1.%d will refuse to start", ck.minor),
		fmt.Sprintf("%s; or set kubernetes.kubelet.failCgroupV1: false to run on cgroup v1, which Kubernetes keeps in maintenance mode only; or plan Kubernetes 1.34", v2))
}

const nftablesKernel = "5.13" // kube-proxy's nftables mode needs it (Kubernetes "Virtual IPs and Service Proxies")

func (ck *checker) kubeProxyMode() {
	switch ck.c.Kubernetes.KubeProxy.Mode {
	case "ipvs":
		if missing := ck.f.IPVSMissing; len(missing) > 0 {
			ck.add("ipvs", Error,
				fmt.Sprintf("kube-proxy's ipvs mode needs the kernel modules ip_vs, ip_vs_rr, ip_vs_wrr and ip_vs_sh; this kernel cannot load %s", strings.Join(missing, ", ")),
				"set kubernetes.kubeProxy.mode: iptables (or nftables), or install the kernel's ip_vs modules (kernel-modules-extra on EL, linux-modules-extra-$(uname -r) on Ubuntu)")
		}
		if ck.minor >= 35 {
			ck.add("ipvs", Warning,
				fmt.Sprintf("kube-proxy's ipvs mode is deprecated from Kubernetes 1.35 (KEP-5495) and this cluster plans 1.%d", ck.minor),
				"plan kubernetes.kubeProxy.mode: nftables, its successor")
		}
	case "nftables":
		if ck.kernelBelow(nftablesKernel) {
			ck.add("nftables-kernel", Error,
				fmt.Sprintf("kube-proxy's nftables mode needs kernel %s or later; this host runs %s", nftablesKernel, ck.f.Kernel),
				"set kubernetes.kubeProxy.mode: iptables, or boot a newer kernel")
		}
	}
}

// tools: the kubelet packages of pkgs.k8s.io require conntrack and socat,
// so kprep installs them with the Kubernetes packages from the host's own
// repositories; kubeadm before 1.32 also refuses to run without conntrack.
func (ck *checker) tools() {
	pkg := map[string]string{"conntrack": "conntrack", "socat": "socat"}
	if ck.f.Family == facts.FamilyRHEL {
		pkg["conntrack"] = "conntrack-tools"
	}
	for _, tool := range []struct {
		name    string
		present bool
	}{{"conntrack", ck.f.Conntrack}, {"socat", ck.f.Socat}} {
		if tool.present {
			continue
		}
		ck.add(tool.name, Warning,
			fmt.Sprintf("%s is not installed; the kubelet's package requires it", tool.name),
			fmt.Sprintf("apply installs %s with the Kubernetes packages from the host's own repositories: an offline host needs it in a repository it reaches", pkg[tool.name]))
	}
}

func (ck *checker) swap() {
	if ck.f.Swaps > 0 && ck.c.Hostprep.Swap == "keep" {
		ck.add("swap", Error,
			fmt.Sprintf("%d swap area(s) are on and hostprep.swap is keep: the kubelet refuses to start with swap on (failSwapOn) and kprep does not configure swap for it", ck.f.Swaps),
			"set hostprep.swap: off, and kprep turns swap off now and at boot")
	}
}
