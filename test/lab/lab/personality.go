package lab

import (
	"fmt"
	"sort"
	"strings"
)

// Personality is the distribution a lab host pretends to be: its release
// files, package manager setup, fstab, SELinux config and firewall, laid as
// a cached layer over the shared Debian root file system.
type Personality struct {
	// Name is what `up --os` takes: centos7, rocky9, openeuler22, ubuntu22.
	Name string
	// Family is "el" (yum/dnf, SELinux, firewalld) or "ubuntu" (apt, ufw).
	Family string
	// Symlinks are made in the layer, path -> target, as the real
	// distribution has them (/etc/sysconfig/selinux -> ../selinux/config).
	Symlinks map[string]string
	// Purge are Debian packages the real distribution does not ship.
	Purge []string
	// Hide are commands removed because the real distribution has none and
	// a probe that looks for them would be misled (apt-get on CentOS).
	Hide []string
	// RPMDB lists the packages an EL host's rpm database says are
	// installed (see rpmdb.go): the release package (dnf reads $releasever
	// from it) and the base system, so that `rpm -q` answers and packages
	// that require /bin/sh or systemd install as on the real distribution.
	RPMDB string
	// SparseFiles are created empty with this size in bytes and mode 0600
	// (Ubuntu's /swap.img): a fresh host has them.
	SparseFiles map[string]int64
}

// elSymlinks are the links every EL personality has.
var elSymlinks = map[string]string{
	"/etc/sysconfig/selinux":   "../selinux/config",
	"/etc/os-release":          "../usr/lib/os-release",
	"/usr/bin/yum":             "dnf",
	"/usr/sbin/getenforce":     "../lib/lab-kernel/selinux",
	"/usr/sbin/setenforce":     "../lib/lab-kernel/selinux",
	"/usr/sbin/selinuxenabled": "../lib/lab-kernel/selinux",
}

// elHide are the Debian tools an EL host must not show.
var elHide = []string{
	"/usr/bin/apt", "/usr/bin/apt-get", "/usr/bin/apt-cache", "/usr/bin/apt-mark",
	"/usr/bin/apt-config", "/usr/bin/apt-key", "/usr/bin/dpkg", "/usr/bin/dpkg-query",
	"/usr/bin/dpkg-deb", "/etc/debian_version",
}

func withSymlinks(extra map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range elSymlinks {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

var personalities = map[string]*Personality{
	"centos7": {
		Name:   "centos7",
		Family: "el",
		Symlinks: withSymlinks(map[string]string{
			"/etc/redhat-release": "centos-release",
			"/etc/system-release": "centos-release",
		}),
		Purge: []string{"ufw"},
		Hide:  elHide,
		RPMDB: centos7RPMDB,
	},
	"rocky9": {
		Name:   "rocky9",
		Family: "el",
		Symlinks: withSymlinks(map[string]string{
			"/etc/redhat-release": "rocky-release",
			"/etc/system-release": "rocky-release",
		}),
		Purge: []string{"ufw"},
		Hide:  elHide,
		RPMDB: rocky9RPMDB,
	},
	"openeuler22": {
		Name:   "openeuler22",
		Family: "el",
		// openEuler ships no /etc/redhat-release: tools must read os-release.
		Symlinks: withSymlinks(map[string]string{
			"/etc/system-release": "openEuler-release",
		}),
		Purge: []string{"ufw"},
		Hide:  elHide,
		RPMDB: openeuler22RPMDB,
	},
	"ubuntu22": {
		Name:   "ubuntu22",
		Family: "ubuntu",
		Symlinks: map[string]string{
			"/etc/os-release": "../usr/lib/os-release",
		},
		// Ubuntu has neither firewalld nor dnf/rpm; ufw stays, inactive.
		Purge:       []string{"firewalld", "dnf", "python3-dnf", "rpm", "rpm-common", "createrepo-c"},
		Hide:        []string{"/usr/bin/yum"},
		SparseFiles: map[string]int64{"/swap.img": 2 << 30},
	},
}

// DefaultOS is the personality list `up` cycles through by default: one
// host of each EL distribution kprep supports.
var DefaultOS = []string{"centos7", "rocky9", "openeuler22"}

// PersonalityNames lists the known personalities, sorted.
func PersonalityNames() []string {
	var names []string
	for n := range personalities {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkOS says whether `up --os` takes name: a personality or a VM kind.
func checkOS(name string) error {
	if lookupVM(name) != nil || personalities[name] != nil {
		return nil
	}
	return fmt.Errorf("unknown OS %q: the lab knows %s (nspawn hosts) and %s (VM hosts)",
		name, strings.Join(PersonalityNames(), ", "), strings.Join(VMNames(), ", "))
}

// lookupPersonality returns the personality called name or an error that
// lists the known ones.
func lookupPersonality(name string) (*Personality, error) {
	p, ok := personalities[name]
	if !ok {
		return nil, fmt.Errorf("unknown OS %q: the lab knows %s", name, strings.Join(PersonalityNames(), ", "))
	}
	return p, nil
}
