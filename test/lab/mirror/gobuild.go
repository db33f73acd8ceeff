package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// goBuild is one `go build` of a module under test/ that makes real
// programs from the Go module proxy: all of a module's programs come from
// one invocation, so they share one compile of their dependencies.
type goBuild struct {
	// Name names the build in logs and its cache folder (CACHE/go/Name/).
	Name string
	// Module is the module's folder below test/ ("kubebuild", "imagebuild/etcd").
	Module string
	// Packages are what go build builds, in the module's folder: its own
	// mains ("./cmd/...") or main packages of its dependencies, named in
	// its go.mod's tool block ("go.etcd.io/etcd/server/v3").
	Packages []string
	// Rename maps go build's output names to the programs' names
	// ("server" for go.etcd.io/etcd/server/v3 -> "etcd").
	Rename map[string]string
	// Programs are the programs the build must leave, after renaming.
	Programs []string
	// LDFlags are the linker flags; recipe is the build's recipe key, for
	// a version field that names the build (Kubernetes' gitCommit).
	LDFlags func(recipe string) string
	// Generate, if set, builds in a copy of the module (go.mod, go.sum)
	// into which it writes generated sources; go runs go commands there.
	Generate func(ctx context.Context, goCmd *runner, dir string) error
	// GenerateRecipe describes what Generate does, for the cache key.
	GenerateRecipe string
	// Checks run the fresh programs (on the machine's own arch) and check
	// the version each reports.
	Checks []versionCheck
}

// versionCheck runs a program and looks for a text in what it prints.
type versionCheck struct {
	Args []string // program name, then its arguments
	Env  []string // extra environment
	Want string
}

// builtPrograms is a goBuild's output for one arch.
type builtPrograms struct {
	Dir string // the programs, by name
}

// path returns a program's file.
func (b builtPrograms) path(name string) string { return filepath.Join(b.Dir, name) }

