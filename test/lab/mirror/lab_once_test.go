package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	treeOnce  sync.Once
	builtTree *Tree
	buildErr  error
)

// testLog sends Build's progress lines to the test log.
type testLog struct{ t *testing.T }

// Write logs one progress line.
func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(string(p))
	return len(p), nil
}

func TestLabBuild(t *testing.T) {
	tree := labTree(t)
	if got := strings.TrimSpace(mustRun(t, filepath.Join(tree.BinDir, "kubeadm"), "version", "-o", "short")); got != KubeVersion {
		t.Errorf("kubeadm version -o short = %q, want %s", got, KubeVersion)
	}
	if got := mustRun(t, filepath.Join(tree.BinDir, "kubelet"), "--version"); !strings.Contains(got, "Kubernetes "+KubeVersion) {
		t.Errorf("kubelet --version = %q", got)
	}
	for _, p := range kubePrograms {
		if _, err := os.Stat(filepath.Join(tree.BinDir, p)); err != nil {
			t.Error(err)
		}
	}
	for _, p := range []string{
		dockerKeyCentOS, dockerKeyRHEL, dockerKeyUbuntu,
		"docker-ce/linux/centos/7/x86_64/stable/repodata/repomd.xml.asc",
		"docker-ce/linux/rhel/9/x86_64/stable/Packages/docker-ce-26.1.5-1.el9.x86_64.rpm",
		"docker-ce/linux/centos/7/x86_64/stable/Packages/docker-ce-20.10.24-3.el7.x86_64.rpm",
		DockerAptPath + "/dists/jammy/InRelease",
		KubeRPMPath + "/repodata/repomd.xml.key",
		KubeDebPath + "/Release.key",
		VaultPath + "/updates/x86_64/repodata/repomd.xml",
	} {
		if _, err := os.Stat(filepath.Join(tree.Root, p)); err != nil {
			t.Errorf("tree lacks %s: %v", p, err)
		}
	}
	if v := tree.DebianVersions["bookworm"]["docker.io"]; !strings.HasPrefix(v, "20.10.24+") {
		t.Errorf("bookworm's docker.io is %q; the docker-ce 20.10.24 packages must carry dockerd 20.10.24", v)
	}
	if v := tree.DebianVersions["trixie"]["docker.io"]; !strings.HasPrefix(v, "26.1.5+") {
		t.Errorf("trixie's docker.io is %q; the docker-ce 26.1.5 packages must carry dockerd 26.1.5", v)
	}
	// A second build with nothing changed finds everything in the cache.
	again, err := Build(t.Context(), Options{CacheDir: labCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	if again.Root != tree.Root || again.BinDir != tree.BinDir {
		t.Errorf("a second Build gave %s, %s; want the cached %s, %s", again.Root, again.BinDir, tree.Root, tree.BinDir)
	}
}
