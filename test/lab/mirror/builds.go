package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KubeVersion is the Kubernetes release the lab builds from the module proxy.
const KubeVersion = "v1.34.4"

// kubeRelease is one Kubernetes release the lab serves: its programs'
// build and the etcd and CoreDNS its kubeadm asks for. A second release
// (1.31, say) is one more entry with its own kubebuild module; etcd and
// CoreDNS builds are shared when the versions match.
type kubeRelease struct {
	Version string // v1.34.4
	// BuildDate is the tag's time as the module proxy reports it (its
	// .info): a fixed date keeps the binaries and their key the same.
	BuildDate string
	Module    string  // its kubebuild module below test/
	Etcd      goBuild // the etcd its kubeadm lists
	EtcdTag   string  // that image's tag in kubeadm's list (3.6.5-0)
	CoreDNS   goBuild
	CoreTag   string // v1.12.1
	PauseTag  string // 3.10.1
}

// kubeReleases are the Kubernetes releases the lab serves.
var kubeReleases = []kubeRelease{{
	Version: KubeVersion, BuildDate: "2026-02-10T12:53:36Z", Module: "kubebuild",
	Etcd: etcdBuild("3.6.5", "a061450"), EtcdTag: "3.6.5-0",
	CoreDNS: corednsBuild("1.12.1", "707c7c1"), CoreTag: "v1.12.1",
	PauseTag: "3.10.1",
}}

// kubePrograms are the programs a kubebuild module makes, in one go build:
// the host packages' (and the lab's CRI client) and the control plane's.
var kubePrograms = []string{"kubeadm", "kubelet", "kubectl", "lab-crictl",
	"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}

// kubeBuild is the go build of a release's kubebuild module.
func (k kubeRelease) build() goBuild {
	checks := []versionCheck{
		{Args: []string{"kubeadm", "version", "-o", "short"}, Want: k.Version},
		{Args: []string{"kubelet", "--version"}, Want: "Kubernetes " + k.Version},
		{Args: []string{"kubectl", "version", "--client"}, Want: "Client Version: " + k.Version},
	}
	for _, p := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
		checks = append(checks, versionCheck{Args: []string{p, "--version"}, Want: "Kubernetes " + k.Version})
	}
	return goBuild{
		Name: "kubernetes-" + k.Version, Module: k.Module, Packages: []string{"./cmd/..."},
		Programs: kubePrograms, Checks: checks,
		// gitCommit cannot be the upstream commit (the module proxy does
		// not say it for k8s.io/kubernetes); it names this build's recipe
		// instead, so two lab binaries with the same commit are the same build.
		LDFlags: func(recipe string) string { return kubeLDFlags(k.Version, k.BuildDate, recipe) },
	}
}

// kubeLDFlags sets the version that the Kubernetes programs report, in
// both packages the release build sets (component-base for the servers
// and kubeadm, client-go for kubectl's client version).
func kubeLDFlags(version, buildDate, gitCommit string) string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(version, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	flags := []string{"-s", "-w"}
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X", pkg+".gitVersion="+version,
			"-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitCommit="+gitCommit,
			"-X", pkg+".gitTreeState=clean",
			"-X", pkg+".buildDate="+buildDate,
		)
	}
	return strings.Join(flags, " ")
}

// etcdBuild builds etcd, etcdctl and etcdutl at version from
// test/imagebuild/etcd (go.etcd.io/etcd/{server,etcdctl,etcdutl}/v3, the
// programs the upstream etcd image carries). gitSHA is the tag's commit as
// the module proxy's .info reports it, set as etcd's release build does.
func etcdBuild(version, gitSHA string) goBuild {
	return goBuild{
		Name: "etcd-" + version, Module: "imagebuild/etcd",
		Packages: []string{"go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/etcdctl/v3", "go.etcd.io/etcd/etcdutl/v3"},
		// go build names a program after the path element before /v3.
		Rename:   map[string]string{"server": "etcd"},
		Programs: []string{"etcd", "etcdctl", "etcdutl"},
		LDFlags:  func(string) string { return "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=" + gitSHA },
		Checks: []versionCheck{
			{Args: []string{"etcd", "--version"}, Want: "etcd Version: " + version},
			{Args: []string{"etcdctl", "version"}, Want: "etcdctl version: " + version},
			{Args: []string{"etcdutl", "version"}, Want: "etcdutl version: " + version},
		},
	}
}

