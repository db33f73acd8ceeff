package mirror

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Package formats.
const (
	formatRPM = "rpm"
	formatDeb = "deb"
)

// Versions the mirror serves, under the real repos' names and numbering.
const (
	// KubernetesCNIVersion is kubernetes-cni's version.
	KubernetesCNIVersion = "1.5.1"
	// kubeRPMRelease and kubeDebRevision are pkgs.k8s.io's release suffixes.
	kubeRPMRelease  = "150500.1.1"
	kubeDebRevision = "1.1"
)

// KubePackageVersions are the kubeadm/kubelet/kubectl versions both repos
// carry; all are the one KubeVersion build, so upgrades and pins can be
// tested without a second compile.
var KubePackageVersions = []string{"1.34.3", "1.34.4"}

// dockerRelease is one Docker CE release the mirror serves: the version
// its packages carry is the version of the programs inside.
type dockerRelease struct {
	// Version is docker-ce's and docker-ce-cli's upstream version.
	Version string
	// Debian is the payload the programs come from; the upstream part of
	// its docker.io version must be Version (checkPayloadVersions).
	Debian string
}

// DockerReleases are the docker-ce versions the mirror can serve, oldest
// first: Debian bookworm's dockerd 20.10 (no `dockerd --validate`) and
// trixie's 26.1 (with it).
var DockerReleases = []string{"20.10.24", "26.1.5"}

// dockerReleases says where each of DockerReleases comes from.
var dockerReleases = map[string]dockerRelease{
	"20.10.24": {Version: "20.10.24", Debian: bookwormSet.Name},
	"26.1.5":   {Version: "26.1.5", Debian: trixieSet.Name},
}

// containerdRelease is one containerd.io version: containerd from a
// Debian payload, runc always from bookworm's.
type containerdRelease struct {
	Version string
	Debian  string
}

// ContainerdReleases are the containerd.io versions every Docker CE tree
// carries, oldest first. Docker CE's real trees carry containerd.io 1.6
// for EL7 and 1.7 for the newer ones; the lab serves both everywhere,
// since a host takes the newest one unless it pins.
var ContainerdReleases = []containerdRelease{
	{Version: "1.6.20", Debian: bookwormSet.Name},
	{Version: "1.7.24", Debian: trixieSet.Name},
}

// UbuntuDockerVersions are the docker-ce versions of the jammy apt repo.
var UbuntuDockerVersions = []string{"20.10.24", "26.1.5"}

// payload says where the real binaries come from.
type payload struct {
	debian map[string]*debianPayload // by debianSet.Name
	kube   string                    // folder with kubeadm, kubelet, kubectl
	arch   arch
}

// deb returns a Debian payload by its set's name.
func (p payload) deb(set string) *debianPayload { return p.debian[set] }

// unitDir is where a format's packages put systemd units: Docker's Ubuntu
// debs use /lib/systemd/system, the rpms and pkgs.k8s.io's debs /usr/lib/...
func unitDir(format string, docker bool) string {
	if format == formatDeb && docker {
		return "/lib/systemd/system"
	}
	return "/usr/lib/systemd/system"
}

// pkgArch is the architecture name a format uses.
func (p payload) pkgArch(format string) string {
	if format == formatRPM {
		return p.arch.RPM
	}
	return p.arch.Deb
}

// dockerVersion returns the rpm (epoch, version, release) or the deb
// version of a Docker CE package, numbered as download.docker.com numbers
// them: docker-ce has epoch 3 and docker-ce-cli epoch 1 on rpm, both 5 on
// deb; 20.10 packages have rpm release 3 and Docker's old deb scheme
// (5:20.10.24~3-0~ubuntu-jammy), 23.0 and later release 1
// (5:26.1.5-1~ubuntu.22.04~jammy).
func dockerVersion(format, name, version, dist string) (epoch, v, release string) {
	old := strings.HasPrefix(version, "20.")
	if format == formatRPM {
		epoch, release = "3", "1."+dist
		if name == "docker-ce-cli" {
			epoch = "1"
		}
		if old {
			release = "3." + dist
		}
		return epoch, version, release
	}
	if old {
		return "", "5:" + version + "~3-0~ubuntu-" + strings.TrimPrefix(dist, "ubuntu.22.04~"), ""
	}
	return "", "5:" + version + "-1~" + dist, ""
}

