package lab

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kprep/kprep/test/lab/instance"
	"github.com/kprep/kprep/test/lab/mirror"
)

// bootTimeout bounds one host's boot, from nspawn to sshd answering; on two
// cores four hosts booting side by side take about half a minute.
const bootTimeout = 4 * time.Minute

// machineTools are the programs Up runs on the machine, with the Debian
// package that has each.
var machineTools = map[string]string{
	"systemd-nspawn": "systemd-container",
	"debootstrap":    "debootstrap",
	"nsenter":        "util-linux",
	"ip":             "iproute2",
	"ssh-keygen":     "openssh-client",
	"rpmbuild":       "rpm",
	"mount":          "mount",
}

// bootLimit is how many hosts boot at once: a host's systemd boot costs
// about 2.5 s of CPU, and its boot timeout runs from its own start, so on
// 2 cores 24 at a time boot in about half a minute each where 200 at once
// would each take minutes and run into bootTimeout.
func bootLimit() int { return max(8, 12*runtime.NumCPU()) }

// Up builds and boots a lab as o says, writes its inventory and returns it.
// Root file systems and the mirror come from the cache when their recipe
// has not changed. On error the lab is left as it got, for a look; Down
// removes it. The program must call HelperMain at its start (the mirror
// server is this program run again).
func Up(ctx context.Context, o Options) (*Lab, error) {
	if os.Getenv(helperEnv) != "" {
		return nil, errors.New("this process was started as the lab's mirror server but its program does not call lab.HelperMain first thing (in main, or in TestMain for tests)")
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Log != nil {
		o.Log = &lockedWriter{w: o.Log}
	}
	log := newLogger(o.Log)
	id := *o.Instance
	if err := checkMachine(o); err != nil {
		return nil, err
	}
	unlock, err := lockMachine(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if left := leftovers(id, o.StateDir); len(left) > 0 {
		return nil, fmt.Errorf("%s is up or left over on this machine (%s): run the lab's down first (with %s=%d)",
			id, strings.Join(left, "; "), instance.Env, int(id))
	}
	if err := os.MkdirAll(o.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create the state folder: %w", err)
	}
	st := &state{Instance: id, StateDir: o.StateDir, CacheDir: o.CacheDir}
	if err := st.save(); err != nil {
		return nil, err
	}
	if err := machineSysctls.raiseSysctls(id); err != nil {
		return nil, err
	}

	built, err := buildImages(ctx, o, log)
	if err != nil {
		return nil, err
	}
	tree := built.tree
	if err := ensureBridge(ctx, id); err != nil {
		return nil, err
	}
	// The images are pushed while the hosts boot (a few seconds for about
	// 180 MB); Up waits for both.
	pushed := make(chan error, 1)
	pushed <- nil
	if tree != nil {
		if err := serveMirror(ctx, st, tree, log); err != nil {
			return nil, err
		}
		<-pushed
		go func() { pushed <- pushImages(ctx, st, tree, log) }()
	}

	pub, err := writeLabKey(o.StateDir)
	if err != nil {
		return nil, err
	}
	password, err := writeSudoPassword(o.StateDir)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.StateDir, knownHostsFileName), nil, 0o600); err != nil {
		return nil, err
	}

	hosts := planHosts(o)
	if err := st.update(func(s *state) { s.Hosts = hosts }); err != nil {
		return nil, err
	}
	setup := hostSetup{ID: id, PubKey: pub, SudoPassword: password, Builtin: modulesBuiltin()}
	l := &Lab{stateDir: o.StateDir, st: st}
	limit := bootLimit()
	log.printf("booting %d hosts, %d at a time", len(hosts), min(limit, len(hosts)))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	var upCount atomic.Int32
	for i := range hosts {
		g.Go(func() error {
			h := hosts[i]
			hs := setup
			if t := built.arch[hostGOARCH(h)]; t != nil {
				hs.Crictl = filepath.Join(t.BinDir, "lab-crictl")
			}
			start, timeout := time.Now(), bootTimeout
			var err error
			if h.VM {
				timeout = vmBootTimeout
				if err := prepareVM(gctx, o.StateDir, h, hs); err != nil {
					return err
				}
				err = bootVM(gctx, id, o.StateDir, built.vms[h.OS], &h)
			} else {
				hs.Layers = built.layers[h.OS]
				if err := prepareHost(gctx, o.StateDir, h, hs); err != nil {
					return err
				}
				err = bootHost(gctx, id, o.StateDir, &h)
			}
			if uerr := st.update(func(s *state) { s.Hosts[i] = h }); err == nil {
				err = uerr
			}
			if err != nil {
				return err
			}
			if err := l.waitBooted(gctx, h, timeout); err != nil {
				return err
			}
			if h.VM {
				// A VM's swap is real and the Kunpeng suite swaps it off:
				// a VM up without it would make that proof empty.
				if out, _, err := l.Exec(gctx, h.Name, "swapon", "--show=NAME", "--noheadings"); err != nil || len(strings.TrimSpace(string(out))) == 0 {
					return fmt.Errorf("host %s booted without its swap volume on (swapon: %q, %v); see %s", h.Name, out, err, pathsOf(o.StateDir, h.Name).Console)
				}
				log.printf("%s booted to SSH in %s, its swap on", h.Name, time.Since(start).Round(time.Second))
			}
			log.printf("%s (%s, %s) is up (%d/%d)", h.Name, h.OS, h.Address, upCount.Add(1), len(hosts))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := <-pushed; err != nil {
		return nil, err
	}
	path, err := writeInventory(id, o.StateDir, st.Hosts)
	if err != nil {
		return nil, err
	}
	if err := st.update(func(s *state) { s.Ready = true }); err != nil {
		return nil, err
	}
	log.printf("%s is up; inventory %s", id, path)
	return l, nil
}

// hostGOARCH is a host's architecture in Go's naming.
func hostGOARCH(h hostState) string {
	if v := lookupVM(h.OS); v != nil {
		return v.GOARCH
	}
	return runtime.GOARCH
}

// checkMachine checks that Up can work here: root and the tools it runs.
func checkMachine(o Options) error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (it mounts, makes network links and boots containers)")
	}
	var missing []string
	tools := map[string]string{}
	for k, v := range machineTools {
		tools[k] = v
	}
	if !o.NoMirror {
		tools["docker-registry"] = "docker-registry"
	}
	for _, name := range append(append([]string{}, o.OS...), o.VMs...) {
		if v := lookupVM(name); v != nil {
			for k, pkg := range vmMachineTools(v) {
				tools[k] = pkg
			}
		}
	}
	for _, tool := range slices.Sorted(maps.Keys(tools)) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", tool, tools[tool]))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the lab needs these programs on the machine: %s", strings.Join(missing, ", "))
	}
	return nil
}

