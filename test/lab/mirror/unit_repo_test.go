package mirror

import (
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReleaseFileListsEachIndexWithItsDigest(t *testing.T) {
	packages := []byte("Package: docker-ce\nVersion: 5:24.0.9-1~ubuntu.22.04~jammy\n")
	gz, err := gzipBytes(packages, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	repo := aptRepo{Suite: "jammy", Component: "stable", Arch: "amd64", Origin: "Docker", Label: "Docker CE"}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	got := releaseFile(repo, now, map[string][]byte{"stable/binary-amd64/Packages": packages, "stable/binary-amd64/Packages.gz": gz})
	sum := sha256.Sum256(packages)
	for _, want := range []string{
		"Origin: Docker\nLabel: Docker CE\nSuite: jammy\nCodename: jammy\n",
		"Date: Mon, 23 Nov 2026 12:00:00 UTC\n",
		"Architectures: amd64\nComponents: stable\n",
		fmt.Sprintf("SHA256:\n %s %d stable/binary-amd64/Packages\n", hex.EncodeToString(sum[:]), len(packages)),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Release lacks %q:\n%s", want, got)
		}
	}
	flat := releaseFile(aptRepo{Arch: "amd64", Origin: "o", Label: "l"}, now, map[string][]byte{"Packages": packages})
	if strings.Contains(flat, "Suite:") || strings.Contains(flat, "Components:") {
		t.Errorf("a flat repo's Release names a suite or components:\n%s", flat)
	}
}

func TestGzipIsReproducible(t *testing.T) {
	a, _ := gzipBytes([]byte("same"), gzip.BestCompression)
	b, _ := gzipBytes([]byte("same"), gzip.BestCompression)
	if string(a) != string(b) {
		t.Error("gzipBytes gave two outputs for one input: index and layer digests would change each build")
	}
}

func TestPackagesStanza(t *testing.T) {
	deb := filepath.Join(t.TempDir(), "x.deb")
	if err := os.WriteFile(deb, []byte("not really a deb"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := packagesStanza("Package: x\nVersion: 1\nDescription: d\n long\n", "pool/x.deb", deb)
	if err != nil {
		t.Fatal(err)
	}
	md := md5.Sum([]byte("not really a deb"))
	sum := sha256.Sum256([]byte("not really a deb"))
	want := "Package: x\nVersion: 1\nDescription: d\n long\nFilename: pool/x.deb\nSize: 16\n" +
		"MD5sum: " + hex.EncodeToString(md[:]) + "\n"
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "SHA256: "+hex.EncodeToString(sum[:])+"\n") {
		t.Errorf("stanza = %q", got)
	}
}

func TestCachedBuildsOnceAndLeavesNothingOnFailure(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	build := func(_ ctxT, tmp string) error {
		calls++
		return os.WriteFile(filepath.Join(tmp, "out"), []byte("x"), 0o644)
	}
	for i := 0; i < 2; i++ {
		got, err := cached(t.Context(), dir, "k1", build)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(got, "out")); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("build ran %d times, want 1", calls)
	}
	if _, err := cached(t.Context(), dir, "k2", func(_ ctxT, tmp string) error { return fmt.Errorf("boom") }); err == nil {
		t.Fatal("a failed build returned no error")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("cache holds %d entries after a failed build, want only k1", len(entries))
	}
}

func TestPruneKeepsUsedOtherArchAndHeldEntries(t *testing.T) {
	for _, c := range []struct {
		name       string
		entries    []string
		held, want string
	}{
		{"used and other arch", []string{"x86_64-old", "x86_64-new", "aarch64-other", "x86_64-new.tmp-123"}, "", "aarch64-other x86_64-new"},
		// Each arch builds under its own lock: another arch's half-built
		// entry may be in the making right now.
		{"other arch building", []string{"x86_64-new", "aarch64-other.tmp-9", "x86_64-old.tmp-8"}, "", "aarch64-other.tmp-9 x86_64-new"},
		// Another lab (other code, another recipe) serves x86_64-served.
		{"held in use", []string{"x86_64-old", "x86_64-served", "x86_64-new"}, "x86_64-served", "x86_64-new x86_64-served"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, n := range c.entries {
				if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if c.held != "" {
				if err := HoldInUse(filepath.Join(dir, c.held)); err != nil {
					t.Fatal(err)
				}
			}
			prune(&runner{}, dir, []string{"x86_64-"}, []string{"x86_64-new"})
			var left []string
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				left = append(left, e.Name())
			}
			if got := strings.Join(left, " "); got != c.want {
				t.Errorf("left %s, want %s", got, c.want)
			}
		})
	}
}

func TestRecipeKeySeparatesParts(t *testing.T) {
	if recipeKey("ab", "c") == recipeKey("a", "bc") {
		t.Error("recipeKey joins parts ambiguously")
	}
}

func TestSourceHashFollowsTheSources(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := writeFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("kubebuild/go.mod", "module github.com/kprep/kprep/test/kubebuild\n")
	write("kubebuild/go.sum", "")
	write("kubebuild/cmd/kubeadm/main.go", "package main\n")
	write("kubebuild/README.md", "the builds\n")
	mod := filepath.Join(dir, "kubebuild")
	h1, err := sourceHash(mod)
	if err != nil {
		t.Fatal(err)
	}
	write("kubebuild/README.md", "the builds, explained\n")
	write("kubebuild/kubeadmcheck/golden_test.go", "package kubeadmcheck\n")
	write("kubebuild/cmd/lab-crictl/info_test.go", "package main\n")
	if h, _ := sourceHash(mod); h != h1 {
		t.Error("a README edit or a test changed the hash: it would rebuild Kubernetes")
	}
	write("kubebuild/cmd/kubeadm/main.go", "package main // changed\n")
	h2, _ := sourceHash(mod)
	if h1 == h2 {
		t.Error("changing a source did not change the hash")
	}
	if got, err := findModule(dir, "kubebuild"); err != nil || got != mod {
		t.Errorf("findModule(%s, kubebuild) = %q, %v", dir, got, err)
	}
	if _, err := findModule(dir, "imagebuild/etcd"); err == nil {
		t.Error("findModule found a module that is not there")
	}
}

func TestKubeLDFlagsSetBothVersionPackages(t *testing.T) {
	f := kubeLDFlags("v1.34.4", "2026-02-10T12:53:36Z", "abc")
	for _, want := range []string{
		"-X k8s.io/component-base/version.gitVersion=v1.34.4",
		"-X k8s.io/client-go/pkg/version.gitVersion=v1.34.4",
		"-X k8s.io/component-base/version.gitTreeState=clean",
		"-X k8s.io/client-go/pkg/version.gitCommit=abc",
		"-X k8s.io/component-base/version.gitMinor=34",
		"-s -w",
	} {
		if !strings.Contains(f, want) {
			t.Errorf("ldflags lack %q: %s", want, f)
		}
	}
}
