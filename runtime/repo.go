package runtime

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
	"github.com/kprep/kprep/templates"
)

// RepoStep makes the host's package manager see Docker CE from the
// inventory's mirror: a yum repo file on EL, an apt source with its signing
// key on Ubuntu and Debian. On CentOS 7 it also points base, updates and
// extras at the vault, since their stock mirrorlist is gone and docker-ce
// needs container-selinux from extras.
type RepoStep struct{}

// Files the repo step owns.
const (
	yumRepoPath    = "/etc/yum.repos.d/docker-ce.repo"
	centosBasePath = "/etc/yum.repos.d/CentOS-Base.repo"
	aptListPath    = "/etc/apt/sources.list.d/docker.list"
	aptKeyringPath = "/etc/apt/keyrings/docker.asc"
)

// Name implements provision.Step.
func (RepoStep) Name() string { return "runtime/repo" }

// Independent implements provision.Independent: the probe reads the repo
// files it writes: no other step changes them.
func (RepoStep) Independent() bool { return true }

// Probe reads the repo files of both package families (the diff picks by
// the facts) and whether the apt keyring is there.
func (RepoStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return strings.Join([]string{
		shell.File("yumrepo", yumRepoPath),
		shell.File("centosbase", centosBasePath),
		shell.File("aptlist", aptListPath),
		shell.Status("keyring", "test -s "+aptKeyringPath),
	}, "\n")
}

// repoFile is a file the step writes, with its content.
type repoFile struct {
	Path    string
	Content []byte
}

// Diff implements provision.Step.
func (RepoStep) Diff(in provision.Input) ([]provision.Planned[repoWork], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	switch in.Facts.Family {
	case facts.FamilyRHEL:
		return yumRepoChanges(in.Cluster, in.Facts, st)
	case facts.FamilyDebian:
		return aptRepoChanges(in.Cluster, in.Facts, st)
	}
	return nil, fmt.Errorf("kprep installs Docker CE on EL (CentOS, Rocky, openEuler...) and Ubuntu/Debian hosts; %s is neither", in.Facts.OSName)
}

func yumRepoChanges(c *inventory.Cluster, f facts.Facts, st shell.State) ([]provision.Planned[repoWork], error) {
	tree, release, err := dockerYumTree(f)
	if err != nil {
		return nil, err
	}
	want, err := templates.Render("docker-ce.repo", map[string]any{
		"BaseURL": dockerBaseURL(c), "Tree": tree, "Release": release, "GPGCheck": *c.Docker.GPGCheck,
	})
	if err != nil {
		return nil, err
	}
	var changes []provision.Planned[repoWork]
	have, exists := st.File("yumrepo")
	if string(have) != string(want) {
		summary := yumRepoPath + " is missing"
		if exists {
			summary = yumRepoPath + " differs from the inventory's Docker CE repo"
		}
		changes = append(changes, provision.Planned[repoWork]{Key: "yumrepo", Summary: summary,
			Action: fmt.Sprintf("write %s (%s/linux/%s/%d/$basearch/stable)", yumRepoPath, dockerBaseURL(c), tree, release),
			Data:   repoWork{File: &repoFile{yumRepoPath, want}}})
	}
	if vc, ok, err := vaultChange(c, f, st); err != nil {
		return nil, err
	} else if ok {
		changes = append(changes, vc)
	}
	return changes, nil
}

