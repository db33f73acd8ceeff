package mirror

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// The mirror for hosts of several architectures (the lab's x86 hosts and
// its aarch64 VM): each architecture is built on its own (Build with its
// GOARCH: its Debian binaries, cross-compiled Kubernetes, packages), then
// the trees are laid side by side in one, as the real repos do it:
// per-arch folders (docker-ce/linux/centos/8/aarch64/stable/,
// kubernetes-new/.../rpm/aarch64/, centos-vault/altarch/...), and one
// index over every arch where the real repo has one: pkgs.k8s.io's rpm
// repodata and flat apt index, the Release of Docker's apt suite.

// MultiTree is a mirror tree serving several architectures.
type MultiTree struct {
	// Root is the merged tree, served as the mirror's top.
	Root string
	// Arch is each architecture's own build, by GOARCH: its BinDir and
	// Images (Tree.Root is that arch's tree alone).
	Arch map[string]*Tree
}

// Repo signing identities; Build makes its keys with the same ones.
const (
	dockerSignerName = "docker"
	dockerSignerUID  = "kprep lab Docker CE repo <docker-ce@lab.kprep.invalid>"
	kubeSignerName   = "kubernetes"
	kubeSignerUID    = "kprep lab Kubernetes repo <kubernetes@lab.kprep.invalid>"
)

// BuildMulti builds the mirror for each architecture in goarches (GOARCH
// names; the first one's tree is Build's as it is when it is the only one)
// and merges them into one tree, cached by the trees' own keys. The first
// build's images are multi-platform indexes over every one of goarches
// (unless o.ImageArches says otherwise): they are what the registry gets.
func BuildMulti(ctx context.Context, o Options, goarches []string) (*MultiTree, error) {
	if len(goarches) == 0 {
		goarches = []string{runtime.GOARCH}
	}
	m := &MultiTree{Arch: map[string]*Tree{}}
	var roots []string
	for _, ga := range goarches {
		if m.Arch[ga] != nil {
			continue
		}
		oa := o
		oa.GOARCH = ga
		if len(roots) == 0 && len(o.ImageArches) == 0 {
			oa.ImageArches = goarches
		} else if len(roots) > 0 {
			oa.ImageArches = nil // its own arch only: the first build's images are the registry's
		}
		t, err := Build(ctx, oa)
		if err != nil {
			return nil, fmt.Errorf("mirror for %s: %w", ga, err)
		}
		m.Arch[ga] = t
		roots = append(roots, t.Root)
	}
	if len(roots) == 1 {
		m.Root = roots[0]
		return m, nil
	}
	cacheDir := o.CacheDir
	if cacheDir == "" {
		cacheDir = DefaultCacheDir
	}
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return nil, err
	}
	// The merge has a lock of its own: each arch's entries have theirs.
	unlock, err := lockCache(cacheDir, ".lock-multi")
	if err != nil {
		return nil, err
	}
	defer unlock()
	r := &runner{log: o.Log}
	signers := map[string]*signer{}
	for top, id := range map[string][2]string{
		"docker-ce":      {dockerSignerName, dockerSignerUID},
		"kubernetes-new": {kubeSignerName, kubeSignerUID},
	} {
		s, err := labSigner(ctx, r, cacheDir, id[0], id[1])
		if err != nil {
			return nil, err
		}
		defer s.close()
		signers[top] = s
	}
	// Each tree's folder name is its recipe's key: together they name
	// the merge.
	parts := []string{"multitree/1"}
	for _, root := range roots {
		parts = append(parts, filepath.Base(root))
	}
	root, err := cached(ctx, filepath.Join(cacheDir, "tree"), "multi-"+recipeKey(parts...), func(ctx context.Context, tmp string) error {
		r.logf("merging the mirror trees of %s", strings.Join(goarches, ", "))
		return mergeTrees(ctx, r, tmp, roots, signers, time.Now())
	})
	if err != nil {
		return nil, err
	}
	if err := HoldInUse(root); err != nil {
		return nil, err
	}
	prune(r, filepath.Join(cacheDir, "tree"), []string{"multi-"}, []string{filepath.Base(root)})
	m.Root = root
	return m, nil
}

// treeRepos are the repo folders of one tree: those with yum repodata and
// those with an apt Release file (paths relative to the tree).
type treeRepos struct {
	yum, apt map[string]bool
}

// findRepos lists the repo folders of the tree at root.
func findRepos(root string) (treeRepos, error) {
	tr := treeRepos{yum: map[string]bool{}, apt: map[string]bool{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case path.Base(rel) == "repomd.xml" && path.Base(path.Dir(rel)) == "repodata":
			tr.yum[path.Dir(path.Dir(rel))] = true
		case path.Base(rel) == "Release":
			tr.apt[path.Dir(rel)] = true
		}
		return nil
	})
	return tr, err
}

// aptIndexNames are the files of an apt repo's index folder that a merge
// writes anew (Packages only when the repo is flat: a suite repo's
// Packages sit in per-arch folders of their own).
var aptIndexNames = []string{"Release", "InRelease", "Release.gpg", "Packages", "Packages.gz"}

