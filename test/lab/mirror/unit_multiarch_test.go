package mirror

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testSigner makes a throw-away ed25519 signing key (quick, unlike the
// lab's RSA 4096 ones); it needs gpg.
func testSigner(t *testing.T) *signer {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("needs gpg (Debian package gnupg)")
	}
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killAgent(home) })
	uid := "kprep lab test <test@lab.kprep.invalid>"
	r := &runner{}
	ctx := context.Background()
	if _, err := r.run(ctx, home, "gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback",
		"--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"); err != nil {
		t.Fatal(err)
	}
	pub, err := r.run(ctx, home, "gpg", "--homedir", home, "--batch", "--armor", "--export", uid)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{home: home, uid: uid, fingerprint: "test", publicKey: pub}
}

// writeTree writes files (path -> content) under a new folder.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, data := range files {
		if err := writeFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// archTree is one architecture's tree as Build lays it out, in miniature:
// a per-arch Docker yum tree, a flat Kubernetes apt repo and a Docker apt
// suite, each with its own index.
func archTree(t *testing.T, deb, rpm string) string {
	t.Helper()
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	flat := "Package: kubeadm\nArchitecture: " + deb + "\nFilename: " + deb + "/kubeadm.deb\n"
	suite := "Package: docker-ce\nArchitecture: " + deb + "\n"
	flatRel := releaseFile(aptRepo{Arch: deb, Origin: "k8s", Label: "isv:kubernetes"}, now, map[string][]byte{"Packages": []byte(flat)})
	suiteRel := releaseFile(aptRepo{Suite: "jammy", Component: "stable", Arch: deb, Origin: "Docker", Label: "Docker CE"}, now,
		map[string][]byte{"stable/binary-" + deb + "/Packages": []byte(suite)})
	return writeTree(t, map[string]string{
		"docker-ce/linux/centos/8/" + rpm + "/stable/repodata/repomd.xml":       "repomd " + rpm,
		"docker-ce/linux/centos/8/" + rpm + "/stable/Packages/d.rpm":            "rpm " + rpm,
		"docker-ce/linux/centos/gpg":                                            "the docker key",
		"kubernetes-new/core/stable/v1.34/deb/" + deb + "/kubeadm.deb":          "deb " + deb,
		"kubernetes-new/core/stable/v1.34/deb/Packages":                         flat,
		"kubernetes-new/core/stable/v1.34/deb/Release":                          flatRel,
		"kubernetes-new/core/stable/v1.34/deb/InRelease":                        "signed " + deb,
		"docker-ce/linux/ubuntu/dists/jammy/stable/binary-" + deb + "/Packages": suite,
		"docker-ce/linux/ubuntu/dists/jammy/Release":                            suiteRel,
	})
}

func TestMergeTreesLaysArchesSideBySideWithOneIndex(t *testing.T) {
	s := testSigner(t)
	amd, arm := archTree(t, "amd64", "x86_64"), archTree(t, "arm64", "aarch64")
	dst := t.TempDir()
	signers := map[string]*signer{"docker-ce": s, "kubernetes-new": s}
	if err := mergeTrees(context.Background(), &runner{}, dst, []string{amd, arm}, signers, time.Now()); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil {
			t.Error(err)
		}
		return string(b)
	}
	// Per-arch folders come through as they are, index and all.
	if got := read("docker-ce/linux/centos/8/aarch64/stable/repodata/repomd.xml"); got != "repomd aarch64" {
		t.Errorf("aarch64 repodata = %q", got)
	}
	read("docker-ce/linux/centos/8/x86_64/stable/Packages/d.rpm")
	// The flat repo has one Packages over both arches, in a signed Release.
	packages := read("kubernetes-new/core/stable/v1.34/deb/Packages")
	if !strings.Contains(packages, "Architecture: amd64") || !strings.Contains(packages, "Architecture: arm64") {
		t.Errorf("flat Packages lacks an arch:\n%s", packages)
	}
	rel := read("kubernetes-new/core/stable/v1.34/deb/Release")
	if !strings.Contains(rel, "Architectures: amd64 arm64\n") || !strings.Contains(rel, "Origin: k8s\n") || !strings.Contains(rel, " Packages.gz\n") {
		t.Errorf("flat Release:\n%s", rel)
	}
	if in := read("kubernetes-new/core/stable/v1.34/deb/InRelease"); !strings.Contains(in, "BEGIN PGP SIGNED MESSAGE") || !strings.Contains(in, "Architectures: amd64 arm64") {
		t.Errorf("InRelease is not the new Release, signed:\n%s", in)
	}
	// The suite's Release lists both binary-<arch> indexes.
	suite := read("docker-ce/linux/ubuntu/dists/jammy/Release")
	for _, want := range []string{"Suite: jammy\n", "Components: stable\n", "Architectures: amd64 arm64\n",
		" stable/binary-amd64/Packages\n", " stable/binary-arm64/Packages\n"} {
		if !strings.Contains(suite, want) {
			t.Errorf("suite Release lacks %q:\n%s", want, suite)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "docker-ce/linux/ubuntu/dists/jammy/Release.gpg")); err != nil {
		t.Error(err)
	}
	// Packages are linked, not copied.
	a, _ := os.Stat(filepath.Join(arm, "kubernetes-new/core/stable/v1.34/deb/arm64/kubeadm.deb"))
	b, _ := os.Stat(filepath.Join(dst, "kubernetes-new/core/stable/v1.34/deb/arm64/kubeadm.deb"))
	if !os.SameFile(a, b) {
		t.Error("the merged tree copied a package instead of linking it")
	}
}

func TestMergeTreesRefusesTwoDifferentFilesAtOnePath(t *testing.T) {
	a := writeTree(t, map[string]string{"docker-ce/linux/centos/gpg": "key one"})
	b := writeTree(t, map[string]string{"docker-ce/linux/centos/gpg": "key two"})
	err := mergeTrees(context.Background(), &runner{}, t.TempDir(), []string{a, b}, nil, time.Now())
	if err == nil || !strings.Contains(err.Error(), "docker-ce/linux/centos/gpg") {
		t.Errorf("err = %v, want one naming the path", err)
	}
}
