package mirror

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dnfRepoFile is a repo file as kprep would write it on an EL host, with
// gpgcheck and repo_gpgcheck on, pointing at the served tree.
func dnfRepoFile(base, dockerTree string) string {
	return fmt.Sprintf(`[docker-ce-stable]
name=Docker CE Stable - $basearch
baseurl=%[1]s/%[2]s/$basearch/stable
enabled=1
gpgcheck=1
repo_gpgcheck=1
gpgkey=%[1]s/%[3]s

[kubernetes]
name=Kubernetes
baseurl=%[1]s/%[4]s/
enabled=1
gpgcheck=1
repo_gpgcheck=1
gpgkey=%[1]s/%[4]s/repodata/repomd.xml.key
exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni

[vault-base]
name=CentOS-7 - Base (vault)
baseurl=%[1]s/%[5]s/os/$basearch/
enabled=1
gpgcheck=0
`, base, dockerTree, dockerKeyCentOS, KubeRPMPath, VaultPath)
}

// dnfIn returns a dnf command line that uses only the given repo file and
// installs into a throwaway root, leaving the machine's rpm database alone.
func dnfIn(t *testing.T, repoFile, releasever string) func(args ...string) (string, error) {
	dir := t.TempDir()
	repos := filepath.Join(dir, "repos")
	if err := writeFile(filepath.Join(repos, "lab.repo"), []byte(repoFile), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "dnf.conf")
	if err := writeFile(conf, []byte("[main]\ngpgcheck=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	return func(args ...string) (string, error) {
		base := []string{"-y", "--installroot=" + root, "--releasever=" + releasever, "--config=" + conf,
			"--setopt=reposdir=" + repos, "--setopt=cachedir=" + filepath.Join(dir, "cache")}
		out, err := runOut("dnf", append(base, args...)...)
		return out, err
	}
}

func TestLabYumListsBothDockerVersions(t *testing.T) {
	tree := labTree(t)
	needTool(t, "dnf")
	base, log := serveTree(t, tree.Root)
	for _, tr := range DockerYumTrees {
		if !strings.HasPrefix(tr.Path, "docker-ce/linux/centos/") {
			continue
		}
		releasever := strings.TrimPrefix(tr.Path, "docker-ce/linux/centos/")
		t.Run("centos"+releasever, func(t *testing.T) {
			dnf := dnfIn(t, dnfRepoFile(base, "docker-ce/linux/centos/$releasever"), releasever)
			out, err := dnf("list", "docker-ce", "--showduplicates")
			if err != nil {
				t.Fatalf("dnf list: %v\n%s", err, out)
			}
			for _, v := range tr.Versions {
				epoch, version, release := dockerVersion(formatRPM, "docker-ce", v, tr.Dist)
				want := fmt.Sprintf("%s:%s-%s", epoch, version, release)
				if !strings.Contains(out, want) {
					t.Errorf("dnf list docker-ce lacks %s:\n%s", want, out)
				}
			}
		})
	}
	if !strings.Contains(log.String(), "/docker-ce/linux/centos/gpg 200") {
		t.Errorf("dnf never fetched the Docker key:\n%s", log.String())
	}
}

func TestLabYumInstallsPinnedPackagesWithSignatures(t *testing.T) {
	tree := labTree(t)
	needTool(t, "dnf")
	base, _ := serveTree(t, tree.Root)
	dnf := dnfIn(t, dnfRepoFile(base, "docker-ce/linux/rhel/$releasever"), "9")
	if out, err := dnf("install", "docker-ce-20.10.24", "docker-ce-cli-20.10.24", "containerd.io-1.6.20"); err != nil {
		t.Fatalf("dnf install docker-ce-20.10.24: %v\n%s", err, out)
	}
	// docker-ce 26.1 requires containerd.io >= 1.6.24: the upgrade takes 1.7 along.
	if out, err := dnf("upgrade", "docker-ce-26.1.5", "docker-ce-cli-26.1.5"); err != nil {
		t.Fatalf("dnf upgrade docker-ce-26.1.5: %v\n%s", err, out)
	}
	// The kubernetes repo excludes its own packages, as the real repo file does.
	if out, err := dnf("install", "kubeadm-1.34.4"); err == nil {
		t.Fatalf("kubeadm installed without --disableexcludes:\n%s", out)
	}
	if out, err := dnf("install", "--disableexcludes=kubernetes", "kubeadm-1.34.3", "kubelet-1.34.3", "kubectl-1.34.3"); err != nil {
		t.Fatalf("dnf install kubeadm-1.34.3: %v\n%s", err, out)
	}
	if out, err := dnf("upgrade", "--disableexcludes=kubernetes", "kubeadm-1.34.4"); err != nil {
		t.Fatalf("dnf upgrade kubeadm-1.34.4: %v\n%s", err, out)
	}
	q, err := dnf("repoquery", "--installed", "--qf", "%{name}-%{epoch}:%{version}-%{release}")
	if err != nil {
		t.Fatalf("dnf repoquery: %v\n%s", err, q)
	}
	for _, want := range []string{
		"docker-ce-3:26.1.5-1.el9", "docker-ce-cli-1:26.1.5-1.el9", "containerd.io-0:1.7.24-3.1.el9",
		"kubeadm-0:1.34.4-150500.1.1", "kubelet-0:1.34.3-150500.1.1", "kubernetes-cni-0:1.5.1-150500.1.1",
	} {
		if !strings.Contains(q, want) {
			t.Errorf("installed packages lack %s:\n%s", want, q)
		}
	}
}

func TestLabRPMsAreSaneAndSigned(t *testing.T) {
	tree := labTree(t)
	pkgs := filepath.Join(tree.Root, "docker-ce/linux/centos/7/x86_64/stable/Packages")
	containerd := filepath.Join(pkgs, "containerd.io-1.7.24-3.1.el7.x86_64.rpm")
	docker := filepath.Join(pkgs, "docker-ce-26.1.5-1.el7.x86_64.rpm")

	req := mustRun(t, "rpm", "-qp", "--requires", docker)
	for _, l := range strings.Split(strings.TrimSpace(req), "\n") {
		if !strings.HasPrefix(l, "rpmlib(") && !strings.HasPrefix(l, "docker-ce-cli") && !strings.HasPrefix(l, "containerd.io") {
			t.Errorf("docker-ce requires %q, which a lab host's rpm database cannot provide", l)
		}
	}
	scripts := mustRun(t, "rpm", "-qp", "--scripts", docker)
	if !strings.Contains(scripts, "groupadd --system docker") || strings.Contains(scripts, "systemctl enable") {
		t.Errorf("docker-ce scripts:\n%s", scripts)
	}
	files := mustRun(t, "rpm", "-qp", "--list", "--configfiles", containerd)
	if strings.TrimSpace(files) != "/etc/containerd/config.toml" {
		t.Errorf("containerd.io config files = %q, want /etc/containerd/config.toml", files)
	}
	list := mustRun(t, "rpm", "-qp", "--list", docker)
	for _, f := range []string{"/usr/bin/dockerd", "/usr/bin/docker-proxy", "/usr/bin/docker-init", "/usr/lib/systemd/system/docker.service", "/usr/lib/systemd/system/docker.socket"} {
		if !strings.Contains(list, f+"\n") {
			t.Errorf("docker-ce lacks %s:\n%s", f, list)
		}
	}
	// Signature check against the served key only, in a throwaway database.
	db := t.TempDir()
	mustRun(t, "rpm", "--dbpath", db, "--import", filepath.Join(tree.Root, dockerKeyCentOS))
	if out := mustRun(t, "rpm", "--dbpath", db, "-K", docker); !strings.Contains(out, "signatures OK") {
		t.Errorf("rpm -K: %s", out)
	}
	if _, err := os.Stat(filepath.Join(tree.Root, KubeRPMPath, "repodata/repomd.xml.asc")); err != nil {
		t.Errorf("the Kubernetes repo metadata is not signed: %v", err)
	}
}