// mergeTrees lays the trees at roots into dst: every file is hard-linked
// (packages are the same bytes in one place), and each repo that more than
// one tree has gets one index over all of them, signed with the key of its
// top folder. Two trees with different files at one path, other than the
// indexes, are an error.
func mergeTrees(ctx context.Context, r *runner, dst string, roots []string, signers map[string]*signer, now time.Time) error {
	yumCount, aptCount := map[string]int{}, map[string]int{}
	for _, root := range roots {
		tr, err := findRepos(root)
		if err != nil {
			return err
		}
		for d := range tr.yum {
			yumCount[d]++
		}
		for d := range tr.apt {
			aptCount[d]++
		}
	}
	// regenerated: the index files a merge writes anew, skipped while linking.
	regenerated := func(rel string) bool {
		dir, base := path.Split(rel)
		dir = strings.TrimSuffix(dir, "/")
		if path.Base(dir) == "repodata" && yumCount[path.Dir(dir)] > 1 {
			return true
		}
		return aptCount[dir] > 1 && slices.Contains(aptIndexNames, base)
	}
	flatPackages := map[string][][]byte{} // apt repo folder -> each tree's flat Packages
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if regenerated(rel) {
				if path.Base(rel) == "Packages" {
					data, err := os.ReadFile(p)
					if err != nil {
						return err
					}
					flatPackages[path.Dir(rel)] = append(flatPackages[path.Dir(rel)], data)
				}
				return nil
			}
			return linkMerged(p, filepath.Join(dst, filepath.FromSlash(rel)), rel)
		})
		if err != nil {
			return err
		}
	}
	for _, dir := range sortedKeys(yumCount) {
		if yumCount[dir] < 2 {
			continue
		}
		s, err := signerOf(signers, dir)
		if err != nil {
			return err
		}
		// One repodata over every arch folder, as pkgs.k8s.io has
		// x86_64/ and aarch64/ under one rpm/ repo.
		if err := makeYumRepo(ctx, r, dst, yumRepo{Dir: dir, Signer: s, ServeKey: true}); err != nil {
			return err
		}
	}
	for _, dir := range sortedKeys(aptCount) {
		if aptCount[dir] < 2 {
			continue
		}
		s, err := signerOf(signers, dir)
		if err != nil {
			return err
		}
		if err := indexAptRepo(ctx, r, dst, dir, roots, flatPackages[dir], s, now); err != nil {
			return fmt.Errorf("apt repo %s: %w", dir, err)
		}
	}
	return nil
}

// linkMerged hard-links src at dst; a file already there must be the same.
func linkMerged(src, dst, rel string) error {
	if have, err := os.ReadFile(dst); err == nil {
		want, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if !bytes.Equal(have, want) {
			return fmt.Errorf("merge mirror trees: two architectures have different files at %s", rel)
		}
		return nil
	}
	return linkOrCopy(src, dst)
}

// signerOf returns the key that signs the repo at dir: by its top folder,
// as Build signs them (Docker's repos, Kubernetes' repos).
func signerOf(signers map[string]*signer, dir string) (*signer, error) {
	top, _, _ := strings.Cut(dir, "/")
	s := signers[top]
	if s == nil {
		return nil, fmt.Errorf("merge mirror trees: no signing key for the repo %s", dir)
	}
	return s, nil
}

// indexAptRepo writes the apt repo at dir's index anew over every arch:
// a flat repo's Packages joins each tree's, and Release lists every
// Packages file under dir (a suite repo's binary-<arch>/ folders) with
// every arch. Origin, Label, Suite and Components come from the trees'
// own Release.
func indexAptRepo(ctx context.Context, r *runner, dst, dir string, roots []string, flat [][]byte, s *signer, now time.Time) error {
	abs := filepath.Join(dst, filepath.FromSlash(dir))
	if len(flat) > 0 {
		var stanzas []string
		for _, p := range flat {
			for _, st := range strings.Split(string(p), "\n\n") {
				if st = strings.TrimSpace(st); st != "" {
					stanzas = append(stanzas, st+"\n")
				}
			}
		}
		sort.Strings(stanzas)
		packages := []byte(strings.Join(stanzas, "\n"))
		gz, err := gzipBytes(packages, gzip.BestCompression)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(abs, "Packages"), packages, 0o644); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(abs, "Packages.gz"), gz, 0o644); err != nil {
			return err
		}
	}
	repo := aptRepo{Signer: s}
	var arches []string
	for _, root := range roots {
		rel, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(dir), "Release"))
		if err != nil {
			continue // this tree lacks the repo
		}
		f := releaseFields(string(rel))
		repo.Origin, repo.Label, repo.Suite, repo.Component = f["Origin"], f["Label"], f["Suite"], f["Components"]
		for _, a := range strings.Fields(f["Architectures"]) {
			if !slices.Contains(arches, a) {
				arches = append(arches, a)
			}
		}
	}
	sort.Strings(arches)
	repo.Arch = strings.Join(arches, " ")
	indexes := map[string][]byte{}
	err := filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b := d.Name(); b != "Packages" && b != "Packages.gz" {
			return nil
		}
		rel, err := filepath.Rel(abs, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		indexes[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		return err
	}
	release := filepath.Join(abs, "Release")
	if err := writeFile(release, []byte(releaseFile(repo, now, indexes)), 0o644); err != nil {
		return err
	}
	if err := s.clearSign(ctx, r, release, filepath.Join(abs, "InRelease")); err != nil {
		return fmt.Errorf("sign %s: %w", release, err)
	}
	return s.detachSign(ctx, r, release, release+".gpg")
}

// releaseFields reads the single-line fields of a Release file.
func releaseFields(release string) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(release, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
			f[k] = strings.TrimSpace(v)
		}
	}
	return f
}
