package mirror

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// payloadProgram returns a program of a cached Debian payload ("trixie",
// "/usr/bin/containerd") built for this machine: the cache also holds the
// arm64 payloads once a lab with an aarch64 VM host has been up.
func payloadProgram(t *testing.T, set, path string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(labCacheDir(), "debian", set+"-*", "root", path))
	var native []string
	for _, m := range matches {
		if f, err := elf.Open(m); err == nil {
			if f.Machine == nativeMachine() {
				native = append(native, m)
			}
			f.Close()
		}
	}
	if len(native) != 1 {
		t.Fatalf("want one %s for %s in the %s payload, found %v among %v", path, runtime.GOARCH, set, native, matches)
	}
	return native[0]
}

// nativeMachine is this machine's ELF machine.
func nativeMachine() elf.Machine {
	if runtime.GOARCH == "arm64" {
		return elf.EM_AARCH64
	}
	return elf.EM_X86_64
}

// startContainerd runs a containerd that containerd.io carries (the
// Debian set's) with every path in a temporary folder and the CRI plugin
// on, as kprep configures it, the lab registry at registry reached over
// plain HTTP through a hosts.toml; it returns the socket.
func startContainerd(t *testing.T, set, registry string) string {
	t.Helper()
	bin := payloadProgram(t, set, "/usr/bin/containerd")
	dir, err := os.MkdirTemp("", "lab-containerd-") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	hosts := fmt.Sprintf("server = %q\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+registry, "http://"+registry)
	if err := writeFile(filepath.Join(dir, "certs.d", registry, "hosts.toml"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
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
  sandbox_image = "%[7]s/google_containers/pause:3.10.1"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = true
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %[6]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, filepath.Join(dir, "t.sock"), filepath.Join(dir, "opt"),
		filepath.Join(dir, "certs.d"), registry)
	conf := filepath.Join(dir, "config.toml")
	if err := writeFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "--config", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // our own child, by its pid
		cmd.Wait()
	})
	ctr := filepath.Join(filepath.Dir(bin), "ctr")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := exec.Command(ctr, "--address", sock, "version").Run(); err == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not come up:\n%s", out.String())
		}
	}
}

// TestLabCRIPullsEveryImage pulls every image of the lab registry through
// the CRI (lab-crictl, as the kubelet pulls) with both containerd versions
// containerd.io carries, and checks what lab-crictl then reports.
func TestLabCRIPullsEveryImage(t *testing.T) {
	tree := labTree(t)
	if os.Geteuid() != 0 {
		t.Skip("containerd needs root")
	}
	addr := pushedRegistry(t, tree)
	crictl := filepath.Join(tree.BinDir, "lab-crictl")
	for _, c := range ContainerdReleases {
		t.Run("containerd-"+c.Version, func(t *testing.T) {
			sock := startContainerd(t, c.Debian, addr)
			if v := mustRun(t, crictl, "-r", sock, "version"); !strings.Contains(v, "RuntimeName:  containerd") || !strings.Contains(v, "RuntimeVersion:  "+c.Version) {
				t.Errorf("lab-crictl version:\n%s", v)
			}
			var want []string
			for _, img := range tree.Images {
				for _, ref := range img.Refs(addr) {
					start := time.Now()
					mustRun(t, crictl, "-r", sock, "-timeout", "5m", "pull", ref)
					t.Logf("pulled %s in %s", ref, time.Since(start).Round(time.Millisecond))
					want = append(want, ref)
				}
			}
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
			for _, ref := range want {
				if !tags[ref] {
					t.Errorf("containerd does not list %s after the pull; it has %v", ref, tags)
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
			if !info.SystemdCgroup["runc"] || info.SandboxImage != addr+"/google_containers/pause:3.10.1" {
				t.Errorf("lab-crictl info: systemdCgroup %v sandboxImage %q", info.SystemdCgroup, info.SandboxImage)
			}
			if ps := mustRun(t, crictl, "-r", sock, "ps", "-a", "-o", "json"); strings.TrimSpace(ps) != "[]" {
				t.Errorf("lab-crictl ps on a fresh containerd = %s, want []", ps)
			}
		})
	}
}

// imageRowJSON is a row of `lab-crictl images -o json`.
type imageRowJSON struct {
	RepoTags []string `json:"repoTags"`
}
