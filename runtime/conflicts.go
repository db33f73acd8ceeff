package runtime

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// ConflictsStep removes the packages that cannot live beside Docker CE's:
// the distributions' own Docker builds (docker, docker-engine on openEuler,
// docker.io on Ubuntu), and podman, buildah, runc and containerd, whose
// files containerd.io also ships. It removes only what is installed, and
// says what.
type ConflictsStep struct{}

// conflictingRPMs are removed on EL hosts: Docker's own list for CentOS and
// RHEL, plus openEuler's docker-engine and containerd.
var conflictingRPMs = []string{
	"docker", "docker-client", "docker-client-latest", "docker-common", "docker-latest",
	"docker-latest-logrotate", "docker-logrotate", "docker-engine", "docker-selinux",
	"docker-engine-selinux", "podman", "podman-docker", "buildah", "runc", "containerd",
}

// conflictingDebs are removed on Ubuntu and Debian hosts (Docker's list).
var conflictingDebs = []string{
	"docker.io", "docker-doc", "docker-compose", "docker-compose-v2", "podman-docker", "containerd", "runc",
}

// removeTimeout bounds a package removal.
const removeTimeout = 10 * time.Minute

// Name implements provision.Step.
func (ConflictsStep) Name() string { return "runtime/conflicts" }

// Independent implements provision.Independent: the probe reads the package
// databases, which no step before it changes (the repo step writes repo
// files only).
func (ConflictsStep) Independent() bool { return true }

// Probe asks the package databases which of the conflicting packages are
// installed.
func (ConflictsStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return shell.Packages(append(append([]string{}, conflictingRPMs...), conflictingDebs...)...)
}

// Diff implements provision.Step.
func (ConflictsStep) Diff(in provision.Input) ([]provision.Planned[string], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	names := conflictingRPMs
	if in.Facts.Family == facts.FamilyDebian {
		names = conflictingDebs
	}
	installed := parseInstalled(st.Lines, in.Facts.Family)
	var found, described []string
	for _, n := range names {
		if p, ok := installed[n]; ok {
			found = append(found, n)
			described = append(described, n+" "+p.Version)
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	sort.Strings(found)
	cmd := removeCommand(in.Facts.Family, found)
	return []provision.Planned[string]{{Key: "remove",
		Summary: fmt.Sprintf("installed, and in Docker CE's way: %s", strings.Join(described, ", ")),
		Action:  cmd, Data: cmd}}, nil
}

// removeCommand is the package manager's removal of names.
func removeCommand(family facts.Family, names []string) string {
	if family == facts.FamilyDebian {
		return "DEBIAN_FRONTEND=noninteractive apt-get remove -y " + shell.Join(names...)
	}
	return "yum remove -y " + shell.Join(names...)
}

// Apply implements provision.Step.
func (ConflictsStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[string]) error {
	for _, c := range changes {
		if _, err := t.Run(ctx, transport.Command{Line: c.Data, Timeout: removeTimeout}); err != nil {
			return fmt.Errorf("remove the packages that conflict with Docker CE: %w", err)
		}
	}
	return nil
}