// upstreamOf is the upstream part of a Debian version: 26.1.5 of
// 26.1.5+dfsg1-9+deb13u1+b1, 1.7.24 of 1.7.24~ds1-6+deb13u1.
func upstreamOf(debianVersion string) string {
	v := debianVersion
	if _, rest, ok := strings.Cut(v, ":"); ok {
		v = rest
	}
	if i := strings.IndexAny(v, "+~-"); i >= 0 {
		v = v[:i]
	}
	return v
}

// checkPayloadVersions fails when a Debian payload no longer carries the
// version a Docker CE or containerd.io package is named after (Debian
// moved on): the package must never claim a version it does not hold.
func checkPayloadVersions(p payload) error {
	for _, v := range DockerReleases {
		rel := dockerReleases[v]
		if got := upstreamOf(p.deb(rel.Debian).Versions["docker.io"]); got != rel.Version {
			return fmt.Errorf("the docker.io of Debian %s is %s now, but the mirror serves it as docker-ce %s: change DockerReleases in catalogue.go",
				rel.Debian, p.deb(rel.Debian).Versions["docker.io"], rel.Version)
		}
	}
	for _, c := range ContainerdReleases {
		if got := upstreamOf(p.deb(c.Debian).Versions["containerd"]); got != c.Version {
			return fmt.Errorf("the containerd of Debian %s is %s now, but the mirror serves it as containerd.io %s: change ContainerdReleases in catalogue.go",
				c.Debian, p.deb(c.Debian).Versions["containerd"], c.Version)
		}
	}
	return nil
}

// relations picks the rpm or the deb spelling of a package's relations.
func relations(format string, rpm, deb map[string][]string) map[string][]string {
	if format == formatRPM {
		return rpm
	}
	return deb
}

// dockerCE is docker-ce: the daemon, its proxy and init, and its units.
// dist is "el9" for rpm or "ubuntu.22.04~jammy" for deb.
func (p payload) dockerCE(format, version, dist string) pkgDef {
	epoch, v, release := dockerVersion(format, "docker-ce", version, dist)
	units := unitDir(format, true)
	minContainerd := dockerMinContainerd(version)
	deb := p.deb(dockerReleases[version].Debian)
	d := pkgDef{
		Name: "docker-ce", Epoch: epoch, Version: v, Release: release, Arch: p.pkgArch(format),
		Summary:     "The open-source application container engine",
		Description: "Docker is a product for you to build, ship and run any application as a\nlightweight container.\n(kprep lab build: Debian's dockerd " + deb.Versions["docker.io"] + ".)",
		License:     "ASL 2.0", URL: "https://www.docker.com", Vendor: "Docker",
		Packager: "Docker <support@docker.com>", Section: "admin",
		Files: []pkgFile{
			{Dst: "/usr/bin/dockerd", Src: deb.path("/usr/sbin/dockerd"), Mode: 0o755},
			{Dst: "/usr/bin/docker-proxy", Src: deb.path("/usr/sbin/docker-proxy"), Mode: 0o755},
			{Dst: "/usr/bin/docker-init", Src: p.deb(bookwormSet.Name).path("/usr/bin/tini-static"), Mode: 0o755},
			{Dst: units + "/docker.service", Data: dockerService, Mode: 0o644},
			{Dst: units + "/docker.socket", Data: dockerSocket, Mode: 0o644},
		},
		Relations: relations(format, map[string][]string{
			"Requires":  {"docker-ce-cli", "containerd.io >= " + minContainerd},
			"Conflicts": {"docker", "docker-io", "docker-engine-cs", "docker-ee"},
			"Obsoletes": {"docker-ce-selinux", "docker-engine-selinux", "docker-engine"},
		}, map[string][]string{
			"Depends":   {"containerd.io (>= " + minContainerd + ")", "docker-ce-cli"},
			"Conflicts": {"docker (<< 1.5~)", "docker-engine", "docker-engine-cs", "docker.io", "lxc-docker", "lxc-docker-virtual-package"},
			"Replaces":  {"docker-engine"},
		}),
	}
	if format == formatRPM {
		d.Scripts = rpmServiceScripts([]string{"docker.service", "docker.socket"}, true)
		d.Scripts["post"] += dockerGroupScript
	} else {
		d.Scripts = debServiceScripts([]string{"docker.service", "docker.socket"}, dockerGroupScript)
	}
	return d
}

