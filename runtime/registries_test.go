package runtime

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pelletier/go-toml/v2"

	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/shell"
)

func TestRegistryFiles(t *testing.T) {
	c := labCluster()
	c.Docker.RegistryMirrors = []string{"https://mirror.example.com/", "http://192.168.77.1:5000"}
	c.Docker.InsecureRegistries = []string{"192.168.77.1:5000", "10.0.0.5:5000"}
	files, err := wantRegistryFiles(c)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.0.0.5:5000", "192.168.77.1:5000", "docker.io"}, slices.Sorted(maps.Keys(files))); diff != "" {
		t.Fatalf("registries (-want +got):\n%s", diff)
	}
	hub := files["docker.io"]
	// containerd tries hosts in the order written: the mirrors, in the
	// inventory's order, before Docker Hub.
	if i, j := strings.Index(hub, `[host."https://mirror.example.com"]`), strings.Index(hub, `[host."http://192.168.77.1:5000"]`); i < 0 || j < i {
		t.Errorf("docker.io hosts.toml:\n%s", hub)
	}
	var parsed struct {
		Server string
		Host   map[string]struct {
			Capabilities []string
			SkipVerify   bool `toml:"skip_verify"`
		}
	}
	if err := toml.Unmarshal([]byte(files["10.0.0.5:5000"]), &parsed); err != nil {
		t.Fatal(err)
	}
	if parsed.Server != "https://10.0.0.5:5000" || !parsed.Host["https://10.0.0.5:5000"].SkipVerify ||
		!cmp.Equal(parsed.Host["http://10.0.0.5:5000"].Capabilities, []string{"pull", "resolve"}) {
		t.Errorf("insecure registry hosts.toml: %+v\n%s", parsed, files["10.0.0.5:5000"])
	}
	if https, http := strings.Index(files["10.0.0.5:5000"], `"https://10.0.0.5:5000"]`), strings.Index(files["10.0.0.5:5000"], `"http://10.0.0.5:5000"]`); https > http {
		t.Errorf("HTTPS must be tried before plain HTTP, as dockerd does:\n%s", files["10.0.0.5:5000"])
	}
}

func TestRegistriesDiff(t *testing.T) {
	c := labCluster()
	c.Docker.RegistryMirrors = []string{"http://192.168.77.1:5000"}
	c.Docker.InsecureRegistries = []string{"192.168.77.1:5000"}
	want, err := wantRegistryFiles(c)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, state string
		want        []string
	}{
		{"fresh", "", []string{
			"/etc/containerd/certs.d/192.168.77.1:5000/hosts.toml is missing",
			"/etc/containerd/certs.d/docker.io/hosts.toml is missing",
		}},
		{"converged, plus a file of the user's", fileRecord("hosts:192.168.77.1:5000", want["192.168.77.1:5000"]) +
			fileRecord("hosts:docker.io", want["docker.io"]) + fileRecord("hosts:quay.io", "server = \"https://quay.io\"\n"), nil},
		{"edited by hand, and a registry the inventory dropped", fileRecord("hosts:192.168.77.1:5000", want["192.168.77.1:5000"]+"# mine\n") +
			fileRecord("hosts:docker.io", want["docker.io"]) + fileRecord("hosts:10.9.9.9:5000", hostfile.Marker+" old\n"), []string{
			"/etc/containerd/certs.d/192.168.77.1:5000/hosts.toml differs from what it should hold",
			"/etc/containerd/certs.d/10.9.9.9:5000/hosts.toml is kprep's, but the inventory no longer names 10.9.9.9:5000",
		}},
		{"the user's own file for a registry kprep configures", fileRecord("hosts:192.168.77.1:5000", want["192.168.77.1:5000"]) +
			fileRecord("hosts:docker.io", "server = \"https://registry-1.docker.io\"\n"), []string{
			"/etc/containerd/certs.d/docker.io/hosts.toml was not written by kprep and differs from what it should hold (it is backed up before kprep replaces it)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes := mustDiff(t, RegistriesStep{}, input(c, rocky9, tt.state))
			if diff := cmp.Diff(tt.want, summariesOf(changes)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigPathLeftAloneBesideInlineMirrors(t *testing.T) {
	cur, err := parseContainerdConfig([]byte(`version = 2
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
  endpoint = ["https://mirror.example.com"]
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s/pause:3.10.1"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/opt/cni/bin"
  conf_dir = "/etc/cni/net.d"
`))
	if err != nil {
		t.Fatal(err)
	}
	_, reasons, err := wantContainerdConfig(cur, true, nil, 1, criSettings{Sandbox: "k8s/pause:3.10.1"})
	if err != nil || len(reasons) != 0 {
		t.Errorf("a config with inline mirrors got %v, %v; containerd refuses config_path beside them", reasons, err)
	}
}

// The probe reads the registries kprep manages through the batched files
// and any other hosts.toml on its own; both come back as "hosts:" files.
func TestRegistriesProbeReadsManagedAndOtherFiles(t *testing.T) {
	c := labCluster()
	c.Docker.RegistryMirrors = []string{"http://192.168.77.1:5000"}
	c.Docker.InsecureRegistries = []string{"192.168.77.1:5000", "10.0.0.5:5000"}
	if diff := cmp.Diff([]string{"10.0.0.5:5000", "192.168.77.1:5000", "docker.io"}, managedRegistries(c)); diff != "" {
		t.Fatalf("managed registries (-want +got):\n%s", diff)
	}
	// An insecure Docker Hub without mirrors gets no hosts.toml.
	alone := labCluster()
	alone.Docker.RegistryMirrors, alone.Docker.InsecureRegistries = nil, []string{"docker.io", "10.0.0.5:5000"}
	if got := managedRegistries(alone); !cmp.Equal(got, []string{"10.0.0.5:5000"}) {
		t.Errorf("managed registries without mirrors: %q", got)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"docker.io": "hub", "old.example:5000": "old"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "hosts.toml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := runSh(t, registriesProbe(dir, managedRegistries(c)))
	if n := strings.Count(out, "file hosts:docker.io "); n != 1 {
		t.Errorf("docker.io's file printed %d times, want once:\n%s", n, out)
	}
	st, err := shell.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	for label, wantContent := range map[string]string{"hosts:docker.io": "hub", "hosts:old.example:5000": "old", "hosts:10.0.0.5:5000": "", "hosts:192.168.77.1:5000": ""} {
		got, exists := st.File(label)
		if string(got) != wantContent || exists != (wantContent != "") {
			t.Errorf("%s: %q (exists %v), want %q", label, got, exists, wantContent)
		}
	}
}
