package kube

import (
	"context"
	"fmt"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/runtime"
	"github.com/kprep/kprep/templates"
)

// RepoStep makes the host's package manager see the Kubernetes packages of
// kubernetes.version's minor from kubernetes.repo, laid out as pkgs.k8s.io
// is (<repo>/v1.34/rpm/, <repo>/v1.34/deb/), as are its mirrors
// (mirrors.aliyun.com/kubernetes-new/core/stable, ...). pkgs.k8s.io keeps
// one repo per minor, so a new minor in the inventory is a new repo.
type RepoStep struct{}

// Files the repo step owns.
const (
	yumRepoPath    = "/etc/yum.repos.d/kubernetes.repo"
	yumRepoID      = "kubernetes"
	aptListPath    = "/etc/apt/sources.list.d/kubernetes.list"
	aptKeyringPath = "/etc/apt/keyrings/kubernetes.asc"
)

// Name implements provision.Step.
func (RepoStep) Name() string { return "kube/repo" }

// Probe reads both families' repo files and whether the apt keyring is there.
func (RepoStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return strings.Join([]string{
		shell.File("yumrepo", yumRepoPath),
		shell.File("aptlist", aptListPath),
		shell.Status("keyring", "test -s "+aptKeyringPath),
	}, "\n")
}

// repoWork is what one change does: write a file, or fetch the apt key.
type repoWork struct {
	Path    string
	Content []byte
	KeyURL  string
}

// repoMinor is the repo folder of the inventory's minor: v1.34.
func repoMinor(c *inventory.Cluster) (string, error) {
	minor, ok := c.Kubernetes.Minor()
	if !ok {
		return "", fmt.Errorf("kubernetes.version %q is not a version", c.Kubernetes.Version)
	}
	return fmt.Sprintf("v1.%d", minor), nil
}

func repoBase(c *inventory.Cluster) string { return strings.TrimRight(c.Kubernetes.Repo, "/") }

// Diff implements provision.Step.
func (RepoStep) Diff(in provision.Input) ([]provision.Planned[repoWork], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	minor, err := repoMinor(in.Cluster)
	if err != nil {
		return nil, err
	}
	base := repoBase(in.Cluster)
	switch in.Facts.Family {
	case facts.FamilyRHEL:
		want, err := templates.Render("kubernetes.repo", map[string]any{"BaseURL": base, "Minor": minor})
		if err != nil {
			return nil, err
		}
		have, exists := st.File("yumrepo")
		if summary := hostfile.Compare(yumRepoPath, have, exists, want); summary != "" {
			return []provision.Planned[repoWork]{{Key: "yumrepo", Summary: summary,
				Action: fmt.Sprintf("write %s (%s/%s/rpm/, the packages excluded from other yum runs)", yumRepoPath, base, minor),
				Data:   repoWork{Path: yumRepoPath, Content: want}}}, nil
		}
		return nil, nil
	case facts.FamilyDebian:
		return aptRepoChanges(base, minor, st)
	}
	return nil, fmt.Errorf("kprep installs Kubernetes on EL and Ubuntu/Debian hosts; %s is neither", in.Facts.OSName)
}

func aptRepoChanges(base, minor string, st shell.State) ([]provision.Planned[repoWork], error) {
	want, err := templates.Render("kubernetes.list", map[string]any{"BaseURL": base, "Minor": minor, "Keyring": aptKeyringPath})
	if err != nil {
		return nil, err
	}
	var changes []provision.Planned[repoWork]
	have, exists := st.File("aptlist")
	summary := hostfile.Compare(aptListPath, have, exists, want)
	if summary != "" {
		changes = append(changes, provision.Planned[repoWork]{Key: "aptlist", Summary: summary,
			Action: fmt.Sprintf("write %s (%s/%s/deb/)", aptListPath, base, minor),
			Data:   repoWork{Path: aptListPath, Content: want}})
	}
	// Each minor's repo has its own key: a new repo gets its key again.
	keyURL := base + "/" + minor + "/deb/Release.key"
	if st.Values["keyring"] != "0" || summary != "" {
		what := aptKeyringPath + " (the repo's signing key) is missing"
		if st.Values["keyring"] == "0" {
			what = aptKeyringPath + " is fetched again with the new repo"
		}
		changes = append(changes, provision.Planned[repoWork]{Key: "keyring", Summary: what,
			Action: "download " + keyURL, Data: repoWork{KeyURL: keyURL}})
	}
	return changes, nil
}

// Apply implements provision.Step.
func (RepoStep) Apply(ctx context.Context, t provision.Target, _ provision.Input, changes []provision.Planned[repoWork]) error {
	for _, c := range changes {
		if c.Data.Path != "" {
			if err := t.WriteFile(ctx, c.Data.Path, c.Data.Content, transport.WriteOptions{Mode: 0o644}); err != nil {
				return err
			}
		}
		if c.Data.KeyURL != "" {
			line := "mkdir -p -m 0755 /etc/apt/keyrings && " + runtime.FetchCommand(c.Data.KeyURL, shell.Quote(aptKeyringPath), 0o644)
			if _, err := t.Run(ctx, transport.Command{Line: line, Timeout: runtime.DownloadTimeout}); err != nil {
				return fmt.Errorf("download the Kubernetes repo's signing key from %s: %w", c.Data.KeyURL, err)
			}
		}
	}
	return nil
}
