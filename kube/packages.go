package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/runtime"
)

// PackagesStep installs kubelet, kubeadm and kubectl at kubernetes.version
// and kubernetes-cni, holds them against unplanned upgrades (apt-mark hold;
// on yum the repo file's exclude, which kprep alone lifts for its own
// installs) and enables the kubelet, which kubeadm starts. An installed
// version other than the inventory's is upgraded or downgraded only because
// the inventory's version changed, and plan says which. The repo's versions
// are read only when installing, so plan stays read-only and fast.
type PackagesStep struct{}

// kubePackages are installed; the pinned ones carry kubernetes.version,
// kubernetes-cni comes at whatever version the repo has.
var (
	kubePackages   = []string{"kubelet", "kubeadm", "kubectl", "kubernetes-cni"}
	pinnedPackages = []string{"kubelet", "kubeadm", "kubectl"}
)

// Name implements provision.Step.
func (PackagesStep) Name() string { return "kube/packages" }

// Probe asks the package databases for the packages, apt for its holds and
// systemd whether the kubelet is enabled.
func (PackagesStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return strings.Join([]string{
		shell.Packages(kubePackages...),
		shell.Value("held", "apt-mark showhold"),
		kubeletUnit("", "kubelet"),
	}, "\n")
}

// pkgWork is what one change does: install (or move) a package, hold the
// packages, or enable the kubelet.
type pkgWork struct {
	Install *pkgInstall
	Hold    []string
	Enable  bool
}

// pkgInstall is one package to install, upgrade or downgrade.
type pkgInstall struct {
	Name string
	// Want is the upstream version; "" is the repo's newest.
	Want      string
	Downgrade bool
}

// Diff implements provision.Step.
func (PackagesStep) Diff(in provision.Input) ([]provision.Planned[pkgWork], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	f := in.Facts
	tool := map[facts.Family]string{facts.FamilyRHEL: "yum", facts.FamilyDebian: "apt-get"}[f.Family]
	if tool == "" {
		return nil, fmt.Errorf("kprep installs Kubernetes on EL and Ubuntu/Debian hosts; %s is neither", f.OSName)
	}
	want := in.Cluster.Kubernetes.Version
	installed := runtime.ParseInstalled(st.Lines, f.Family)
	var changes []provision.Planned[pkgWork]
	for _, name := range kubePackages {
		pin := ""
		if slices.Contains(pinnedPackages, name) {
			pin = want
		}
		have, ok := installed[name]
		switch {
		case !ok:
			what, summary := "the newest "+name, name+" is not installed"
			if pin != "" {
				what, summary = name+" "+pin, summary+" (the inventory pins "+pin+")"
			}
			changes = append(changes, provision.Planned[pkgWork]{Key: name, Summary: summary,
				Action: tool + " install " + what, Data: pkgWork{Install: &pkgInstall{Name: name, Want: pin}}})
		case pin != "" && !runtime.SameVersion(have.Version, pin):
			p := pkgInstall{Name: name, Want: pin, Downgrade: !runtime.Newer(pin, have.Version)}
			verb := "upgrade"
			if p.Downgrade {
				verb = "downgrade"
			}
			changes = append(changes, provision.Planned[pkgWork]{Key: name,
				Summary: fmt.Sprintf("%s %s is installed; the inventory pins %s (%s)", name, runtime.UpstreamVersion(have.Version), pin, verb),
				Action:  fmt.Sprintf("%s %s %s to %s", tool, verb, name, pin), Data: pkgWork{Install: &p}})
		}
	}
	if f.Family == facts.FamilyDebian {
		held := strings.Fields(st.Values["held"])
		var unheld []string
		for _, name := range kubePackages {
			if !slices.Contains(held, name) {
				unheld = append(unheld, name)
			}
		}
		if len(unheld) > 0 {
			changes = append(changes, provision.Planned[pkgWork]{Key: "hold",
				Summary: "not held, so an apt upgrade would move them off the pinned version: " + strings.Join(unheld, ", "),
				Action:  "apt-mark hold " + strings.Join(kubePackages, " "), Data: pkgWork{Hold: kubePackages}})
		}
	}
	if st.Values["kubelet"] != "enabled" {
		state := st.Values["kubelet"]
		if state == "" {
			state = "not installed"
		}
		changes = append(changes, provision.Planned[pkgWork]{Key: "enable",
			Summary: "the kubelet is " + state + " at boot",
			Action:  "systemctl enable kubelet (kubeadm starts it)", Data: pkgWork{Enable: true}})
	}
	return changes, nil
}

// Apply implements provision.Step: packages first, then the hold (apt
// holds only installed packages), then the kubelet's unit, which the
// packages bring.
func (PackagesStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[pkgWork]) error {
	var installs []pkgInstall
	var hold []string
	enable := false
	for _, c := range changes {
		if c.Data.Install != nil {
			installs = append(installs, *c.Data.Install)
		}
		hold = append(hold, c.Data.Hold...)
		enable = enable || c.Data.Enable
	}
	if len(installs) > 0 {
		install := yumInstall
		if in.Facts.Family == facts.FamilyDebian {
			install = aptInstall
			// apt-get install --allow-change-held-packages of another
			// version lifts the package's hold (seen on the lab's Ubuntu
			// 22.04): hold them all again after every install.
			hold = kubePackages
		}
		if err := install(ctx, t, in, installs); err != nil {
			return err
		}
	}
	if len(hold) > 0 {
		if _, err := t.Run(ctx, transport.Command{Line: shell.Join(append([]string{"apt-mark", "hold"}, hold...)...)}); err != nil {
			return fmt.Errorf("hold the Kubernetes packages: %w", err)
		}
	}
	if enable {
		if _, err := t.Run(ctx, transport.Command{Line: "systemctl enable kubelet"}); err != nil {
			return fmt.Errorf("enable the kubelet: %w", err)
		}
	}
	return nil
}

