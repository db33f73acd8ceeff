// Package facts learns what a host is (OS, arch, kernel, cgroups, init,
// package manager) from the output of one probe snippet.
package facts

// Facts is what kprep learned of one host.
type Facts struct {
	OSID       string `json:"osID"`               // os-release ID: centos, rocky, openEuler, ubuntu...
	OSVersion  string `json:"osVersion"`          // os-release VERSION_ID: 7, 9.4, 22.03
	OSName     string `json:"osName"`             // os-release PRETTY_NAME
	Family     Family `json:"family"`             // rhel or debian
	Major      int    `json:"major"`              // EL major version (7, 8, 9) the repos are chosen by; Ubuntu/Debian major
	Release    string `json:"release,omitempty"`  // full EL release from /etc/redhat-release: 7.9.2009
	Codename   string `json:"codename,omitempty"` // Debian/Ubuntu codename: jammy
	Arch       string `json:"arch"`               // uname -m: x86_64, aarch64
	Kernel     string `json:"kernel"`             // uname -r
	CgroupV    int    `json:"cgroup"`             // 1 or 2
	Init       string `json:"init"`               // systemd
	PkgManager string `json:"pkgManager"`         // dnf, yum, apt
	Hostname   string `json:"hostname"`           // current hostname
	PageSize   int    `json:"pageSize"`           // getconf PAGESIZE (64K on some ARM kernels)
	CPUs       int    `json:"cpus"`               // online CPUs
	MemoryMiB  int    `json:"memoryMiB"`          // MemTotal
	User       string `json:"user"`               // the login user
	SudoNeeded bool   `json:"sudo"`               // commands run through sudo

	// What the kube phase's preflight checks.
	IPVSMissing []string `json:"ipvsMissing,omitempty"` // ip_vs modules neither loaded, built in nor loadable
	Conntrack   bool     `json:"conntrack"`             // conntrack in PATH
	Socat       bool     `json:"socat"`                 // socat in PATH
	Swaps       int      `json:"swaps"`                 // active swap areas (/proc/swaps)
	// The installed runtimes' versions (upstream part: 1.6.20 of
	// "1.6.20~ds1"); "" when not installed.
	ContainerdVersion string `json:"containerdVersion,omitempty"`
	DockerVersion     string `json:"dockerVersion,omitempty"`
	CRIDockerdVersion string `json:"criDockerdVersion,omitempty"`
}

// Family groups distributions that share package tooling and file layout.
type Family string

// Families kprep supports.
const (
	FamilyRHEL   Family = "rhel"
	FamilyDebian Family = "debian"
)

// GoArch maps the kernel's machine name to the architecture name package
// repositories and images use (amd64, arm64).
func (f Facts) GoArch() string {
	switch f.Arch {
	case "x86_64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	}
	return f.Arch
}
