// Package mirror builds and serves what the lab's hosts install from: a yum
// and an apt repository laid out like the real Docker CE and Kubernetes
// mirrors, holding packages built on the spot around real binaries, and the
// small images the lab's registry holds.
package mirror

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kprep/kprep/test/lab/instance"
)

// DefaultCacheDir is where the lab keeps the mirror's artifacts, shared by
// every lab instance.
const DefaultCacheDir = instance.CacheDir

// Options says where the mirror's artifacts are cached and where progress goes.
type Options struct {
	// CacheDir keeps built artifacts between runs, keyed by their recipe.
	CacheDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// GOARCH is the hosts' architecture: amd64 (default: the machine's) or arm64.
	GOARCH string
	// ImageArches are the architectures every image's index holds
	// (default: GOARCH alone). arm64 is one more entry here.
	ImageArches []string
	// DebianMirror is the Debian mirror for the suites the machine's apt
	// sources lack (trixie); default http://deb.debian.org/debian.
	DebianMirror string
	// TestDir is the repository's test/ folder, holding the build modules
	// (kubebuild, imagebuild/...); empty finds it from the working folder.
	TestDir string
}

// Tree is a built mirror.
type Tree struct {
	// Root is the folder served over HTTP as the mirror's top
	// (Root/docker-ce/linux/centos/9/x86_64/stable/, Root/kubernetes-new/...).
	Root string
	// BinDir holds kubeadm, kubelet, kubectl, lab-crictl and the control
	// plane's programs (KubeVersion) for the hosts' arch.
	BinDir string
	// Images are the lab registry's images, pushed by PushImages.
	Images []Image
	// DebianVersions maps each Debian payload (bookworm, trixie, iptables)
	// to the version of each package it unpacked (docker.io: 26.1.5+dfsg1-...).
	DebianVersions map[string]map[string]string
}

// Build makes (or takes from the cache) everything the mirror serves.
// Each stage is cached under a key made from its recipe, so a second call
// with nothing changed only checks that the entries are there.
func Build(ctx context.Context, o Options) (*Tree, error) {
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	if o.GOARCH == "" {
		o.GOARCH = runtime.GOARCH
	}
	if len(o.ImageArches) == 0 {
		o.ImageArches = []string{o.GOARCH}
	}
	if o.DebianMirror == "" {
		o.DebianMirror = "http://deb.debian.org/debian"
	}
	a, err := archFor(o.GOARCH)
	if err != nil {
		return nil, err
	}
	var imageArches []arch
	for _, name := range o.ImageArches {
		ia, err := archFor(name)
		if err != nil {
			return nil, err
		}
		imageArches = append(imageArches, ia)
	}
	cacheDir, err := filepath.Abs(o.CacheDir)
	if err != nil {
		return nil, err
	}
	r := &runner{log: o.Log}
	start := time.Now()

	// The signing keys are shared by every architecture: made under the
	// cache-wide lock, held only that long. Everything else is per
	// architecture, so an arm64 build that takes an hour under emulation
	// never holds up an amd64 lab.
	unlockShared, err := lockCache(cacheDir, ".lock-keys")
	if err != nil {
		return nil, err
	}
	dockerKey, err := labSigner(ctx, r, cacheDir, dockerSignerName, dockerSignerUID)
	if err != nil {
		unlockShared()
		return nil, err
	}
	defer dockerKey.close()
	kubeKey, err := labSigner(ctx, r, cacheDir, kubeSignerName, kubeSignerUID)
	unlockShared()
	if err != nil {
		return nil, err
	}
	defer kubeKey.close()
	// Every architecture this build writes entries for is locked, in one
	// order, so two builds that share one never deadlock.
	for _, name := range archLocks(a, imageArches) {
		unlock, err := lockCache(cacheDir, archLockName(name))
		if err != nil {
			return nil, err
		}
		defer unlock()
	}

	pl := payload{debian: map[string]*debianPayload{}, arch: a}
	for _, set := range []debianSet{bookwormSet, trixieSet, iptablesSet} {
		if pl.debian[set.Name], err = fetchDebian(ctx, r, cacheDir, set, a.Deb, o.DebianMirror); err != nil {
			return nil, err
		}
	}
	if err := checkPayloadVersions(pl); err != nil {
		return nil, err
	}
	if err := cachedCheck(ctx, cacheDir, "runs-on-hosts", func() error { return checkRunsOnHosts(pl) },
		pl.deb(trixieSet.Name).Root, pl.deb(iptablesSet.Name).Root); err != nil {
		return nil, err
	}

	// The programs: the hosts' Kubernetes packages need the first
	// release's build for the hosts' arch; the images need every build
	// for every image arch.
	builds := map[arch]map[string]builtPrograms{}
	for _, ba := range append([]arch{a}, imageArches...) {
		if builds[ba] != nil {
			continue
		}
		builds[ba] = map[string]builtPrograms{}
		for _, b := range allBuilds() {
			if builds[ba][b.Name], err = runGoBuild(ctx, r, cacheDir, o.TestDir, b, ba); err != nil {
				return nil, err
			}
		}
	}
	pl.kube = builds[a][kubeReleases[0].build().Name].Dir

	plan, err := planRepos(ctx, r, cacheDir, pl, dockerKey, kubeKey)
	if err != nil {
		return nil, err
	}
	root, err := cached(ctx, filepath.Join(cacheDir, "tree"), a.Go+"-"+plan.key(), func(ctx context.Context, tmp string) error {
		return plan.assemble(ctx, r, tmp, time.Now())
	})
	if err != nil {
		return nil, err
	}

	specs := map[arch][]imageSpec{}
	for _, ia := range imageArches {
		in := imageInputs{arch: ia, builds: builds[ia]}
		if in.pause, err = buildPause(ctx, r, cacheDir, ia); err != nil {
			return nil, err
		}
		ipt := pl.debian[iptablesSet.Name]
		busybox := pl.debian[bookwormSet.Name]
		if ia != a {
			if ipt, err = fetchDebian(ctx, r, cacheDir, iptablesSet, ia.Deb, o.DebianMirror); err != nil {
				return nil, err
			}
			if busybox, err = fetchDebian(ctx, r, cacheDir, bookwormSet, ia.Deb, o.DebianMirror); err != nil {
				return nil, err
			}
		}
		in.busybox = busybox.path("/bin/busybox")
		if in.iptables, err = iptablesLayer(ipt); err != nil {
			return nil, err
		}
		if err := cachedCheck(ctx, cacheDir, "layer-libs", func() error { return checkLayerLibs(in.iptables, ia) },
			ipt.Root, ia.Go, layerNames(in.iptables)); err != nil {
			return nil, err
		}
		hap, err := fetchDebian(ctx, r, cacheDir, haproxySet, ia.Deb, o.DebianMirror)
		if err != nil {
			return nil, err
		}
		if in.haproxy, err = haproxyLayer(hap, ia); err != nil {
			return nil, err
		}
		if err := checkLayerLibs(in.haproxy, ia); err != nil {
			return nil, err
		}
		specs[ia] = labImages(in)
	}
	images, err := buildOCIImages(ctx, r, cacheDir, specs)
	if err != nil {
		return nil, err
	}

	// The lab serves the tree, copies lab-crictl and pushes the images.
	hold := append([]string{root, filepath.Dir(pl.kube)}, usedImageEntries(images)...)
	for _, dir := range hold {
		if err := HoldInUse(dir); err != nil {
			return nil, err
		}
	}
	used := append(plan.packageEntries(), filepath.Base(root))
	for _, sub := range []string{"packages", "tree"} {
		prune(r, filepath.Join(cacheDir, sub), []string{a.Go + "-", a.RPM + "-", a.Deb + "-"}, used)
	}
	versions := map[string]map[string]string{}
	for name, d := range pl.debian {
		versions[name] = d.Versions
	}
	r.logf("mirror ready in %s: %s", time.Since(start).Round(time.Millisecond), root)
	return &Tree{Root: root, BinDir: pl.kube, Images: images, DebianVersions: versions}, nil
}

