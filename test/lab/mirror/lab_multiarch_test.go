package mirror

import (
	"os"
	"path/filepath"
	"regexp"
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
			// The repo file's vault is the x86_64 one (an aarch64 host
			// has it under altarch/, checked above).
			dnf := dnfIn(t, dnfRepoFile(base, "docker-ce/linux/centos/$releasever"), "8")
			list := func(pkgs ...string) string {
				out, err := dnf(append([]string{"--forcearch=" + arch, "--disablerepo=vault-base", "--disableexcludes=kubernetes",
					"list", "--showduplicates"}, pkgs...)...)
				if err != nil {
					t.Fatalf("dnf list: %v\n%s", err, out)
				}
				return out
			}
			other := map[string]string{"aarch64": "x86_64", "x86_64": "aarch64"}[arch]
			// Docker's tree is per arch ($basearch in the baseurl).
			docker := list("docker-ce", "containerd.io")
			for _, want := range []string{"docker-ce." + arch, "containerd.io." + arch} {
				if !strings.Contains(docker, want) {
					t.Errorf("dnf list as %s lacks %s:\n%s", arch, want, docker)
				}
			}
			if strings.Contains(docker, "."+other) {
				t.Errorf("dnf list as %s shows %s packages from Docker's tree:\n%s", arch, other, docker)
			}
			// pkgs.k8s.io has one repodata over both arches, as here:
			// each host installs its own.
			for _, want := range []string{"kubeadm." + arch, "kubelet." + arch} {
				if kube := list("kubeadm", "kubelet"); !strings.Contains(kube, want) {
					t.Errorf("dnf list as %s lacks %s:\n%s", arch, want, kube)
				}
			}
			out, _ := dnf("--forcearch="+arch, "--disablerepo=vault-base", "--disableexcludes=kubernetes", "--assumeno", "install", "kubeadm-1.34.4")
			if !regexp.MustCompile(`(?m)^ kubeadm\s+` + arch + `\s+1\.34\.4`).MatchString(out) {
				t.Errorf("dnf install kubeadm as %s would not take the %s package:\n%s", arch, arch, out)
			}
		})
	}
	t.Run("apt arm64", func(t *testing.T) {
		aptGet, aptCache := aptIn(t, base)
		arm := []string{"-o", "APT::Architecture=arm64"}
		if out, err := aptGet(append(arm, "update")...); err != nil || strings.Contains(out, "NO_PUBKEY") || strings.Contains(out, "not signed") || strings.Contains(out, "Err:") {
			t.Fatalf("apt-get update: %v\n%s", err, out)
		}
		out, err := aptCache(append(arm, "show", "kubeadm")...)
		if err != nil || !strings.Contains(out, "Architecture: arm64") || !strings.Contains(out, "Filename: arm64/kubeadm_") {
			t.Errorf("apt-cache show kubeadm as arm64: %v\n%s", err, out)
		}
	})
}