// builtImages is what the hosts boot from and install from.
type builtImages struct {
	// layers are each personality's overlay lower folders, top first.
	layers map[string][]string
	// vms are each VM kind's image.
	vms map[string]vmImage
	// tree is the mirror the lab serves (nil with NoMirror): with VM hosts
	// of another architecture its Root serves every host's architecture.
	tree *mirror.Tree
	// arch is each host architecture's own mirror build, by GOARCH (its
	// BinDir has that arch's lab-crictl).
	arch map[string]*mirror.Tree
}

// buildImages builds (or takes from the cache) the base root file system
// and each personality's layer, each VM kind's image and, unless NoMirror,
// the mirror for every host architecture, side by side.
//
// Each kind takes its own lock for as long as it builds, so that a VM image
// that takes many minutes holds up no other lab's nspawn hosts (the mirror
// locks its own entries).
func buildImages(ctx context.Context, o Options, log *logger) (*builtImages, error) {
	b := &builtImages{layers: map[string][]string{}, vms: map[string]vmImage{}}
	var personalities []string
	goarches := []string{runtime.GOARCH}
	for _, name := range append(append([]string{}, o.OS...), o.VMs...) {
		if v := lookupVM(name); v != nil {
			if !slices.Contains(goarches, v.GOARCH) {
				goarches = append(goarches, v.GOARCH)
			}
			if _, dup := b.vms[name]; !dup {
				b.vms[name] = vmImage{}
			}
		} else if !slices.Contains(personalities, name) {
			personalities = append(personalities, name)
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	if len(personalities) > 0 {
		g.Go(func() error {
			if cached, ok := cachedLayers(o, personalities); ok {
				log.printf("base root file system and personality layers: cached (%s)", o.CacheDir)
				mu.Lock()
				maps.Copy(b.layers, cached)
				mu.Unlock()
				return nil
			}
			unlock, err := lockCache(o.CacheDir)
			if err != nil {
				return err
			}
			defer unlock()
			base, key, err := buildBase(gctx, o, log)
			if err != nil {
				return err
			}
			for _, name := range personalities {
				p, _ := lookupPersonality(name)
				layer, err := buildLayer(gctx, o, base, key, p, log)
				if err != nil {
					return err
				}
				mu.Lock()
				b.layers[name] = []string{layer, base}
				mu.Unlock()
			}
			return nil
		})
	}
	for _, name := range slices.Sorted(maps.Keys(b.vms)) {
		g.Go(func() error {
			unlock, err := lockVMCache(o.CacheDir)
			if err != nil {
				return err
			}
			defer unlock()
			// Not gctx: another build's failure does not throw away many
			// minutes of this one; it finishes into the cache first.
			img, err := buildVMImage(ctx, o, lookupVM(name), log)
			mu.Lock()
			b.vms[name] = img
			mu.Unlock()
			return err
		})
	}
	if !o.NoMirror {
		g.Go(func() error {
			start := time.Now()
			m, err := mirror.BuildMulti(gctx, mirror.Options{CacheDir: o.CacheDir, Log: o.Log, DebianMirror: o.DebianMirror}, goarches)
			if err != nil {
				return fmt.Errorf("build the lab's package mirror (or run up with --no-mirror for hosts without it): %w", err)
			}
			tree := *m.Arch[runtime.GOARCH]
			tree.Root = m.Root
			log.printf("mirror ready in %s (%s)", time.Since(start).Round(time.Second), tree.Root)
			b.tree, b.arch = &tree, m.Arch
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return b, nil
}

// cachedLayers returns each personality's overlay lower folders when the
// cache holds the base and every layer o names, finished. A finished entry
// is moved into place whole and never changed or removed, so reading it
// needs no lock.
func cachedLayers(o Options, personalities []string) (map[string][]string, bool) {
	key := baseKey()
	base := baseDir(o.CacheDir, key)
	if !exists(filepath.Join(base, "done")) {
		return nil, false
	}
	layers := map[string][]string{}
	for _, name := range personalities {
		p, err := lookupPersonality(name)
		if err != nil {
			return nil, false // buildImages reports it
		}
		dir := layerDir(o.CacheDir, p, layerKey(p, key))
		if !exists(filepath.Join(dir, "done")) {
			return nil, false
		}
		layers[name] = []string{filepath.Join(dir, "upper"), filepath.Join(base, "rootfs")}
	}
	return layers, true
}

// serveMirror starts the mirror's HTTP server and the registry.
func serveMirror(ctx context.Context, st *state, tree *mirror.Tree, log *logger) error {
	mp, err := startMirror(ctx, st, tree)
	if uerr := st.update(func(s *state) {
		s.Mirror, s.MirrorRoot, s.MirrorBin = &mp, tree.Root, tree.BinDir
	}); err == nil {
		err = uerr
	}
	if err != nil {
		return err
	}
	rp, err := startRegistry(ctx, st, tree)
	if uerr := st.update(func(s *state) { s.Registry = &rp }); err == nil {
		err = uerr
	}
	if err != nil {
		return err
	}
	log.printf("mirror on %s, registry on %s", st.Instance.MirrorURL(), st.Instance.RegistryAddr())
	return nil
}

// pushImages pushes the lab's images to its registry.
func pushImages(ctx context.Context, st *state, tree *mirror.Tree, log *logger) error {
	addr := st.Instance.RegistryAddr()
	start := time.Now()
	if err := mirror.PushImages(ctx, addr, tree); err != nil {
		return fmt.Errorf("push the lab's images to the registry at %s: %w", addr, err)
	}
	log.printf("%d images pushed to %s in %s", len(tree.Images), addr, time.Since(start).Round(100*time.Millisecond))
	return nil
}