// dockerMinContainerd is the containerd.io a docker-ce release requires.
func dockerMinContainerd(version string) string {
	switch {
	case strings.HasPrefix(version, "20."):
		return "1.4.1"
	case strings.HasPrefix(version, "24."):
		return "1.6.4"
	}
	return "1.6.24"
}

// dockerCECLI is docker-ce-cli: the docker client.
func (p payload) dockerCECLI(format, version, dist string) pkgDef {
	epoch, v, release := dockerVersion(format, "docker-ce-cli", version, dist)
	deb := p.deb(dockerReleases[version].Debian)
	client := "docker.io" // bookworm's; trixie has the client in docker-cli
	if _, split := deb.Versions["docker-cli"]; split {
		client = "docker-cli"
	}
	return pkgDef{
		Name: "docker-ce-cli", Epoch: epoch, Version: v, Release: release, Arch: p.pkgArch(format),
		Summary:     "The open-source application container engine",
		Description: "Docker CLI: the open-source application container engine.\n(kprep lab build: Debian's docker client from " + client + " " + deb.Versions[client] + ".)",
		License:     "ASL 2.0", URL: "https://www.docker.com", Vendor: "Docker",
		Packager: "Docker <support@docker.com>", Section: "admin",
		Files: []pkgFile{{Dst: "/usr/bin/docker", Src: deb.path("/usr/bin/docker"), Mode: 0o755}},
		Relations: relations(format, map[string][]string{
			"Conflicts": {"docker", "docker-io", "docker-engine-cs", "docker-ee"},
		}, map[string][]string{
			"Conflicts": {"docker (<< 1.5~)", "docker-engine", "docker-engine-cs", "docker.io", "lxc-docker", "lxc-docker-virtual-package"},
			"Replaces":  {"docker-ce (<< 5:0)"},
			"Breaks":    {"docker-ce (<< 5:0)"},
		}),
	}
}

// containerdIO is containerd.io: containerd, its shims, ctr and runc, and
// the config.toml that disables CRI.
func (p payload) containerdIO(format string, c containerdRelease, dist string) pkgDef {
	v, release := c.Version, "3.1."+dist
	if format == formatDeb {
		v, release = c.Version+"-1", ""
	}
	deb, runc := p.deb(c.Debian), p.deb(bookwormSet.Name)
	files := []pkgFile{}
	for _, b := range []string{"containerd", "containerd-shim", "containerd-shim-runc-v1", "containerd-shim-runc-v2", "ctr"} {
		files = append(files, pkgFile{Dst: "/usr/bin/" + b, Src: deb.path("/usr/bin/" + b), Mode: 0o755})
	}
	files = append(files,
		pkgFile{Dst: "/usr/bin/runc", Src: runc.path("/usr/sbin/runc"), Mode: 0o755},
		pkgFile{Dst: unitDir(format, true) + "/containerd.service", Data: containerdService, Mode: 0o644},
		pkgFile{Dst: "/etc/containerd/config.toml", Data: containerdConfig, Mode: 0o644, Config: true},
	)
	d := pkgDef{
		Name: "containerd.io", Version: v, Release: release, Arch: p.pkgArch(format),
		Summary:     "An industry-standard container runtime",
		Description: "containerd is an industry-standard container runtime with an emphasis on\nsimplicity, robustness and portability.\n(kprep lab build: Debian's containerd " + deb.Versions["containerd"] + " and runc " + runc.Versions["runc"] + ".)",
		License:     "ASL 2.0", URL: "https://containerd.io", Vendor: "Docker",
		Packager: "Docker <support@docker.com>", Section: "devel",
		Files: files, Dirs: []string{"/etc/containerd"},
		Relations: relations(format, map[string][]string{
			"Provides":  {"containerd", "runc"},
			"Obsoletes": {"containerd", "runc"},
			"Conflicts": {"containerd", "runc"},
		}, map[string][]string{
			"Provides":  {"containerd", "runc"},
			"Conflicts": {"containerd", "runc"},
			"Replaces":  {"containerd", "runc"},
		}),
	}
	if format == formatRPM {
		d.Scripts = rpmServiceScripts([]string{"containerd.service"}, true)
	} else {
		d.Scripts = debServiceScripts([]string{"containerd.service"}, "")
	}
	return d
}

// kubeVersion returns the rpm (version, release) or the full deb version.
func kubeVersion(format, version string) (v, release string) {
	if format == formatRPM {
		return version, kubeRPMRelease
	}
	return version + "-" + kubeDebRevision, ""
}