// archLocks are the names of the per-architecture locks a build takes:
// the hosts' arch and every image arch, each once, sorted.
func archLocks(hosts arch, images []arch) []string {
	names := []string{hosts.Go}
	for _, a := range images {
		if !slices.Contains(names, a.Go) {
			names = append(names, a.Go)
		}
	}
	slices.Sort(names)
	return names
}

// allBuilds are the go builds the mirror runs, each once: every
// Kubernetes release's, its etcd and CoreDNS, flannel's and its CNI plugin's.
func allBuilds() []goBuild {
	var out []goBuild
	seen := map[string]bool{}
	add := func(b goBuild) {
		if !seen[b.Name] {
			seen[b.Name] = true
			out = append(out, b)
		}
	}
	for _, k := range kubeReleases {
		add(k.build())
		add(k.Etcd)
		add(k.CoreDNS)
	}
	add(flannelBuild())
	add(flannelCNIBuild())
	return out
}

// archLockName is the lock of one architecture's part of the cache.
// amd64's is the ".lock" every build took before there were others, so an
// older checkout's build and this one never work on the same entries at once.
func archLockName(goarch string) string {
	if goarch == "amd64" {
		return ".lock"
	}
	return ".lock-" + goarch
}

// lockCache holds an exclusive lock (the file name in the cache folder)
// until the returned function is called, so two lab runs never build the
// same entry at once.
func lockCache(dir, name string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror cache %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("mirror cache lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("mirror cache lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// prune removes cache entries in dir that this build did not use, among
// those whose names start with one of prefixes (or end with suffix): the
// entries of older recipes for this architecture, and half-built entries of
// this architecture's killed runs. Other architectures' entries stay,
// half-built ones too (each architecture builds under its own lock, so
// another one's may be building now), and so do entries another process
// holds in use (HoldInUse).
func prune(r *runner, dir string, prefixes, used []string, suffix ...string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, u := range used {
		keep[u] = true
	}
	for _, e := range entries {
		name := e.Name()
		if keep[name] {
			continue
		}
		// A .tmp- entry is named by the key it is building: left by a
		// killed run if its key is ours, since we hold our lock.
		entry, _, _ := strings.Cut(name, ".tmp-")
		mine := false
		for _, p := range prefixes {
			mine = mine || strings.HasPrefix(entry, p)
		}
		for _, s := range suffix {
			mine = mine || strings.HasSuffix(entry, s)
		}
		if mine && inUse(filepath.Join(dir, name)) {
			r.logf("keeping the old cache entry %s: a running lab uses it", filepath.Join(dir, name))
			continue
		}
		if mine {
			r.logf("removing the old cache entry %s", filepath.Join(dir, name))
			os.RemoveAll(filepath.Join(dir, name))
		}
	}
}
