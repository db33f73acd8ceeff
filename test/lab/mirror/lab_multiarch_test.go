package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLabMultiArchTreeServesBothArches builds the amd64 and arm64 mirrors
// (the arm64 one cross-compiles Kubernetes: opt-in with KPREP_KUNPENG=1,
// as the lab's aarch64 VM host is) and checks the merged tree with the real
// tools: dnf as an aarch64 host and as an x86_64 one sees its own arch's
// packages from the same repos, signatures checked; apt as an arm64 host
// reads the one signed flat index and finds arm64 kubeadm.
func TestLabMultiArchTreeServesBothArches(t *testing.T) {
	if os.Getenv("KPREP_LAB") != "1" || os.Getenv("KPREP_KUNPENG") != "1" {
		t.Skip("set KPREP_LAB=1 KPREP_KUNPENG=1 (root) to build the arm64 mirror and merge it with the amd64 one")
	}
	needTool(t, "dnf")
	m, err := BuildMulti(t.Context(), Options{CacheDir: labCacheDir(), Log: testLog{t}}, []string{"amd64", "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Root == m.Arch["amd64"].Root || m.Root == m.Arch["arm64"].Root {
		t.Fatalf("the merged tree is one arch's own: %s", m.Root)
	}
	for _, p := range []string{
		"docker-ce/linux/centos/8/aarch64/stable/repodata/repomd.xml.asc",
		"docker-ce/linux/centos/8/x86_64/stable/repodata/repomd.xml.asc",
		KubeRPMPath + "/aarch64", KubeRPMPath + "/x86_64",
		VaultAltArchPath + "/os/aarch64/repodata/repomd.xml",
		VaultPath + "/os/x86_64/repodata/repomd.xml",
		DockerAptPath + "/dists/jammy/stable/binary-arm64/Packages",
	} {
		if _, err := os.Stat(filepath.Join(m.Root, p)); err != nil {
			t.Errorf("merged tree lacks %s: %v", p, err)
		}
	}
	release, err := os.ReadFile(filepath.Join(m.Root, DockerAptPath, "dists/jammy/Release"))
	if err != nil || !strings.Contains(string(release), "Architectures: amd64 arm64\n") || !strings.Contains(string(release), "stable/binary-arm64/Packages.gz\n") {
		t.Errorf("Docker's jammy Release does not cover arm64: %v\n%s", err, release)
	}
	base, _ := serveTree(t, m.Root)
	for _, arch := range []string{"aarch64", "x86_64"} {
		t.Run("dnf "+arch, func(t *testing.T) {
			dnf := dnfIn(t, dnfRepoFile(base, "docker-ce/linux/centos/$releasever"), "8")
			out, err := dnf("--forcearch="+arch, "list", "--showduplicates", "--disableexcludes=kubernetes", "docker-ce", "containerd.io", "kubeadm", "kubelet")
			if err != nil {
				t.Fatalf("dnf list: %v\n%s", err, out)
			}
			other := map[string]string{"aarch64": "x86_64", "x86_64": "aarch64"}[arch]
			for _, want := range []string{"docker-ce." + arch, "containerd.io." + arch, "kubeadm." + arch, "kubelet." + arch} {
				if !strings.Contains(out, want) {
					t.Errorf("dnf list as %s lacks %s:\n%s", arch, want, out)
				}
			}
			if strings.Contains(out, "."+other) {
				t.Errorf("dnf list as %s shows %s packages:\n%s", arch, other, out)
			}
		})
	}
	t.Run("apt arm64", func(t *testing.T) {
		aptGet, aptCache := aptIn(t, base)
		arm := []string{"-o", "APT::Architecture=arm64"}
		if out, err := aptGet(append(arm, "update")...); err != nil || strings.Contains(out, "W: ") || strings.Contains(out, "Err:") {
			t.Fatalf("apt-get update: %v\n%s", err, out)
		}
		out, err := aptCache(append(arm, "show", "kubeadm")...)
		if err != nil || !strings.Contains(out, "Architecture: arm64") || !strings.Contains(out, "Filename: arm64/kubeadm_") {
			t.Errorf("apt-cache show kubeadm as arm64: %v\n%s", err, out)
		}
	})
}