// corednsBuild builds CoreDNS at version from test/imagebuild/coredns
// (github.com/coredns/coredns's own main, all its default plugins).
func corednsBuild(version, gitCommit string) goBuild {
	return goBuild{
		Name: "coredns-" + version, Module: "imagebuild/coredns",
		Packages: []string{"github.com/coredns/coredns"},
		Programs: []string{"coredns"},
		LDFlags:  func(string) string { return "-s -w -X github.com/coredns/coredns/coremain.GitCommit=" + gitCommit },
		Checks:   []versionCheck{{Args: []string{"coredns", "-version"}, Want: "CoreDNS-" + version}},
	}
}

// FlannelVersion is the flannel release the lab serves.
const FlannelVersion = "v0.28.10"

// flannelModule is flannel's Go module.
const flannelModule = "github.com/flannel-io/flannel"

// flannelDroppedBackends are the backends the lab's flanneld leaves out:
// tencentvpc's Tencent Cloud SDK modules are refused by the module proxy
// (403), and udp needs cgo. vxlan, host-gw, ipip, ipsec, wireguard,
// alloc and extension stay.
var flannelDroppedBackends = []string{
	flannelModule + "/pkg/backend/tencentvpc",
	flannelModule + "/pkg/backend/udp",
}

// flannelBuild builds flanneld (flannel's main without the dropped
// backends) and install-conf, the programs of the upstream flannel image,
// from test/imagebuild/flannel.
func flannelBuild() goBuild {
	return goBuild{
		Name: "flannel-" + FlannelVersion, Module: "imagebuild/flannel",
		Packages: []string{"./cmd/flanneld", flannelModule + "/cmd/install_conf"},
		Rename:   map[string]string{"install_conf": "install-conf"},
		Programs: []string{"flanneld", "install-conf"},
		LDFlags: func(string) string {
			return "-s -w -X " + flannelModule + "/pkg/version.Version=" + FlannelVersion
		},
		Generate:       generateFlanneld,
		GenerateRecipe: "flanneld main.go without " + strings.Join(flannelDroppedBackends, " "),
		Checks:         []versionCheck{{Args: []string{"flanneld", "--version"}, Want: FlannelVersion}},
	}
}

// generateFlanneld writes cmd/flanneld/main.go into the module copy dir:
// flannel's own main.go from the module cache, without the dropped
// backends' imports. Nothing of flannel's is kept in kprep's tree.
func generateFlanneld(ctx context.Context, goCmd *runner, dir string) error {
	out, err := goCmd.run(ctx, dir, "go", "mod", "download", "-json", flannelModule)
	if err != nil {
		return fmt.Errorf("download %s: %w", flannelModule, err)
	}
	var mod struct{ Dir, Version string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download -json %s printed %q (%v)", flannelModule, out, err)
	}
	if mod.Version != FlannelVersion {
		return fmt.Errorf("test/imagebuild/flannel requires %s %s, FlannelVersion is %s: change both together", flannelModule, mod.Version, FlannelVersion)
	}
	src, err := os.ReadFile(filepath.Join(mod.Dir, "main.go"))
	if err != nil {
		return err
	}
	trimmed, err := trimImports(src, flannelDroppedBackends)
	if err != nil {
		return fmt.Errorf("flannel %s's main.go: %w", mod.Version, err)
	}
	return writeFile(filepath.Join(dir, "cmd", "flanneld", "main.go"), trimmed, 0o644)
}

// FlannelCNIVersion is the containernetworking/plugins release whose
// flannel plugin the lab serves (flannel-io/cni-plugin, its continuation,
// is not served by the module proxy; v0.9.1 is the last release that
// still carried plugins/meta/flannel).
const FlannelCNIVersion = "v0.9.1"

// flannelCNIBuild builds the flannel CNI plugin from test/imagebuild/flannel-cni.
func flannelCNIBuild() goBuild {
	return goBuild{
		Name: "flannel-cni-" + FlannelCNIVersion, Module: "imagebuild/flannel-cni",
		Packages: []string{"github.com/containernetworking/plugins/plugins/meta/flannel"},
		Programs: []string{"flannel"},
		LDFlags: func(string) string {
			return "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=" + FlannelCNIVersion
		},
		// Without CNI_COMMAND a CNI plugin prints its "about" line.
		Checks: []versionCheck{{Args: []string{"flannel"}, Want: "CNI flannel plugin " + FlannelCNIVersion}},
	}
}
