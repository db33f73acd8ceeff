package mirror

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// startRegistry runs Debian's docker-registry with RegistryConfig on a
// loopback port for the test's life and returns its address.
func startRegistry(t *testing.T) string {
	t.Helper()
	needTool(t, "docker-registry")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.yml")
	if err := writeFile(conf, RegistryConfig(filepath.Join(dir, "data"), addr), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command("docker-registry", "serve", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // our own child, by its pid
		cmd.Wait()
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", addr, err, out.String())
		}
	}
}

// pushedRegistry is a docker-registry holding the built tree's images.
func pushedRegistry(t *testing.T, tree *Tree) string {
	t.Helper()
	addr := startRegistry(t)
	for i := 0; i < 2; i++ { // a second push finds every blob and only re-puts manifests
		start := time.Now()
		if err := PushImages(t.Context(), addr, tree); err != nil {
			t.Fatalf("push %d: %v", i+1, err)
		}
		t.Logf("push %d of %d images: %s", i+1, len(tree.Images), time.Since(start).Round(time.Millisecond))
	}
	return addr
}

func TestLabPushImagesToDockerRegistry(t *testing.T) {
	tree := labTree(t)
	addr := pushedRegistry(t, tree)
	for _, img := range tree.Images {
		for _, ref := range img.Refs(addr) {
			m, digest, err := RemoteIndex(t.Context(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if digest.String() != img.Digest || len(m.Manifests) != len(img.Platforms) {
				t.Errorf("%s: registry has %s with %d manifests, built %s for %v", ref, digest, len(m.Manifests), img.Digest, img.Platforms)
			}
		}
		// Every layer blob reads back with its digest (remote checks it while reading).
		r, _ := name.ParseReference(img.Refs(addr)[0], name.Insecure)
		idx, err := remote.Index(r, remote.WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		m, _ := idx.IndexManifest()
		pulled, err := idx.Image(m.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := pulled.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				t.Errorf("%s: layer: %v", img.Repo, err)
			}
		}
	}
	// docker's registry-mirrors only ask for Docker Hub names: library/hello must be there.
	if _, _, err := RemoteIndex(t.Context(), addr+"/library/hello:latest"); err != nil {
		t.Errorf("library/hello:latest is not in the registry: %v", err)
	}
}

// TestLabKubeadmImagesAreInTheRegistry runs the real kubeadm's `config
// images list` with the registry as imageRepository, as an operator's
// mirror is used, and asks the registry for each (HEAD and GET of the
// manifest, no pull).
func TestLabKubeadmImagesAreInTheRegistry(t *testing.T) {
	tree := labTree(t)
	addr := pushedRegistry(t, tree)
	list := mustRun(t, filepath.Join(tree.BinDir, "kubeadm"), "config", "images", "list",
		"--kubernetes-version", KubeVersion, "--image-repository", addr+"/google_containers")
	refs := strings.Fields(list)
	if len(refs) != 7 {
		t.Errorf("kubeadm lists %d images, want 7:\n%s", len(refs), list)
	}
	for _, ref := range refs {
		m, digest, err := RemoteIndex(t.Context(), ref)
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("%s %s %s/%s", ref, digest, m.Manifests[0].Platform.OS, m.Manifests[0].Platform.Architecture)
	}
}