// findModule returns a module folder below test/ ("kubebuild"): below
// the given test folder, else the first test/ above the working folder,
// else the one beside this source file (go test, go run).
func findModule(testDir, module string) (string, error) {
	if testDir != "" {
		return checkModule(filepath.Join(testDir, module))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if dir, err := checkModule(filepath.Join(d, "test", module)); err == nil {
				return dir, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if dir, err := checkModule(filepath.Join(filepath.Dir(file), "..", "..", module)); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("cannot find the test/%s module: run from inside the kprep checkout or set Options.TestDir", module)
}

// checkModule says whether dir holds one of kprep's build modules.
func checkModule(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(data), "module github.com/kprep/kprep/test/") {
		return "", fmt.Errorf("%s/go.mod is not one of kprep's build modules", dir)
	}
	return filepath.Abs(dir)
}

// sourceHash hashes go.mod, go.sum and every .go file below the module's
// cmd/ but tests, so any change to what is built makes a new cache entry,
// and a README edit or a test of another package in the module (kubebuild's
// kubeadmcheck) does not rebuild Kubernetes.
func sourceHash(dir string) (string, error) {
	files := []string{"go.mod", "go.sum"}
	err := filepath.WalkDir(filepath.Join(dir, "cmd"), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == filepath.Join(dir, "cmd") {
			return filepath.SkipDir // a module that builds its dependencies' mains only
		}
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files = append(files, rel)
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// goVersion is the machine's Go version (go1.26.8).
func goVersion(ctx context.Context, r *runner) (string, error) {
	out, err := r.run(ctx, "", "go", "env", "GOVERSION")
	if err != nil {
		return "", fmt.Errorf("find the Go toolchain: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// runGoBuild builds b for a into the cache (CACHE/go/NAME/KEY-GOARCH/) and
// returns its programs. The key hashes the module's sources, the Go
// version, GOARCH, the flags and what Generate does.
func runGoBuild(ctx context.Context, r *runner, cacheDir, testDir string, b goBuild, a arch) (builtPrograms, error) {
	moduleDir, err := findModule(testDir, b.Module)
	if err != nil {
		return builtPrograms{}, err
	}
	goV, err := goVersion(ctx, r)
	if err != nil {
		return builtPrograms{}, err
	}
	src, err := sourceHash(moduleDir)
	if err != nil {
		return builtPrograms{}, fmt.Errorf("hash %s: %w", moduleDir, err)
	}
	recipe := recipeKey("gobuild/1", b.Name, src, a.Go, goV, strings.Join(b.Packages, " "),
		fmt.Sprint(sortedKeys(b.Rename), b.Rename), b.LDFlags(""), b.GenerateRecipe)
	dir, err := cached(ctx, filepath.Join(cacheDir, "go", b.Name), recipe+"-"+a.Go, func(ctx context.Context, tmp string) error {
		gb := *r
		gb.env = append(append([]string{}, r.env...), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+a.Go, "GOWORK=off")
		buildDir := moduleDir
		if b.Generate != nil {
			buildDir = filepath.Join(tmp, "module")
			for _, f := range []string{"go.mod", "go.sum"} {
				if err := copyFile(filepath.Join(moduleDir, f), filepath.Join(buildDir, f), 0o644); err != nil {
					return err
				}
			}
			if err := b.Generate(ctx, &gb, buildDir); err != nil {
				return fmt.Errorf("%s: %w", b.Name, err)
			}
		}
		out := filepath.Join(tmp, "bin")
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		r.logf("building %s for %s: go build %s (minutes when cold)", b.Name, a.Go, strings.Join(b.Packages, " "))
		start := time.Now()
		args := append([]string{"build", "-trimpath", "-ldflags=" + b.LDFlags(recipe), "-o", out + "/"}, b.Packages...)
		if _, err := gb.run(ctx, buildDir, "go", args...); err != nil {
			return fmt.Errorf("build %s: %w", b.Name, err)
		}
		r.logf("built %s for %s in %s", b.Name, a.Go, time.Since(start).Round(time.Second))
		for from, to := range b.Rename {
			if err := os.Rename(filepath.Join(out, from), filepath.Join(out, to)); err != nil {
				return fmt.Errorf("%s: %w", b.Name, err)
			}
		}
		for _, name := range b.Programs {
			if _, err := os.Stat(filepath.Join(out, name)); err != nil {
				return fmt.Errorf("go build of %s made no %s: %w", b.Name, name, err)
			}
		}
		if b.Generate != nil {
			if err := os.RemoveAll(buildDir); err != nil {
				return err
			}
		}
		if a.Go != runtime.GOARCH {
			return nil // cannot run them here to check
		}
		return checkVersions(ctx, out, b.Checks)
	})
	if err != nil {
		return builtPrograms{}, err
	}
	prune(r, filepath.Join(cacheDir, "go", b.Name), nil, []string{filepath.Base(dir)}, "-"+a.Go)
	return builtPrograms{Dir: filepath.Join(dir, "bin")}, nil
}

// checkVersions runs each check's program from dir and looks for its text
// in what it prints on either stream (a CNI plugin prints on stderr).
func checkVersions(ctx context.Context, dir string, checks []versionCheck) error {
	for _, c := range checks {
		cmd := exec.CommandContext(ctx, filepath.Join(dir, c.Args[0]), c.Args[1:]...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), c.Env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(c.Args, " "), err, tail(string(out), 2000))
		}
		if !strings.Contains(string(out), c.Want) {
			return fmt.Errorf("%s printed %q, want %q in it: the version ldflags did not take", strings.Join(c.Args, " "), strings.TrimSpace(string(out)), c.Want)
		}
	}
	return nil
}

// errNoImport is trimImports' error when an import to drop is not there.
var errNoImport = errors.New("import not found")

// trimImports returns a Go source without the import lines of the given
// packages, failing if one of them is not imported: a new upstream
// version that changed them must be looked at, not built blindly.
func trimImports(src []byte, drop []string) ([]byte, error) {
	lines := strings.SplitAfter(string(src), "\n")
	var out strings.Builder
	found := map[string]bool{}
	for _, l := range lines {
		dropped := false
		for _, d := range drop {
			if strings.Contains(l, `"`+d+`"`) && strings.HasPrefix(strings.TrimSpace(l), `_ "`) {
				found[d], dropped = true, true
			}
		}
		if !dropped {
			out.WriteString(l)
		}
	}
	for _, d := range drop {
		if !found[d] {
			return nil, fmt.Errorf("%w: %s", errNoImport, d)
		}
	}
	return []byte(out.String()), nil
}
