package mirror

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startContainerd runs the containerd that containerd.io carries (Debian's)
// with every path in a temporary folder and the CRI plugin on, as kprep
// configures it, and returns its socket.
func startContainerd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(labCacheDir(), "debian")
	matches, _ := filepath.Glob(filepath.Join(bin, "*", "root", "usr", "bin", "containerd"))
	if len(matches) != 1 {
		t.Fatalf("want one containerd in the Debian payload, found %v", matches)
	}
	dir, err := os.MkdirTemp("", "lab-containerd-") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "192.168.77.1:5000/google_containers/pause:3.10"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = true
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, filepath.Join(dir, "t.sock"), filepath.Join(dir, "opt"))
	conf := filepath.Join(dir, "config.toml")
	if err := writeFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(matches[0], "--config", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // our own child, by its pid
		cmd.Wait()
	})
	ctr := filepath.Join(filepath.Dir(matches[0]), "ctr")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := exec.Command(ctr, "--address", sock, "version").Run(); err == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not come up:\n%s", out.String())
		}
	}
}

func TestLabImagesImportIntoContainerdAndLabCrictlSeesThem(t *testing.T) {
	tree := labTree(t)
	if os.Geteuid() != 0 {
		t.Skip("containerd needs root")
	}
	sock := startContainerd(t)
	ctrs, _ := filepath.Glob(filepath.Join(labCacheDir(), "debian", "*", "root", "usr", "bin", "ctr"))
	for _, img := range tree.Images {
		mustRun(t, ctrs[0], "--address", sock, "-n", "k8s.io", "images", "import", img.Archive)
	}
	crictl := filepath.Join(tree.BinDir, "lab-crictl")
	var images []imageRowJSON
	if err := json.Unmarshal([]byte(mustRun(t, crictl, "-r", sock, "images", "-o", "json")), &images); err != nil {
		t.Fatal(err)
	}
	tags := map[string]bool{}
	for _, im := range images {
		for _, tag := range im.RepoTags {
			tags[tag] = true
		}
	}
	for _, img := range tree.Images {
		for _, tag := range img.Tags {
			if !strings.Contains(tag, "/") {
				tag = "docker.io/library/" + tag // how containerd names Docker Hub images
			}
			if !tags[tag] {
				t.Errorf("containerd does not list %s after import; it has %v", tag, tags)
			}
		}
	}
	var info struct {
		Conditions []struct {
			Type   string
			Status bool
		}
		SystemdCgroup map[string]bool
		SandboxImage  string
	}
	if err := json.Unmarshal([]byte(mustRun(t, crictl, "-r", sock, "info")), &info); err != nil {
		t.Fatal(err)
	}
	if !info.SystemdCgroup["runc"] || info.SandboxImage != "192.168.77.1:5000/google_containers/pause:3.10" {
		t.Errorf("lab-crictl info: systemdCgroup %v sandboxImage %q", info.SystemdCgroup, info.SandboxImage)
	}
	if v := mustRun(t, crictl, "-r", sock, "version"); !strings.Contains(v, "RuntimeName:  containerd") {
		t.Errorf("lab-crictl version:\n%s", v)
	}
	if ps := mustRun(t, crictl, "-r", sock, "ps", "-a", "-o", "json"); strings.TrimSpace(ps) != "[]" {
		t.Errorf("lab-crictl ps on a fresh containerd = %s, want []", ps)
	}
}

// imageRowJSON is a row of `lab-crictl images -o json`.
type imageRowJSON struct {
	RepoTags []string `json:"repoTags"`
}
