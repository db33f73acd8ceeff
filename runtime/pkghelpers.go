package runtime

import (
	"io/fs"

	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
)

// The package helpers the runtime steps use, exported for the kube phase's
// package steps, which install pinned packages from another repo the same
// way. They are the runtime steps' own functions, not copies.

// InstalledPackage is a package the host's package database lists.
type InstalledPackage = installedPackage

// ParseInstalled reads shell.Packages' lines for the host's family.
func ParseInstalled(lines []string, family facts.Family) map[string]InstalledPackage {
	return parseInstalled(lines, family)
}

// UpstreamVersion is the upstream part of a package version:
// 1.34.4 of 1.34.4-150500.1.1 and of 1.34.4-1.1.
func UpstreamVersion(pkgVersion string) string { return upstreamVersion(pkgVersion) }

// SameVersion reports whether a package version carries the upstream
// version want, compared as versions.
func SameVersion(pkgVersion, want string) bool { return sameVersion(pkgVersion, want) }

// Newer reports whether want is newer than the package version: an
// upgrade rather than a downgrade.
func Newer(want, pkgVersion string) bool { return newer(want, pkgVersion) }

// ParseYumList reads `yum list --showduplicates` into versions per package.
func ParseYumList(out string, names []string) map[string][]string { return parseYumList(out, names) }

// ParseMadison reads `apt-cache madison` into versions per package.
func ParseMadison(out string) map[string][]string { return parseMadison(out) }

// PickVersion finds the repo's newest build of the upstream version want.
func PickVersion(available []string, want string, newestFirst bool) (string, bool) {
	return pickVersion(available, want, newestFirst)
}

// SortedUpstream lists the distinct upstream versions, oldest first.
func SortedUpstream(pkgVersions []string) []string { return sortedUpstream(pkgVersions) }

// FetchCommand is a shell line that downloads url into dest (a shell word)
// atomically, with curl, wget or apt's helper, whichever the host has.
func FetchCommand(url, dest string, mode fs.FileMode) string { return fetchCommand(url, dest, mode) }

// SandboxImage is the pod sandbox image the runtime steps configure:
// kubernetes.sandboxImage, or kubeadm's pause image.
func SandboxImage(c *inventory.Cluster) string { return sandboxImage(c) }

// KubeadmPauseImage is the pause image kubeadm lists for the inventory's
// Kubernetes version and image repository.
func KubeadmPauseImage(c *inventory.Cluster) string { return kubeadmPauseImage(c) }

// ProxyEnv is the proxy environment the runtime steps give docker and
// containerd (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), in order; nil without
// docker.proxy.
func ProxyEnv(c *inventory.Cluster) [][2]string { return proxyEnv(c) }

// Timeouts of the package manager's slow commands and of a download.
const (
	InstallTimeout  = installTimeout
	MetadataTimeout = metadataTimeout
	DownloadTimeout = downloadTimeout
)
