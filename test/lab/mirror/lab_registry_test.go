package mirror

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
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

func TestLabPushImagesToDockerRegistry(t *testing.T) {
	tree := labTree(t)
	addr := startRegistry(t)
	for i := 0; i < 2; i++ { // a second push finds every blob and only re-puts manifests
		if err := PushImages(t.Context(), addr, tree); err != nil {
			t.Fatalf("push %d: %v", i+1, err)
		}
	}
	c := &registryClient{base: "http://" + addr, http: http.DefaultClient}
	for _, img := range tree.Images {
		m, digest, err := c.getManifest(t.Context(), img.Ref)
		if err != nil {
			t.Fatalf("read back %s: %v", img.Ref, err)
		}
		archive, err := readDockerArchive(img.Archive)
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.Digest != digestOf(archive.Config) || len(m.Layers) != len(archive.Layers) || digest == "" {
			t.Errorf("%s: manifest %+v (digest %q) does not match its archive", img.Ref, m, digest)
		}
		repo, _, _ := splitRef(img.Ref)
		resp, err := http.Get(fmt.Sprintf("http://%s/v2/%s/blobs/%s", addr, repo, m.Layers[0].Digest))
		if err != nil {
			t.Fatal(err)
		}
		blob, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if digestOf(blob) != m.Layers[0].Digest {
			t.Errorf("%s: layer blob digest %s, manifest says %s", img.Ref, digestOf(blob), m.Layers[0].Digest)
		}
	}
	// docker's registry-mirrors only ask for Docker Hub names: library/hello must be there.
	if _, _, err := c.getManifest(t.Context(), "library/hello:latest"); err != nil {
		t.Errorf("library/hello:latest is not in the registry: %v", err)
	}
}
