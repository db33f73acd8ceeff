package runtime

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// PackagesStep installs Docker CE (docker-ce, docker-ce-cli, containerd.io)
// at the version the inventory pins. An installed Docker of another version
// is upgraded or downgraded only because the inventory's version changed,
// and plan shows which. The repo's versions are read only when installing,
// so plan stays read-only and fast.
type PackagesStep struct{}

// Timeouts of the package manager's slow commands.
const (
	installTimeout  = 20 * time.Minute
	metadataTimeout = 5 * time.Minute
)

// dockerPackages are the packages of Docker CE; the first two carry the
// pinned version, containerd.io comes at whatever version they need.
var dockerPackages = []string{"docker-ce", "docker-ce-cli", "containerd.io"}

func pinned(name string) bool { return name != "containerd.io" }

// Name implements provision.Step.
func (PackagesStep) Name() string { return "runtime/packages" }

// Probe asks the package databases for the installed Docker CE packages.
func (PackagesStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return shell.Packages(dockerPackages...)
}

// pkgChange is one package to install, upgrade or downgrade.
type pkgChange struct {
	Name string
	// Want is the upstream version to install; "" is the repo's newest.
	Want string
	// Have is the installed package version; "" when not installed.
	Have      string
	Downgrade bool
}

// Diff implements provision.Step.
func (PackagesStep) Diff(in provision.Input) ([]provision.Planned[pkgChange], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	if in.Facts.Family != facts.FamilyRHEL && in.Facts.Family != facts.FamilyDebian {
		return nil, fmt.Errorf("kprep installs Docker CE on EL and Ubuntu/Debian hosts; %s is neither", in.Facts.OSName)
	}
	tool := "yum"
	if in.Facts.Family == facts.FamilyDebian {
		tool = "apt-get"
	}
	installed := parseInstalled(st.Lines, in.Facts.Family)
	wantVersion := in.Cluster.Docker.Version
	var changes []provision.Planned[pkgChange]
	for _, name := range dockerPackages {
		want := ""
		if pinned(name) {
			want = wantVersion
		}
		have, ok := installed[name]
		switch {
		case !ok:
			what := "the newest " + name
			summary := name + " is not installed"
			if want != "" {
				what = name + " " + want
				summary += " (the inventory pins " + want + ")"
			}
			changes = append(changes, provision.Planned[pkgChange]{Key: name, Summary: summary,
				Action: tool + " install " + what, Data: pkgChange{Name: name, Want: want}})
		case want != "" && !sameVersion(have.Version, want):
			pc := pkgChange{Name: name, Want: want, Have: have.Version, Downgrade: !newer(want, have.Version)}
			verb := "upgrade"
			if pc.Downgrade {
				verb = "downgrade"
			}
			changes = append(changes, provision.Planned[pkgChange]{Key: name,
				Summary: fmt.Sprintf("%s %s is installed; the inventory pins %s (%s)", name, upstreamVersion(have.Version), want, verb),
				Action:  fmt.Sprintf("%s %s %s to %s", tool, verb, name, want), Data: pc})
		}
	}
	return changes, nil
}

// Apply implements provision.Step.
func (PackagesStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[pkgChange]) error {
	var pcs []pkgChange
	for _, c := range changes {
		pcs = append(pcs, c.Data)
	}
	if in.Facts.Family == facts.FamilyDebian {
		return aptInstall(ctx, t, in, pcs)
	}
	return yumInstall(ctx, t, in, pcs)
}

// yumRepoID is the repo docker-ce.repo defines.
const yumRepoID = "docker-ce-stable"

// YumTransaction returns the yum command that installs (or downgrades)
// packages from kprep's own repos alone first: on the offline and
// air-gapped hosts kprep's users run, the distribution's repos are often
// unreachable, and dnf spends a minute and a half per transaction retrying
// their mirrors. Only when that lacks a dependency (container-selinux from
// CentOS extras, say) does it try again with every repo, each given a short
// timeout, one retry, and skipped when unreachable.
func YumTransaction(verb string, repos, specs []string) string {
	own := shell.Join(append([]string{"yum", verb, "-y", "--disablerepo=*", "--enablerepo=" + strings.Join(repos, ",")}, specs...)...)
	all := shell.Join(append([]string{"yum", verb, "-y", yumSkipUnavailable, "--setopt=timeout=10", "--setopt=retries=1"}, specs...)...)
	return fmt.Sprintf(`out=$(%s 2>&1) || { printf '%%s\nkprep: trying again with every repo, the repos kprep set up were not enough (short timeouts for the others)\n' "$out" >&2; %s; }`, own, all)
}

// yumSkipUnavailable keeps a repo that cannot be reached (a dead mirror of
// some unrelated repo) from failing the install; a package that really is
// missing still fails it, naming the package. Set in [main], which repos
// inherit, since yum 3 (CentOS 7) may not match a glob repo id.
const yumSkipUnavailable = "--setopt=skip_if_unavailable=1"

