package runtime

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/go-version"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/templates"
)

// CRIDockerdStep installs cri-dockerd, the CRI that lets Kubernetes 1.24
// and later (which dropped dockershim) use Docker Engine, with
// kubernetes.cri: cri-dockerd. It ships no package repo, so the binary
// comes from the release tarball the inventory names, and the units from
// kprep's templates, telling it the inventory's sandbox image. ServiceStep
// starts it and restarts it when the running one differs.
type CRIDockerdStep struct{}

// Unit files kprep writes for cri-dockerd: under /etc, where they take
// precedence over any a package put under /usr/lib.
const (
	criDockerService = "/etc/systemd/system/cri-docker.service"
	criDockerSocket  = "/etc/systemd/system/cri-docker.socket"
)

// Name implements provision.Step.
func (CRIDockerdStep) Name() string { return "runtime/cri-dockerd" }

// DependsOn implements provision.DependsOn: its binary and units are
// its own; only the package steps could touch what it reads.
func (CRIDockerdStep) DependsOn() []string { return installSteps }

// AppliesTo implements provision.HostFilter.
func (CRIDockerdStep) AppliesTo(_ *inventory.Host, c *inventory.Cluster) bool {
	return c.Kubernetes.CRI == "cri-dockerd"
}

// Probe reads the installed cri-dockerd's version and kprep's units.
func (CRIDockerdStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return strings.Join([]string{
		// From kprep's record while the binary is the file it saw: its
		// --version is a Go program's start, 30-40 ms of host CPU.
		shell.BinaryVersions("version_", criDockerdBinary),
		shell.File("service", criDockerService),
		shell.File("socket", criDockerSocket),
	}, "\n")
}

// criDockerdVersion finds the version in `cri-dockerd --version` output,
// "cri-dockerd 0.3.16 (xxxxxxx)".
var criDockerdVersion = regexp.MustCompile(`cri-dockerd v?(\d+\.\d+\.\d+\S*)`)

// criDockerdInstall is the tarball to install the binary from and the
// SHA-256 it must have.
type criDockerdInstall struct{ URL, SHA256 string }

// knownCRIDockerdSums are the SHA-256 sums of Mirantis' release tarballs
// (cri-dockerd-VERSION.ARCH.tgz) for the versions kprep knows, as
// kubespray records them; kubernetes.criDockerd.sha256 gives others.
var knownCRIDockerdSums = map[string]map[string]string{
	"0.3.16": {
		"amd64": "cc7f181ce850130dc375515c54cd8a27e1e862252abc5b7eade7b4a03ddabd8e",
		"arm64": "0ab930b6f7ab87697cd94c954d01e19fdd5b5d65810662effb957c5db49a55d4",
	},
	"0.3.17": {
		"amd64": "5568d571c2cfee7a31ce0b35b7fcc65b96c85b573ee6645151c4d022ed92a626",
		"arm64": "761ee6db946ff2c8da04e57833dbbca8e5c38bc3f5b8e84bda689b1b7260c36f",
	},
	"0.3.20": {
		"amd64": "2ce46d6bbd7f6a7e06e211836c201fdc2311111913eccc63a03f6ef4fe1958fc",
		"arm64": "e6b4661c51c832ee1cbbb75d1c8b086fa803acc153d400454c3b8cf324547d89",
	},
	"0.3.24": {
		"amd64": "dd4b7f514c248a3aaca398f467430a4c58aae9a77ea8b96a2f5b5d6fba0948d1",
		"arm64": "c783a03735887c4a8fc894bd4cf7a1c0defef3ecf50a4d79ff31eed45c26b17e",
	},
}

// criDockerdSum returns the SHA-256 the tarball for arch must have: the
// inventory's, else the one kprep knows for the version.
func criDockerdSum(c *inventory.Cluster, arch string) (string, error) {
	cd := c.Kubernetes.CRIDockerd
	if sum := cd.SHA256[arch]; sum != "" {
		return sum, nil
	}
	v := strings.TrimPrefix(cd.Version, "v")
	if sum := knownCRIDockerdSums[v][arch]; sum != "" {
		return sum, nil
	}
	return "", fmt.Errorf("kprep knows no SHA-256 for cri-dockerd %s on %s, and a download it cannot check is never installed: "+
		"set kubernetes.criDockerd.sha256.%s to the sum of %s", v, arch, arch, criDockerdURL(c, arch))
}

// criDockerdUnits are the unit files to write.
type criDockerdUnits struct{ Service, Socket []byte }

// criDockerdWork is what one change of CRIDockerdStep does.
type criDockerdWork struct {
	Install *criDockerdInstall
	Units   *criDockerdUnits
}

// criDockerdURL fills the inventory's URL template for the host.
func criDockerdURL(c *inventory.Cluster, arch string) string {
	v := strings.TrimPrefix(c.Kubernetes.CRIDockerd.Version, "v")
	return strings.NewReplacer("{version}", v, "{arch}", arch).Replace(c.Kubernetes.CRIDockerd.URL)
}

