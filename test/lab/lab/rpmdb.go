package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The packages an EL host's rpm database lists. The files are Debian's (the
// hosts run a Debian userland); these records make `rpm -q bash` answer as
// on the real distribution, give dnf its $releasever (from the release
// package's system-release(releasever)), and satisfy what real packages
// require of the base system (/bin/sh for scriptlets, systemd...).
// One line per package: name, version-release, arch, then extra Provides
// separated by ";". Versions follow each distribution's release; they are
// close, not exact.
const centos7RPMDB = `
centos-release 7-9.2009.1.el7.centos x86_64 centos-release(upstream) = 7.9;redhat-release = 7.9;system-release = 7.9;system-release(releasever) = 7
bash 4.2.46-35.el7_9 x86_64 /bin/sh;/bin/bash;/usr/bin/sh;/usr/bin/bash
coreutils 8.22-24.el7_9.2 x86_64
glibc 2.17-326.el7_9 x86_64
systemd 219-78.el7_9.9 x86_64 systemd-units;/usr/bin/systemctl
util-linux 2.23.2-65.el7_9.1 x86_64
iptables 1.4.21-35.el7 x86_64
iproute 4.11.0-30.el7 x86_64
firewalld 0.6.3-13.el7_9 noarch
openssh-server 7.4p1-23.el7_9 x86_64
sudo 1.8.23-10.el7_9.3 x86_64
yum 3.4.3-168.el7.centos noarch
rpm 4.11.3-48.el7_9 x86_64
kmod 20-28.el7 x86_64
procps-ng 3.3.10-28.el7 x86_64
shadow-utils 4.6-5.el7 x86_64 /usr/sbin/groupadd;/usr/sbin/useradd
tar 1.26-35.el7 x86_64
libselinux-utils 2.5-15.el7 x86_64
policycoreutils 2.5-34.el7 x86_64
selinux-policy-targeted 3.13.1-268.el7_9.2 noarch
curl 7.29.0-59.el7_9.2 x86_64
libseccomp 2.3.1-4.el7 x86_64
device-mapper-libs 1.02.170-6.el7_9.5 x86_64
`

const rocky9RPMDB = `
rocky-release 9.4-1.7.el9 noarch base-module(platform:el9);redhat-release = 9.4;system-release = 9.4;system-release(releasever) = 9;system-release(releasever_major) = 9;system-release(releasever_minor) = 4
bash 5.1.8-9.el9 x86_64 /bin/sh;/bin/bash;/usr/bin/sh;/usr/bin/bash
coreutils 8.32-35.el9 x86_64
glibc 2.34-100.el9 x86_64
systemd 252-32.el9_4 x86_64 systemd-units;/usr/bin/systemctl
util-linux 2.37.4-18.el9 x86_64
iptables-nft 1.8.10-2.el9 x86_64 iptables
iptables-libs 1.8.10-2.el9 x86_64
iproute 6.2.0-6.el9_4 x86_64
firewalld 1.3.4-1.el9 noarch
openssh-server 8.7p1-38.el9 x86_64
sudo 1.9.5p2-10.el9_3 x86_64
dnf 4.14.0-9.el9 noarch
yum 4.14.0-9.el9 noarch
rpm 4.16.1.3-29.el9 x86_64
kmod 28-9.el9 x86_64
procps-ng 3.3.17-14.el9 x86_64
shadow-utils 4.9-8.el9 x86_64 /usr/sbin/groupadd;/usr/sbin/useradd
tar 1.34-6.el9_1 x86_64
libselinux-utils 3.6-1.el9 x86_64
policycoreutils 3.6-2.1.el9 x86_64
selinux-policy-targeted 38.1.35-2.el9_4 noarch
curl 7.76.1-29.el9_4 x86_64
libseccomp 2.5.2-2.el9 x86_64
device-mapper-libs 1.02.197-2.el9 x86_64
`

const openeuler22RPMDB = `
openEuler-release 22.03LTS-52.oe2203 x86_64 system-release = 22.03LTS;system-release(releasever) = 22.03LTS
bash 5.1.8-6.oe2203 x86_64 /bin/sh;/bin/bash;/usr/bin/sh;/usr/bin/bash
coreutils 9.0-3.oe2203 x86_64
glibc 2.34-70.oe2203 x86_64
systemd 249-16.oe2203 x86_64 systemd-units;/usr/bin/systemctl
util-linux 2.37.2-5.oe2203 x86_64
iptables 1.8.7-5.oe2203 x86_64
iproute 5.15.0-2.oe2203 x86_64
firewalld 1.0.2-1.oe2203 noarch
openssh-server 8.8p1-2.oe2203 x86_64
sudo 1.9.8p2-1.oe2203 x86_64
dnf 4.10.0-3.oe2203 noarch
yum 4.10.0-3.oe2203 noarch
rpm 4.17.0-5.oe2203 x86_64
kmod 29-2.oe2203 x86_64
procps-ng 4.0.0-2.oe2203 x86_64
shadow 4.9-3.oe2203 x86_64 /usr/sbin/groupadd;/usr/sbin/useradd
tar 1.34-1.oe2203 x86_64
libselinux 3.3-1.oe2203 x86_64
policycoreutils 3.3-2.oe2203 x86_64
selinux-policy-targeted 35.5-8.oe2203 noarch
curl 7.79.1-2.oe2203 x86_64
libseccomp 2.5.3-1.oe2203 x86_64
device-mapper 1.02.181-1.oe2203 x86_64
`

// rpmStub is one line of such a table.
type rpmStub struct {
	Name, Version, Release, Arch string
	Provides                     []string
}

// parseRPMDB reads a table; a malformed line is an error naming it.
func parseRPMDB(table string) ([]rpmStub, error) {
	var stubs []rpmStub
	for _, line := range strings.Split(strings.TrimSpace(table), "\n") {
		f := strings.SplitN(strings.TrimSpace(line), " ", 4)
		if len(f) < 3 {
			return nil, fmt.Errorf("rpm database line %q: want name version-release arch [provides]", line)
		}
		v, r, ok := strings.Cut(f[1], "-")
		if !ok {
			return nil, fmt.Errorf("rpm database line %q: version %q has no release", line, f[1])
		}
		s := rpmStub{Name: f[0], Version: v, Release: r, Arch: f[2]}
		if len(f) == 4 {
			s.Provides = strings.Split(f[3], ";")
		}
		stubs = append(stubs, s)
	}
	return stubs, nil
}

// specOf is an empty package's spec with the stub's name and Provides.
// A stub of the target architecture has no BuildArch: rpmbuild takes a
// foreign one only from --target.
func specOf(s rpmStub, target string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Name: %s\nVersion: %s\nRelease: %s\nSummary: %s (kprep lab record)\nLicense: GPLv2\n",
		s.Name, s.Version, s.Release, s.Name)
	if s.Arch != target {
		fmt.Fprintf(&b, "BuildArch: %s\n", s.Arch)
	}
	for _, p := range s.Provides {
		fmt.Fprintf(&b, "Provides: %s\n", p)
	}
	b.WriteString("\n%description\nRecord of a package the distribution installs; the lab host runs Debian's files.\n\n%files\n")
	return b.String()
}