// yumLiftExclude lets kprep's own yum runs see the Kubernetes packages,
// which the repo file excludes from every other yum run.
const yumLiftExclude = "--disableexcludes=" + yumRepoID

func yumInstall(ctx context.Context, t provision.Target, in provision.Input, installs []pkgInstall) error {
	var available map[string][]string
	if pinnedAmong(installs) {
		line := shell.Join("yum", "-q", "--disablerepo=*", "--enablerepo="+yumRepoID, yumLiftExclude,
			"list", "--showduplicates", "kubelet", "kubeadm", "kubectl")
		res, err := t.Run(ctx, transport.Command{Line: line, Timeout: runtime.MetadataTimeout})
		if err != nil {
			return fmt.Errorf("list the Kubernetes versions the repo has: %w", err)
		}
		available = runtime.ParseYumList(string(res.Stdout), pinnedPackages)
	}
	install, downgrade, err := specs(in.Cluster, installs, available, false, func(name, v string) string { return name + "-" + v })
	if err != nil {
		return err
	}
	// Downgrades first, then installs and upgrades, so kubeadm and the
	// kubelet never sit at versions on either side of the pin together.
	for _, step := range []struct {
		verb  string
		specs []string
	}{{"downgrade", downgrade}, {"install", install}} {
		if len(step.specs) == 0 {
			continue
		}
		// The Kubernetes repo alone first, every repo (with short timeouts)
		// only when a dependency such as conntrack lives elsewhere.
		line := runtime.YumTransaction(step.verb, []string{yumRepoID}, append([]string{yumLiftExclude}, step.specs...))
		if _, err := t.Run(ctx, transport.Command{Line: line, Timeout: runtime.InstallTimeout}); err != nil {
			return fmt.Errorf("%s the Kubernetes packages: %w", step.verb, err)
		}
	}
	return nil
}

// aptUpdateKube refreshes the lists of the Kubernetes source alone.
const aptUpdateKube = "apt-get update -o Dir::Etc::sourcelist=sources.list.d/kubernetes.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0"

func aptInstall(ctx context.Context, t provision.Target, in provision.Input, installs []pkgInstall) error {
	if _, err := t.Run(ctx, transport.Command{Line: aptUpdateKube, Timeout: runtime.MetadataTimeout}); err != nil {
		return fmt.Errorf("read the Kubernetes apt repo: %w", err)
	}
	var available map[string][]string
	if pinnedAmong(installs) {
		res, err := t.Run(ctx, transport.Command{Line: "apt-cache madison kubelet kubeadm kubectl", Timeout: runtime.MetadataTimeout})
		if err != nil {
			return fmt.Errorf("list the Kubernetes versions the repo has: %w", err)
		}
		available = runtime.ParseMadison(string(res.Stdout))
	}
	install, downgrade, err := specs(in.Cluster, installs, available, true, func(name, v string) string { return name + "=" + v })
	if err != nil {
		return err
	}
	// A held package moves only with --allow-change-held-packages, which
	// kprep gives for the version the inventory asks for; Apply holds the
	// packages again afterwards, since apt lifts the hold of one it moves.
	args := append([]string{"apt-get", "install", "-y", "--allow-downgrades", "--allow-change-held-packages",
		"-o", "Dpkg::Options::=--force-confold"}, append(downgrade, install...)...)
	if _, err := t.Run(ctx, transport.Command{Line: "DEBIAN_FRONTEND=noninteractive " + shell.Join(args...), Timeout: runtime.InstallTimeout}); err != nil {
		return fmt.Errorf("install the Kubernetes packages: %w", err)
	}
	return nil
}

func pinnedAmong(installs []pkgInstall) bool {
	return slices.ContainsFunc(installs, func(p pkgInstall) bool { return p.Want != "" })
}

// specs turns the installs into the package manager's arguments, split
// into installs (and upgrades) and downgrades. A version the repo does not
// have is an error listing the ones it has.
func specs(c *inventory.Cluster, installs []pkgInstall, available map[string][]string, newestFirst bool, spec func(name, version string) string) (install, downgrade []string, err error) {
	for _, p := range installs {
		if p.Want == "" {
			install = append(install, p.Name)
			continue
		}
		v, ok := runtime.PickVersion(available[p.Name], p.Want, newestFirst)
		if !ok {
			has := "no versions of it at all"
			if vs := runtime.SortedUpstream(available[p.Name]); len(vs) > 0 {
				has = "these versions: " + strings.Join(vs, ", ")
			}
			minor, _ := repoMinor(c)
			return nil, nil, fmt.Errorf("%s %s is not in the Kubernetes repo %s/%s, which has %s; set kubernetes.version to one of them",
				p.Name, p.Want, repoBase(c), minor, has)
		}
		if p.Downgrade {
			downgrade = append(downgrade, spec(p.Name, v))
		} else {
			install = append(install, spec(p.Name, v))
		}
	}
	return install, downgrade, nil
}