// Diff implements provision.Step.
func (CRIDockerdStep) Diff(in provision.Input) ([]provision.Planned[criDockerdWork], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	want := strings.TrimPrefix(in.Cluster.Kubernetes.CRIDockerd.Version, "v")
	url := criDockerdURL(in.Cluster, in.Facts.GoArch())
	var changes []provision.Planned[criDockerdWork]
	m := criDockerdVersion.FindStringSubmatch(st.Values["version_cri-dockerd"])
	if m == nil || !sameUpstream(m[1], want) {
		sum, err := criDockerdSum(in.Cluster, in.Facts.GoArch())
		if err != nil {
			return nil, err
		}
		summary, verb := fmt.Sprintf("cri-dockerd is not installed (want %s)", want), "install"
		if m != nil {
			summary, verb = fmt.Sprintf("cri-dockerd %s is installed; the inventory pins %s", m[1], want), "replace"
		}
		changes = append(changes, provision.Planned[criDockerdWork]{Key: "binary", Summary: summary,
			Action: fmt.Sprintf("download %s, check its SHA-256 (%s) and %s %s", url, sum, verb, criDockerdBinary),
			Data:   criDockerdWork{Install: &criDockerdInstall{URL: url, SHA256: sum}}})
	}
	service, err := templates.Render("cri-docker.service", map[string]any{"SandboxImage": sandboxImage(in.Cluster)})
	if err != nil {
		return nil, err
	}
	socket, err := templates.Render("cri-docker.socket", nil)
	if err != nil {
		return nil, err
	}
	haveService, _ := st.File("service")
	haveSocket, _ := st.File("socket")
	if string(haveService) != string(service) || string(haveSocket) != string(socket) {
		summary := "cri-docker.service and cri-docker.socket differ from kprep's"
		if !st.HasFile("service") || len(haveService) == 0 {
			summary = "cri-docker.service is missing"
		}
		changes = append(changes, provision.Planned[criDockerdWork]{Key: "units", Summary: summary,
			Action: "write " + criDockerService + " and " + criDockerSocket + " (sandbox image " + sandboxImage(in.Cluster) + "); systemctl daemon-reload",
			Data:   criDockerdWork{Units: &criDockerdUnits{Service: service, Socket: socket}}})
	}
	return changes, nil
}

// sameUpstream compares two plain versions as versions.
func sameUpstream(a, b string) bool {
	va, err1 := version.NewVersion(a)
	vb, err2 := version.NewVersion(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return va.Equal(vb)
}

// installCriDockerd downloads the release tarball into a temporary folder,
// checks its SHA-256, unpacks it and installs the cri-dockerd binary in it
// (the tarball holds cri-dockerd/cri-dockerd) at dest. A tarball whose sum
// differs is an error naming both sums, and nothing is installed.
func installCriDockerd(in criDockerdInstall, dest string) string {
	return `d=$(mktemp -d) && { ` + fetchCommand(in.URL, `"$d/cri-dockerd.tgz"`, 0o600) +
		` && got=$(sha256sum "$d/cri-dockerd.tgz" | cut -d' ' -f1) && ` +
		`{ [ "$got" = ` + shell.Quote(in.SHA256) + ` ] || { echo "the cri-dockerd tarball has SHA-256 $got, but ` + in.SHA256 + ` was expected: not installed" >&2; false; }; } && ` +
		`tar -xzf "$d/cri-dockerd.tgz" -C "$d" && bin=$(find "$d" -type f -name cri-dockerd | head -n 1) && ` +
		`[ -n "$bin" ] && install -m 0755 "$bin" ` + shell.Quote(dest) + `; }; rc=$?; rm -rf "$d"; exit $rc`
}

// Apply implements provision.Step.
func (CRIDockerdStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[criDockerdWork]) error {
	reload := false
	for _, c := range changes {
		if v := c.Data.Install; v != nil {
			if _, err := t.Run(ctx, transport.Command{Line: installCriDockerd(*v, criDockerdBinary), Timeout: downloadTimeout}); err != nil {
				return fmt.Errorf("install cri-dockerd from %s: %w", v.URL, err)
			}
		}
		if v := c.Data.Units; v != nil {
			if err := t.WriteFile(ctx, criDockerService, v.Service, transport.WriteOptions{Mode: 0o644}); err != nil {
				return err
			}
			if err := t.WriteFile(ctx, criDockerSocket, v.Socket, transport.WriteOptions{Mode: 0o644}); err != nil {
				return err
			}
			reload = true
		}
	}
	if reload {
		if _, err := t.Run(ctx, transport.Command{Line: "systemctl daemon-reload"}); err != nil {
			return err
		}
	}
	return nil
}
