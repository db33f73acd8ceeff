package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The base root file system: Debian bookworm with everything any
// personality needs, built once and shared read-only by every host.
const (
	baseSuite = "bookworm"
	// baseRecipeVersion changes when the build steps below change.
	baseRecipeVersion = "3"
)

// debootstrapPackages go in with debootstrap itself: what the image needs
// to run apt and boot.
var debootstrapPackages = []string{
	"systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "iproute2", "procps", "kmod",
}

// basePackages are installed with apt afterwards. Real on the hosts: sshd
// and sftp (kprep writes files over SFTP), firewalld, iptables and the
// conntrack/socat/ethtool/ebtables tools kubeadm's preflight looks for,
// dnf and rpm for the EL personalities, apt and ufw for Ubuntu, and the
// libraries the mirror's dockerd and runc link against.
var basePackages = []string{
	"openssh-sftp-server", "firewalld", "iptables", "dnf", "rpm", "util-linux", "conntrack",
	"socat", "ethtool", "ebtables", "ca-certificates", "curl", "libseccomp2", "libdevmapper1.02.1",
	"apt", "ufw", "lsb-release", "python3", "iputils-ping", "less", "xz-utils", "ipset",
}

// baseKey identifies the base recipe.
func baseKey() string {
	return recipeKey("base", baseRecipeVersion, baseSuite, runtime.GOARCH,
		strings.Join(debootstrapPackages, ","), strings.Join(basePackages, ","), baseSetupScript)
}

// baseSetupScript runs inside the new root file system with the network:
// it installs the packages and then cuts the image off from Debian, since
// hosts have no internet (they install from the lab's mirror).
const baseSetupScript = `
export DEBIAN_FRONTEND=noninteractive
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
echo "deb $LAB_DEBIAN_MIRROR ` + baseSuite + ` main" >/etc/apt/sources.list
apt-get update -q
apt-get install -y -q --no-install-recommends $LAB_PACKAGES
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
: >/etc/apt/sources.list
rm -f /etc/apt/sources.list.d/*
# Each host gets its own host keys and machine id.
rm -f /etc/ssh/ssh_host_*
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
systemctl enable systemd-networkd.service
systemctl set-default multi-user.target
`

// baseDir is the cache entry of the base with the given key; its root file
// system is in rootfs/, and done/ marks it finished.
func baseDir(cacheDir, key string) string { return filepath.Join(cacheDir, "base-"+key) }

// buildBase returns the base root file system's folder, building it on a
// cache miss (about a minute: debootstrap, then apt).
func buildBase(ctx context.Context, o Options, log *logger) (dir, key string, err error) {
	key = baseKey()
	final := baseDir(o.CacheDir, key)
	rootfs := filepath.Join(final, "rootfs")
	if exists(filepath.Join(final, "done")) {
		log.printf("base root file system: cached (%s)", final)
		return rootfs, key, nil
	}
	start := time.Now()
	tmp := filepath.Join(buildDir(o.CacheDir), "base-"+key)
	if err := unmountAll(tmp); err != nil {
		return "", "", err
	}
	if err := removeTree(tmp); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", "", err
	}
	log.printf("base root file system: debootstrap %s from %s", baseSuite, o.DebianMirror)
	if _, err := runCmd(ctx, nil, "debootstrap", "--variant=minbase",
		"--include="+strings.Join(debootstrapPackages, ","), baseSuite,
		filepath.Join(tmp, "rootfs"), o.DebianMirror); err != nil {
		return "", "", fmt.Errorf("debootstrap the base root file system (needs Debian's mirror %s; set KPREP_LAB_DEBIAN_MIRROR for another): %w", o.DebianMirror, err)
	}
	log.printf("base root file system: apt-get install %d packages", len(basePackages))
	script := "LAB_DEBIAN_MIRROR='" + o.DebianMirror + "'\nLAB_PACKAGES='" + strings.Join(basePackages, " ") + "'\n" + baseSetupScript
	if _, err := runInImage(ctx, filepath.Join(tmp, "rootfs"), true, nil, script); err != nil {
		return "", "", fmt.Errorf("install packages into the base root file system: %w", err)
	}
	recipe := fmt.Sprintf("debootstrap --variant=minbase %s (%s)\ndebootstrap packages: %s\napt packages: %s\n",
		baseSuite, runtime.GOARCH, strings.Join(debootstrapPackages, " "), strings.Join(basePackages, " "))
	if err := os.WriteFile(filepath.Join(tmp, "recipe.txt"), []byte(recipe), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "done"), nil, 0o644); err != nil {
		return "", "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", "", fmt.Errorf("move the base root file system into the cache: %w", err)
	}
	log.printf("base root file system: built in %s (%s)", time.Since(start).Round(time.Second), final)
	return rootfs, key, nil
}
