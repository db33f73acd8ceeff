package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// KubeVersion is the Kubernetes release the lab builds from the module proxy.
const KubeVersion = "v1.34.4"

// kubeBuildDate is the v1.34.4 tag's time as the module proxy reports it:
// a fixed date keeps the binaries and their cache key the same on every run.
const kubeBuildDate = "2026-02-10T12:53:36Z"

// kubeBinaries are the programs test/kubebuild makes, all in one go build.
var kubeBinaries = []string{"kubeadm", "kubelet", "kubectl", "lab-crictl"}

// findKubeBuild returns the test/kubebuild module folder: the one given,
// else the first test/kubebuild above the working folder, else the one
// beside this source file (go test, go run).
func findKubeBuild(given string) (string, error) {
	if given != "" {
		return checkKubeBuild(given)
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if dir, err := checkKubeBuild(filepath.Join(d, "test", "kubebuild")); err == nil {
				return dir, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if dir, err := checkKubeBuild(filepath.Join(filepath.Dir(file), "..", "..", "kubebuild")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("cannot find the test/kubebuild module: run from inside the kprep checkout or set Options.KubeBuildDir")
}

// checkKubeBuild says whether dir holds the kubebuild module.
func checkKubeBuild(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(data), "module github.com/kprep/kprep/test/kubebuild") {
		return "", fmt.Errorf("%s/go.mod is not the kubebuild module", dir)
	}
	return filepath.Abs(dir)
}

// sourceHash hashes go.mod, go.sum and every file under cmd/ of the module,
// so any change to what is built makes a new cache entry.
func sourceHash(dir string) (string, error) {
	files := []string{"go.mod", "go.sum"}
	err := filepath.WalkDir(filepath.Join(dir, "cmd"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
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

// kubeLDFlags sets the version that kubeadm, kubelet and kubectl report,
// in both packages the release build sets (component-base for the servers
// and kubeadm, client-go for kubectl's client version).
func kubeLDFlags(gitCommit string) string {
	major, minor := "1", "34"
	flags := []string{"-s", "-w"}
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X", pkg+".gitVersion="+KubeVersion,
			"-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitCommit="+gitCommit,
			"-X", pkg+".gitTreeState=clean",
			"-X", pkg+".buildDate="+kubeBuildDate,
		)
	}
	return strings.Join(flags, " ")
}

// buildKube builds the kubebuild module's programs for a.Go into the cache
// and returns the folder holding them. All four come from one go build so
// they share one compile of the Kubernetes tree.
func buildKube(ctx context.Context, r *runner, cacheDir, moduleDir string, a arch) (string, error) {
	goVersion, err := r.run(ctx, moduleDir, "go", "env", "GOVERSION")
	if err != nil {
		return "", fmt.Errorf("find the Go toolchain: %w", err)
	}
	src, err := sourceHash(moduleDir)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", moduleDir, err)
	}
	// gitCommit cannot be the upstream commit (the module proxy does not
	// say it); it names this build's recipe instead, so two lab binaries
	// with the same commit are the same build.
	gitCommit := recipeKey("kubebuild/1", src, a.Go, strings.TrimSpace(string(goVersion)), kubeLDFlags(""))
	key := gitCommit + "-" + a.Go
	return cached(ctx, filepath.Join(cacheDir, "kube"), key, func(ctx context.Context, tmp string) error {
		r.logf("building %s %s for %s from k8s.io/kubernetes (minutes when cold)", strings.Join(kubeBinaries, " "), KubeVersion, a.Go)
		b := *r
		b.env = append(append([]string{}, r.env...), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+a.Go, "GOWORK=off")
		start := time.Now()
		if _, err := b.run(ctx, moduleDir, "go", "build", "-trimpath", "-ldflags="+kubeLDFlags(gitCommit), "-o", tmp+"/", "./cmd/..."); err != nil {
			return fmt.Errorf("build the Kubernetes binaries: %w", err)
		}
		r.logf("built the Kubernetes binaries in %s", time.Since(start).Round(time.Second))
		for _, name := range kubeBinaries {
			if _, err := os.Stat(filepath.Join(tmp, name)); err != nil {
				return fmt.Errorf("go build made no %s: %w", name, err)
			}
		}
		if a.Go != runtime.GOARCH {
			return nil // cannot run them here to check
		}
		return checkKubeVersions(ctx, r, tmp)
	})
}

// checkKubeVersions runs the fresh binaries and checks the version each reports.
func checkKubeVersions(ctx context.Context, r *runner, dir string) error {
	checks := []struct {
		args []string
		want string
	}{
		{[]string{"kubeadm", "version", "-o", "short"}, KubeVersion},
		{[]string{"kubelet", "--version"}, "Kubernetes " + KubeVersion},
		{[]string{"kubectl", "version", "--client"}, "Client Version: " + KubeVersion},
	}
	for _, c := range checks {
		out, err := r.run(ctx, dir, filepath.Join(dir, c.args[0]), c.args[1:]...)
		if err != nil {
			return err
		}
		if !strings.Contains(string(out), c.want) {
			return fmt.Errorf("%s printed %q, want %q in it: the version ldflags did not take", strings.Join(c.args, " "), strings.TrimSpace(string(out)), c.want)
		}
	}
	return nil
}
