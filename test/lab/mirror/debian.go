package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// debianSet is a group of Debian packages the mirror takes real programs
// from, unpacked together into one folder.
type debianSet struct {
	// Name labels the set in logs and in its cache entry.
	Name string
	// Suite is "" for the machine's own apt sources (bookworm, the lab
	// hosts' userland), or a suite fetched with a private apt
	// configuration that leaves the machine's untouched ("trixie").
	Suite string
	// Packages are the packages to download.
	Packages []string
	// WithDepends downloads the packages' dependency closure too (Depends
	// and Pre-Depends, recursively): a root file system for an image.
	WithDepends bool
}

// bookwormSet holds the binaries of the older Docker CE (20.10) and of
// containerd.io 1.6, runc for both containerd.io versions, and what the
// CNI package and the hello image need. Its runc also serves containerd
// 1.7: trixie's runc needs glibc 2.38 (__isoc23_strtol in its C part),
// which the hosts' bookworm userland (glibc 2.36) lacks.
var bookwormSet = debianSet{Name: "bookworm", Packages: []string{
	"docker.io",                   // dockerd, docker, docker-proxy 20.10
	"containerd",                  // containerd 1.6, its shims, ctr
	"runc",                        // runc
	"tini",                        // tini-static, shipped by Docker as docker-init
	"containernetworking-plugins", // the CNI plugins of kubernetes-cni
	"busybox-static",              // the hello image's only binary, cp for the flannel CNI image
}}

// trixieSet holds the newer Docker CE (26.1) and containerd (1.7). Their
// Go programs need glibc 2.34 at most, so they run on bookworm hosts as
// they are (checked by checkGlibc).
var trixieSet = debianSet{Name: "trixie", Suite: "trixie", Packages: []string{
	"docker.io",  // dockerd, docker-proxy 26.1
	"docker-cli", // docker 26.1 (trixie splits the client out)
	"containerd", // containerd 1.7, its shims, ctr
}}

// iptablesSet is the root file system under the images whose programs
// run iptables or nft (kube-proxy, flanneld): Debian's iptables (nft and
// legacy), nftables and conntrack with their libraries, nothing else.
var iptablesSet = debianSet{Name: "iptables", WithDepends: true, Packages: []string{
	"iptables", "nftables", "conntrack",
}}

// debianPayload is the unpacked content of a debianSet.
type debianPayload struct {
	// Root holds every package's files unpacked together (Root/usr/sbin/dockerd, ...).
	Root string
	// Versions maps each Debian package to the version that was unpacked.
	Versions map[string]string
}

// path returns the unpacked file at the package path p ("/usr/sbin/dockerd").
func (d *debianPayload) path(p string) string { return filepath.Join(d.Root, p) }

