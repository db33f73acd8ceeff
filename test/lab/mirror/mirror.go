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
	// RegistryAddr is the lab registry's host:port, written into the image
	// archives' tags; empty means the registry of the lab instance
	// KPREP_LAB_ID names (192.168.77.1:5000 for 0).
	RegistryAddr string
	// KubeBuildDir is the test/kubebuild module; empty finds it from the
	// working folder.
	KubeBuildDir string
}

// Tree is a built mirror.
type Tree struct {
	// Root is the folder served over HTTP as the mirror's top
	// (Root/docker-ce/linux/centos/9/x86_64/stable/, Root/kubernetes-new/...).
	Root string
	// BinDir holds kubeadm, kubelet, kubectl and lab-crictl for the machine's arch.
	BinDir string
	// Images are docker-archive tarballs pushed to the lab registry and
	// importable with `ctr -n k8s.io images import`.
	Images []Image
	// DebianVersions maps each Debian package whose binaries the mirror
	// repackages to the version it carries (docker.io: 20.10.24+dfsg1-...).
	DebianVersions map[string]string
}

// Image is one image the lab makes locally.
type Image struct {
	// Ref is the reference inside the lab registry, without the registry
	// address: "library/hello:latest", "google_containers/pause:3.10".
	Ref string
	// Tags are the names the archive carries when loaded or imported
	// ("registry.k8s.io/pause:3.10", "192.168.77.1:5000/google_containers/pause:3.10").
	Tags []string
	// Archive is a docker-archive tarball of the image.
	Archive string
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
	if o.RegistryAddr == "" {
		id, err := instance.FromEnv()
		if err != nil {
			return nil, err
		}
		o.RegistryAddr = id.RegistryAddr()
	}
	a, err := archFor(o.GOARCH)
	if err != nil {
		return nil, err
	}
	cacheDir, err := filepath.Abs(o.CacheDir)
	if err != nil {
		return nil, err
	}
	r := &runner{log: o.Log}
	start := time.Now()

	moduleDir, err := findKubeBuild(o.KubeBuildDir)
	if err != nil {
		return nil, err
	}
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
	unlock, err := lockCache(cacheDir, ".lock-"+a.Go)
	if err != nil {
		return nil, err
	}
	defer unlock()

	debian, err := fetchDebian(ctx, r, cacheDir, a.Deb)
	if err != nil {
		return nil, err
	}
	kubeDir, err := buildKube(ctx, r, cacheDir, moduleDir, a)
	if err != nil {
		return nil, err
	}
	pl := payload{debian: debian, kube: kubeDir, arch: a}

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

	pause, err := buildPause(ctx, r, cacheDir, a)
	if err != nil {
		return nil, err
	}
	images, err := buildImages(ctx, r, cacheDir, labImages(debian.path("/bin/busybox"), pause, o.RegistryAddr), a)
	if err != nil {
		return nil, err
	}

	for _, dir := range []string{root, kubeDir} {
		if err := HoldInUse(dir); err != nil {
			return nil, err
		}
	}
	used := append(plan.packageEntries(), filepath.Base(root))
	for _, sub := range []string{"packages", "tree"} {
		prune(r, filepath.Join(cacheDir, sub), []string{a.Go + "-", a.RPM + "-", a.Deb + "-"}, used)
	}
	prune(r, filepath.Join(cacheDir, "kube"), []string{}, []string{filepath.Base(kubeDir)}, "-"+a.Go)
	r.logf("mirror ready in %s: %s", time.Since(start).Round(time.Millisecond), root)
	return &Tree{Root: root, BinDir: kubeDir, Images: images, DebianVersions: debian.Versions}, nil
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