// buildRPMDB builds an empty package for each line of the table with one
// rpmbuild run and returns file name -> package bytes. target ("aarch64")
// builds for another architecture than the machine's; "" for its own.
func buildRPMDB(ctx context.Context, table, target string) (map[string][]byte, error) {
	stubs, err := parseRPMDB(table)
	if err != nil {
		return nil, err
	}
	top, err := os.MkdirTemp("", "kprep-lab-rpm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(top)
	argv := []string{"rpmbuild", "--quiet", "--define", "_topdir " + top, "-bb"}
	if target != "" {
		argv = append(argv, "--target", target)
	}
	for _, s := range stubs {
		spec := filepath.Join(top, s.Name+".spec")
		if err := os.WriteFile(spec, []byte(specOf(s, target)), 0o644); err != nil {
			return nil, err
		}
		argv = append(argv, spec)
	}
	if _, err := runCmd(ctx, nil, argv...); err != nil {
		return nil, fmt.Errorf("build the rpm database records: %w", err)
	}
	pkgs := map[string][]byte{}
	for _, s := range stubs {
		name := fmt.Sprintf("%s-%s-%s.%s.rpm", s.Name, s.Version, s.Release, s.Arch)
		data, err := os.ReadFile(filepath.Join(top, "RPMS", s.Arch, name))
		if err != nil {
			return nil, fmt.Errorf("build the rpm database record %s: %w", s.Name, err)
		}
		pkgs[name] = data
	}
	return pkgs, nil
}