// fetchDebian downloads a set's packages for debArch with apt-get and
// unpacks them with dpkg-deb. The machine's Debian mirror is the one
// source that works here; a set with its own Suite reads mirror (the lab's
// KPREP_LAB_DEBIAN_MIRROR) through a private apt configuration. The entry
// is keyed by the set (names, not versions), so a warm run never touches
// the network.
func fetchDebian(ctx context.Context, r *runner, cacheDir string, set debianSet, debArch, mirror string) (*debianPayload, error) {
	key := recipeKey("debian-payload/2", set.Name, set.Suite, debArch, strings.Join(set.Packages, " "), fmt.Sprint(set.WithDepends))
	dir, err := cached(ctx, filepath.Join(cacheDir, "debian"), set.Name+"-"+key, func(ctx context.Context, tmp string) error {
		apt, err := aptConfig(ctx, r, tmp, set, debArch, mirror)
		if err != nil {
			return err
		}
		names, archAll := set.Packages, map[string]bool{}
		if set.WithDepends {
			if names, archAll, err = debianClosure(ctx, r, apt, set.Packages, debArch); err != nil {
				return err
			}
		}
		// A foreign architecture from the machine's own sources (arm64
		// packages on an amd64 machine) has no "netbase:arm64": apt
		// names Architecture: all packages without the qualifier.
		foreign := set.Suite == "" && debArch != hostDebArch()
		r.logf("downloading Debian packages (%s, %s): %s", set.Name, debArch, strings.Join(names, " "))
		debs := filepath.Join(tmp, "debs")
		if err := os.MkdirAll(debs, 0o755); err != nil {
			return err
		}
		args := append(append([]string{}, apt...), "download")
		for _, p := range names {
			if foreign && archAll[p] {
				args = append(args, p)
			} else {
				args = append(args, p+":"+debArch)
			}
		}
		if _, err := r.run(ctx, debs, "apt-get", args...); err != nil {
			return fmt.Errorf("download Debian packages (run `apt-get update` first; for a foreign arch also `dpkg --add-architecture %s`): %w", debArch, err)
		}
		versions, err := unpackDebs(ctx, r, debs, filepath.Join(tmp, "root"))
		if err != nil {
			return err
		}
		for _, p := range names {
			if versions[p] == "" {
				return fmt.Errorf("apt-get download gave no %s package", p)
			}
		}
		data, err := json.MarshalIndent(versions, "", "  ")
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(tmp, "versions.json"), data, 0o644); err != nil {
			return err
		}
		// The unpacked tree is all later stages read; the private apt
		// lists go too.
		for _, sub := range []string{"debs", "apt"} {
			if err := os.RemoveAll(filepath.Join(tmp, sub)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "versions.json"))
	if err != nil {
		return nil, fmt.Errorf("the cache of Debian payloads %s: %w", dir, err)
	}
	p := &debianPayload{Root: filepath.Join(dir, "root")}
	if err := json.Unmarshal(data, &p.Versions); err != nil {
		return nil, fmt.Errorf("the cache of Debian payloads %s: %w", dir, err)
	}
	return p, nil
}

// aptConfig returns the apt-get options a set is fetched with: none for
// the machine's own sources; for another suite, a sources list, lists and
// cache under tmp/apt (signed by the Debian archive keys the machine has),
// updated once here.
func aptConfig(ctx context.Context, r *runner, tmp string, set debianSet, debArch, mirror string) ([]string, error) {
	if set.Suite == "" {
		return nil, nil
	}
	dir := filepath.Join(tmp, "apt")
	for _, sub := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	sources := fmt.Sprintf("deb [arch=%s signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n", debArch, mirror, set.Suite)
	if err := writeFile(filepath.Join(dir, "sources.list"), []byte(sources), 0o644); err != nil {
		return nil, err
	}
	opts := []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "Dir::State::Status=/dev/null",
		"-o", "APT::Architecture=" + debArch,
		"-o", "APT::Sandbox::User=root", // the lists are in a folder _apt cannot write
	}
	r.logf("reading Debian %s's package lists from %s", set.Suite, mirror)
	if _, err := r.run(ctx, tmp, "apt-get", append(append([]string{}, opts...), "update")...); err != nil {
		return nil, fmt.Errorf("apt-get update for Debian %s from %s (set KPREP_LAB_DEBIAN_MIRROR for another mirror): %w", set.Suite, mirror, err)
	}
	return opts, nil
}

// debianClosure lists the packages and everything they depend on
// (Depends, Pre-Depends), recursively, as apt resolves it for debArch, and
// which of them apt names without the architecture (see parseClosure).
func debianClosure(ctx context.Context, r *runner, apt, packages []string, debArch string) ([]string, map[string]bool, error) {
	args := append(append([]string{}, apt...), "depends", "--recurse", "--no-recommends", "--no-suggests",
		"--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances")
	for _, p := range packages {
		args = append(args, p+":"+debArch)
	}
	out, err := r.run(ctx, "", "apt-cache", args...)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve the dependencies of %s: %w", strings.Join(packages, " "), err)
	}
	names, archAll := parseClosure(string(out), debArch)
	return names, archAll, nil
}

// parseClosure reads `apt-cache depends --recurse` output: every package
// it names on a line of its own, without virtual packages (<name>), each
// once, sorted; and the names apt never qualified with debArch, which for
// a foreign architecture are the Architecture: all packages.
func parseClosure(out, debArch string) ([]string, map[string]bool) {
	qualified := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if line == "" || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "<") {
			continue
		}
		name, q := strings.CutSuffix(strings.TrimSpace(line), ":"+debArch)
		qualified[name] = qualified[name] || q
	}
	names := make([]string, 0, len(qualified))
	archAll := map[string]bool{}
	for n, q := range qualified {
		names = append(names, n)
		if !q {
			archAll[n] = true
		}
	}
	sort.Strings(names)
	return names, archAll
}

// unpackDebs unpacks every .deb in debs into root and returns each
// package's version.
func unpackDebs(ctx context.Context, r *runner, debs, root string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(debs, "*.deb"))
	if err != nil {
		return nil, err
	}
	versions := map[string]string{}
	for _, f := range files {
		out, err := r.run(ctx, debs, "dpkg-deb", "--show", "--showformat=${Package} ${Version}", f)
		if err != nil {
			return nil, err
		}
		name, version, _ := strings.Cut(string(out), " ")
		versions[name] = version
		if _, err := r.run(ctx, debs, "dpkg-deb", "-x", f, root); err != nil {
			return nil, err
		}
	}
	return versions, nil
}
