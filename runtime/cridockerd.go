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

// AppliesTo implements provision.HostFilter.
func (CRIDockerdStep) AppliesTo(_ *inventory.Host, c *inventory.Cluster) bool {
	return c.Kubernetes.CRI == "cri-dockerd"
}

// Probe reads the installed cri-dockerd's version and kprep's units.
func (CRIDockerdStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return strings.Join([]string{
		shell.Value("version", criDockerdBinary+" --version 2>&1"),
		shell.File("service", criDockerService),
		shell.File("socket", criDockerSocket),
	}, "\n")
}

// criDockerdVersion finds the version in `cri-dockerd --version` output,
// "cri-dockerd 0.3.16 (xxxxxxx)".
var criDockerdVersion = regexp.MustCompile(`cri-dockerd v?(\d+\.\d+\.\d+\S*)`)

// criDockerdInstall is the tarball to install the binary from.
type criDockerdInstall struct{ URL string }

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
	m := criDockerdVersion.FindStringSubmatch(st.Values["version"])
	switch {
	case m == nil:
		changes = append(changes, provision.Planned[criDockerdWork]{Key: "binary",
			Summary: fmt.Sprintf("cri-dockerd is not installed (want %s)", want),
			Action:  "download " + url + " and install " + criDockerdBinary, Data: criDockerdWork{Install: &criDockerdInstall{url}}})
	case !sameUpstream(m[1], want):
		changes = append(changes, provision.Planned[criDockerdWork]{Key: "binary",
			Summary: fmt.Sprintf("cri-dockerd %s is installed; the inventory pins %s", m[1], want),
			Action:  "download " + url + " and replace " + criDockerdBinary, Data: criDockerdWork{Install: &criDockerdInstall{url}}})
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

// installCriDockerd unpacks the release tarball in a temporary folder and
// installs the cri-dockerd binary in it (the tarball holds
// cri-dockerd/cri-dockerd).
func installCriDockerd(url string) string {
	return `d=$(mktemp -d) && { ` + fetchCommand(url, `"$d/cri-dockerd.tgz"`, 0o600) +
		` && tar -xzf "$d/cri-dockerd.tgz" -C "$d" && bin=$(find "$d" -type f -name cri-dockerd | head -n 1) && ` +
		`[ -n "$bin" ] && install -m 0755 "$bin" ` + criDockerdBinary + `; }; rc=$?; rm -rf "$d"; exit $rc`
}

// Apply implements provision.Step.
func (CRIDockerdStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[criDockerdWork]) error {
	reload := false
	for _, c := range changes {
		if v := c.Data.Install; v != nil {
			if _, err := t.Run(ctx, transport.Command{Line: installCriDockerd(v.URL), Timeout: downloadTimeout}); err != nil {
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