func yumInstall(ctx context.Context, t provision.Target, in provision.Input, pcs []pkgChange) error {
	var available map[string][]string
	if needsRepoVersions(pcs) {
		// Only the Docker repo is asked: the list is about its packages, and
		// the host's other repos need not be reachable for it.
		line := shell.Join("yum", "-q", "--disablerepo=*", "--enablerepo="+yumRepoID, "list", "--showduplicates", "docker-ce", "docker-ce-cli")
		res, err := t.Run(ctx, transport.Command{Line: line, Timeout: metadataTimeout})
		if err != nil {
			return fmt.Errorf("list the Docker CE versions the repo has: %w", err)
		}
		available = parseYumList(string(res.Stdout), dockerPackages)
	}
	tree, release, _ := dockerYumTree(in.Facts)
	where := fmt.Sprintf("%s/linux/%s/%d/$basearch/stable", dockerBaseURL(in.Cluster), tree, release)
	install, downgrade, err := packageSpecs(pcs, available, where, false, func(name, v string) string { return name + "-" + v })
	if err != nil {
		return err
	}
	// Downgrades first: an install of a newer docker-ce-cli beside an older
	// docker-ce would be the wrong way round.
	if len(downgrade) > 0 {
		line := YumTransaction("downgrade", []string{yumRepoID}, downgrade)
		if _, err := t.Run(ctx, transport.Command{Line: line, Timeout: installTimeout}); err != nil {
			return fmt.Errorf("downgrade Docker CE: %w", err)
		}
	}
	if len(install) > 0 {
		line := YumTransaction("install", []string{yumRepoID}, install)
		if _, err := t.Run(ctx, transport.Command{Line: line, Timeout: installTimeout}); err != nil {
			return fmt.Errorf("install Docker CE: %w", err)
		}
	}
	return nil
}

// aptUpdateDocker refreshes the package lists of Docker's source alone:
// quick, and independent of the host's other sources.
const aptUpdateDocker = "apt-get update -o Dir::Etc::sourcelist=sources.list.d/docker.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0"

func aptInstall(ctx context.Context, t provision.Target, in provision.Input, pcs []pkgChange) error {
	if _, err := t.Run(ctx, transport.Command{Line: aptUpdateDocker, Timeout: metadataTimeout}); err != nil {
		return fmt.Errorf("read the Docker CE apt repo: %w", err)
	}
	var available map[string][]string
	if needsRepoVersions(pcs) {
		res, err := t.Run(ctx, transport.Command{Line: "apt-cache madison docker-ce docker-ce-cli", Timeout: metadataTimeout})
		if err != nil {
			return fmt.Errorf("list the Docker CE versions the repo has: %w", err)
		}
		available = parseMadison(string(res.Stdout))
	}
	distro, _ := dockerAptDistro(in.Facts)
	where := fmt.Sprintf("%s/linux/%s %s stable", dockerBaseURL(in.Cluster), distro, in.Facts.Codename)
	install, downgrade, err := packageSpecs(pcs, available, where, true, func(name, v string) string { return name + "=" + v })
	if err != nil {
		return err
	}
	// --force-confold keeps config files kprep wrote (containerd's) when a
	// package brings its own version of them.
	args := append([]string{"apt-get", "install", "-y", "--allow-downgrades", "-o", "Dpkg::Options::=--force-confold"}, append(downgrade, install...)...)
	line := "DEBIAN_FRONTEND=noninteractive " + shell.Join(args...)
	if _, err := t.Run(ctx, transport.Command{Line: line, Timeout: installTimeout}); err != nil {
		return fmt.Errorf("install Docker CE: %w", err)
	}
	return nil
}

func needsRepoVersions(pcs []pkgChange) bool {
	for _, pc := range pcs {
		if pc.Want != "" {
			return true
		}
	}
	return false
}

// packageSpecs turns the changes into the package manager's arguments,
// split into installs (and upgrades) and downgrades. A pinned version the
// repo does not have is an error that lists the versions it has.
func packageSpecs(pcs []pkgChange, available map[string][]string, where string, newestFirst bool, spec func(name, version string) string) (install, downgrade []string, err error) {
	for _, pc := range pcs {
		if pc.Want == "" {
			install = append(install, pc.Name)
			continue
		}
		v, ok := pickVersion(available[pc.Name], pc.Want, newestFirst)
		if !ok {
			has := "no versions of it at all"
			if vs := sortedUpstream(available[pc.Name]); len(vs) > 0 {
				has = "these versions: " + strings.Join(vs, ", ")
			}
			return nil, nil, fmt.Errorf("%s %s is not in the Docker CE repo %s, which has %s; set docker.version to one of them", pc.Name, pc.Want, where, has)
		}
		if pc.Downgrade {
			downgrade = append(downgrade, spec(pc.Name, v))
		} else {
			install = append(install, spec(pc.Name, v))
		}
	}
	return install, downgrade, nil
}
