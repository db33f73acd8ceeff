package facts

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse reads the output of Script.
func Parse(out string) (Facts, error) {
	kv := map[string]string{}
	// Lines of the string itself: no scanner buffer per host (a run over
	// a thousand hosts parses a thousand of these).
	for line := range strings.Lines(out) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), "=")
		if !ok {
			continue
		}
		kv[k] = strings.TrimSpace(v)
	}
	f := Facts{
		OSID:      kv["os_id"],
		OSVersion: kv["os_version"],
		OSName:    kv["os_name"],
		Codename:  kv["os_codename"],
		Arch:      kv["arch"],
		Kernel:    kv["kernel"],
		Init:      kv["init"],
		Hostname:  kv["hostname"],
		User:      kv["user"],
		// The probe runs as root; SUDO_USER is set exactly when sudo got it there.
		SudoNeeded: kv["sudo"] == "yes",
	}
	if f.OSID == "" {
		return f, fmt.Errorf("cannot tell the operating system: /etc/os-release is missing or has no ID")
	}
	if f.OSName == "" {
		f.OSName = strings.TrimSpace(f.OSID + " " + f.OSVersion)
	}
	if missing := strings.Fields(kv["ipvs_missing"]); len(missing) > 0 {
		f.IPVSMissing = missing
	}
	f.Conntrack = kv["conntrack"] == "yes"
	f.Socat = kv["socat"] == "yes"
	f.Swaps, _ = strconv.Atoi(kv["swaps"])
	f.ContainerdVersion = versionWord(kv["version_containerd"], 2)
	f.DockerVersion = versionWord(kv["version_dockerd"], 2)
	f.CRIDockerdVersion = versionWord(kv["version_cri-dockerd"], 1)
	f.PageSize, _ = strconv.Atoi(kv["pagesize"])
	f.CPUs = onlineCPUs(kv["cpus_online"])
	if kb, err := strconv.Atoi(kv["memkb"]); err == nil {
		f.MemoryMiB = kb / 1024
	}
	switch kv["cgroupfs"] {
	case "cgroup2fs":
		f.CgroupV = 2
	case "tmpfs":
		f.CgroupV = 1
	}
	if err := classify(&f, kv["redhat_release"]); err != nil {
		return f, err
	}
	f.PkgManager = packageManager(f.Family, strings.Fields(kv["pkg"]))
	switch f.Arch {
	case "x86_64", "aarch64":
	default:
		return f, fmt.Errorf("unsupported CPU architecture %q (kprep supports x86_64 and aarch64)", f.Arch)
	}
	return f, nil
}

// versionWord reads the version in a program's --version line, the word at
// index i: "containerd containerd.io 1.6.33 d2d5821" (2), "Docker version
// 24.0.9, build fca702d" (2), "cri-dockerd 0.3.16 (e1a7bd3)" (1). It keeps
// the upstream numbers only: Debian's "v1.6.20~ds1" is 1.6.20.
func versionWord(line string, i int) string {
	words := strings.Fields(line)
	if len(words) <= i {
		return ""
	}
	w := strings.TrimPrefix(words[i], "v")
	end := strings.IndexFunc(w, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end >= 0 {
		w = w[:end]
	}
	return strings.TrimSuffix(w, ".")
}

// osRule says how one distribution maps onto a family and the EL major
// version whose repositories it uses.
type osRule struct {
	family Family
	// major derives the repository major version from VERSION_ID; nil
	// means the number before the first dot.
	major func(version string) (int, bool)
	// versions lists the supported majors (after major()).
	versions []int
}

var osRules = map[string]osRule{
	"centos":    {family: FamilyRHEL, versions: []int{7, 8, 9, 10}},
	"rhel":      {family: FamilyRHEL, versions: []int{7, 8, 9, 10}},
	"rocky":     {family: FamilyRHEL, versions: []int{8, 9, 10}},
	"almalinux": {family: FamilyRHEL, versions: []int{8, 9, 10}},
	"ol":        {family: FamilyRHEL, versions: []int{7, 8, 9}},
	"anolis":    {family: FamilyRHEL, versions: []int{7, 8, 23}},
	// openEuler numbers releases by year; Docker CE has no tree for them,
	// so they use the EL tree their userland matches: 20.03 and 22.03 are
	// EL8-like, 24.03 and later EL9-like.
	"openEuler": {family: FamilyRHEL, major: openEulerMajor, versions: []int{8, 9}},
	// Kylin V10 (Server) is EL8-like.
	"kylin":  {family: FamilyRHEL, major: func(string) (int, bool) { return 8, true }, versions: []int{8}},
	"ubuntu": {family: FamilyDebian, versions: []int{20, 22, 24}},
	"debian": {family: FamilyDebian, versions: []int{11, 12, 13}},
}

func openEulerMajor(v string) (int, bool) {
	year, ok := leadingInt(v)
	if !ok {
		return 0, false
	}
	if year < 24 {
		return 8, true
	}
	return 9, true
}

func leadingInt(v string) (int, bool) {
	head, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(head)
	return n, err == nil
}

func classify(f *Facts, redhatRelease string) error {
	rule, ok := osRules[f.OSID]
	if !ok {
		rule, ok = osRules[strings.ToLower(f.OSID)]
	}
	if !ok {
		return fmt.Errorf("unsupported operating system %q (ID=%s, VERSION_ID=%s); kprep supports %s",
			f.OSName, f.OSID, f.OSVersion, supportedList())
	}
	major, ok := 0, false
	if rule.major != nil {
		major, ok = rule.major(f.OSVersion)
	} else {
		major, ok = leadingInt(f.OSVersion)
	}
	if !ok {
		return fmt.Errorf("cannot read the version of %q (VERSION_ID=%q)", f.OSName, f.OSVersion)
	}
	supported := false
	for _, v := range rule.versions {
		supported = supported || v == major
	}
	if !supported {
		return fmt.Errorf("unsupported version %s of %s (kprep supports versions %v)", f.OSVersion, f.OSID, rule.versions)
	}
	f.Family = rule.family
	f.Major = major
	// CentOS 7's os-release says only "7"; the minor release (7.9.2009)
	// picks the vault path its base repositories moved to.
	if f.Family == FamilyRHEL && redhatRelease != "" {
		f.Release = releaseNumber(redhatRelease)
	}
	return nil
}

// releaseNumber finds "7.9.2009" in "CentOS Linux release 7.9.2009 (Core)".
func releaseNumber(s string) string {
	for _, w := range strings.Fields(s) {
		if w != "" && w[0] >= '0' && w[0] <= '9' && strings.Contains(w, ".") {
			return w
		}
	}
	return ""
}

func supportedList() string {
	return "CentOS 7/8/9, RHEL, Rocky, AlmaLinux, Oracle Linux, Anolis, openEuler, Kylin V10, Ubuntu 20.04-24.04, Debian 11-13"
}

// packageManager picks the family's own tool among those installed: a
// Debian host may have dnf installed, and an EL7 host has only yum.
func packageManager(family Family, present []string) string {
	prefer := []string{"dnf", "yum"}
	if family == FamilyDebian {
		prefer = []string{"apt-get"}
	}
	for _, want := range prefer {
		for _, p := range present {
			if p == want {
				return strings.TrimSuffix(p, "-get")
			}
		}
	}
	return ""
}

// onlineCPUs counts the CPUs in a kernel CPU list such as "0-3,6,8-9"
// (/sys/devices/system/cpu/online); 0 when it cannot be read.
func onlineCPUs(list string) int {
	n := 0
	for r := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(r), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0
			}
		}
		n += b - a + 1
	}
	return n
}