// vaultChange repoints CentOS 7's base repos at the vault when the stock
// file still uses the retired mirrorlist.centos.org or mirror.centos.org,
// or when kprep's own earlier version points at another vault.
func vaultChange(c *inventory.Cluster, f facts.Facts, st shell.State) (provision.Planned[repoWork], bool, error) {
	v := c.Docker.CentOS7Vault
	if strings.ToLower(f.OSID) != "centos" || f.Major != 7 || !*v.Enabled {
		return provision.Planned[repoWork]{}, false, nil
	}
	have, exists := st.File("centosbase")
	if !exists {
		return provision.Planned[repoWork]{}, false, nil // base repos are defined elsewhere: the user's
	}
	prefix, keys := "", "file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7"
	if f.Arch == "aarch64" {
		// vault.centos.org keeps the other architectures under altarch/.
		prefix, keys = "altarch/", keys+" file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7-aarch64"
	}
	url := strings.TrimRight(v.URL, "/")
	want, err := templates.Render("CentOS-Base.repo", map[string]any{"URL": url, "Prefix": prefix, "GPGKeys": keys})
	if err != nil {
		return provision.Planned[repoWork]{}, false, err
	}
	var summary string
	switch {
	case string(have) == string(want):
		return provision.Planned[repoWork]{}, false, nil
	case hostfile.Owned(have):
		summary = centosBasePath + " points at another vault than the inventory's"
	case usesRetiredCentOSMirrors(string(have)):
		summary = centosBasePath + " still uses mirrorlist.centos.org, which is gone since CentOS 7's end of life"
	default:
		return provision.Planned[repoWork]{}, false, nil // pointed elsewhere by its owner: leave it
	}
	return provision.Planned[repoWork]{Key: "vault", Summary: summary,
		Action: fmt.Sprintf("point base, updates and extras at %s/%s7.9.2009/", url, prefix),
		Data:   repoWork{File: &repoFile{centosBasePath, want}}}, true, nil
}

// usesRetiredCentOSMirrors reports whether an enabled line of a repo file
// still reads from CentOS's own mirror network, retired with CentOS 7.
func usesRetiredCentOSMirrors(repo string) bool {
	for _, line := range strings.Split(repo, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "mirrorlist", "baseurl":
			if strings.Contains(val, "mirrorlist.centos.org") || strings.Contains(val, "mirror.centos.org") {
				return true
			}
		}
	}
	return false
}

// aptKey is the signing key to download.
type aptKey struct{ URL string }

// repoWork is what one change of RepoStep does: write a repo file, or
// fetch the apt signing key.
type repoWork struct {
	File *repoFile
	Key  *aptKey
}

func aptRepoChanges(c *inventory.Cluster, f facts.Facts, st shell.State) ([]provision.Planned[repoWork], error) {
	distro, err := dockerAptDistro(f)
	if err != nil {
		return nil, err
	}
	want, err := templates.Render("docker.list", map[string]any{
		"Arch": f.GoArch(), "Keyring": aptKeyringPath, "BaseURL": dockerBaseURL(c), "Distro": distro, "Codename": f.Codename,
	})
	if err != nil {
		return nil, err
	}
	var changes []provision.Planned[repoWork]
	have, exists := st.File("aptlist")
	listDiffers := string(have) != string(want)
	if listDiffers {
		summary := aptListPath + " is missing"
		if exists {
			summary = aptListPath + " differs from the inventory's Docker CE repo"
		}
		changes = append(changes, provision.Planned[repoWork]{Key: "aptlist", Summary: summary,
			Action: fmt.Sprintf("write %s (%s/linux/%s %s stable)", aptListPath, dockerBaseURL(c), distro, f.Codename),
			Data:   repoWork{File: &repoFile{aptListPath, want}}})
	}
	// The key comes with the repo: a new repo may be signed by another key.
	keyURL := dockerBaseURL(c) + "/linux/" + distro + "/gpg"
	if st.Values["keyring"] != "0" || listDiffers {
		summary := aptKeyringPath + " (Docker's signing key) is missing"
		if st.Values["keyring"] == "0" {
			summary = aptKeyringPath + " is fetched again with the new repo"
		}
		changes = append(changes, provision.Planned[repoWork]{Key: "keyring", Summary: summary,
			Action: "download " + keyURL, Data: repoWork{Key: &aptKey{keyURL}}})
	}
	return changes, nil
}

// Apply implements provision.Step.
func (RepoStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[repoWork]) error {
	for _, c := range changes {
		if v := c.Data.File; v != nil {
			if err := t.WriteFile(ctx, v.Path, v.Content, transport.WriteOptions{Mode: 0o644}); err != nil {
				return err
			}
		}
		if v := c.Data.Key; v != nil {
			line := "mkdir -p -m 0755 /etc/apt/keyrings && " + fetchCommand(v.URL, shell.Quote(aptKeyringPath), 0o644)
			if _, err := t.Run(ctx, transport.Command{Line: line, Timeout: downloadTimeout}); err != nil {
				return fmt.Errorf("download Docker's apt signing key from %s: %w", v.URL, err)
			}
		}
	}
	return nil
}