// kubePackage fills what kubeadm, kubelet, kubectl and kubernetes-cni share.
func (p payload) kubePackage(format, name, version, summary string, files []pkgFile) pkgDef {
	v, release := kubeVersion(format, version)
	return pkgDef{
		Name: name, Version: v, Release: release, Arch: p.pkgArch(format),
		Summary:     summary,
		Description: summary + ".\n(kprep lab build: " + name + " built from the k8s.io/kubernetes " + KubeVersion + " module.)",
		License:     "Apache-2.0", URL: "https://kubernetes.io",
		Packager: "Kubernetes Authors <dev@kubernetes.io>", Section: "admin",
		Files: files,
	}
}

// kubeadm carries the 10-kubeadm.conf drop-in that wires kubelet to kubeadm.
func (p payload) kubeadm(format, version string) pkgDef {
	env := "/etc/sysconfig/kubelet"
	if format == formatDeb {
		env = "/etc/default/kubelet"
	}
	d := p.kubePackage(format, "kubeadm", version, "Command-line utility for administering a Kubernetes cluster", []pkgFile{
		{Dst: "/usr/bin/kubeadm", Src: filepath.Join(p.kube, "kubeadm"), Mode: 0o755},
		{Dst: "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", Data: kubeadmDropIn(env), Mode: 0o644},
	})
	d.Dirs = []string{"/usr/lib/systemd/system/kubelet.service.d"}
	return d
}

// kubelet carries kubelet.service and its environment file.
func (p payload) kubelet(format, version string) pkgDef {
	env := "/etc/sysconfig/kubelet"
	if format == formatDeb {
		env = "/etc/default/kubelet"
	}
	d := p.kubePackage(format, "kubelet", version, "Node agent for Kubernetes clusters", []pkgFile{
		{Dst: "/usr/bin/kubelet", Src: filepath.Join(p.kube, "kubelet"), Mode: 0o755},
		{Dst: "/usr/lib/systemd/system/kubelet.service", Data: kubeletService, Mode: 0o644},
		{Dst: env, Data: kubeletEnv, Mode: 0o644, Config: true},
	})
	d.Dirs = []string{"/var/lib/kubelet", "/etc/kubernetes", "/etc/kubernetes/manifests"}
	if format == formatRPM {
		d.Relations = map[string][]string{"Requires": {"kubernetes-cni >= 1.2.0"}}
		d.Scripts = rpmServiceScripts([]string{"kubelet.service"}, false)
	} else {
		d.Relations = map[string][]string{"Depends": {"kubernetes-cni (>= 1.2.0)"}}
		d.Scripts = debServiceScripts([]string{"kubelet.service"}, "")
	}
	return d
}

// kubectl is the client alone.
func (p payload) kubectl(format, version string) pkgDef {
	return p.kubePackage(format, "kubectl", version, "Command-line utility for interacting with a Kubernetes cluster", []pkgFile{
		{Dst: "/usr/bin/kubectl", Src: filepath.Join(p.kube, "kubectl"), Mode: 0o755},
	})
}

// kubernetesCNI puts the CNI plugins in /opt/cni/bin, where kubelet and
// containerd look by default.
func (p payload) kubernetesCNI(format string) (pkgDef, error) {
	src := p.deb(bookwormSet.Name).path("/usr/lib/cni")
	entries, err := os.ReadDir(src)
	if err != nil {
		return pkgDef{}, fmt.Errorf("CNI plugins from containernetworking-plugins: %w", err)
	}
	var files []pkgFile
	for _, e := range entries {
		if e.Type().IsRegular() {
			files = append(files, pkgFile{Dst: "/opt/cni/bin/" + e.Name(), Src: filepath.Join(src, e.Name()), Mode: 0o755})
		}
	}
	if len(files) == 0 {
		return pkgDef{}, fmt.Errorf("no CNI plugins in %s", src)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Dst < files[j].Dst })
	d := p.kubePackage(format, "kubernetes-cni", KubernetesCNIVersion, "Binaries required to provision kubernetes container networking", files)
	d.Description = "Binaries required to provision container networking.\n(kprep lab build: Debian's containernetworking-plugins " + p.deb(bookwormSet.Name).Versions["containernetworking-plugins"] + " under this name.)"
	d.Dirs = []string{"/opt/cni", "/opt/cni/bin", "/etc/cni", "/etc/cni/net.d"}
	return d, nil
}
