package runtime

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/steptest"
)

// containerdState is the probe output for a config file and containerd.
func containerdState(config, version, defaults string) string {
	s := "file config -\n"
	if config != "" {
		s = fileRecord("config", config)
	}
	s += "version_containerd=" + version + "\n"
	if defaults != "" {
		s += fileRecord("default", defaults)
	}
	return s
}

const (
	containerd16 = "containerd containerd.io 1.6.33 d2d58213f83a351ca8f528a95fbd145f5654e957"
	containerd20 = "containerd github.com/containerd/containerd/v2 v2.0.0 207ad711eabd375a01713109a8a197d197ff6542"
)

func TestContainerdStockConfigIsRegenerated(t *testing.T) {
	c := labCluster()
	state := containerdState(readTestdata(t, "containerd.io-stock.toml"), containerd16, readTestdata(t, "containerd-1.6-default.toml"))
	changes := mustDiff(t, ContainerdStep{}, input(c, rocky9, state))
	if len(changes) != 1 {
		t.Fatalf("changes: %v", summariesOf(changes))
	}
	want := "/etc/containerd/config.toml: containerd.io's stock file, which disables the CRI plugin Kubernetes needs: replaced by `containerd config default` with the settings below; " +
		"the sandbox image is registry.k8s.io/pause:3.6, want 192.168.77.1:5000/google_containers/pause:3.10.1; " +
		"registry.config_path is not set, want /etc/containerd/certs.d (where kprep writes the CRI's mirrors and insecure registries); " +
		"runc's SystemdCgroup is not true (kubelet uses the systemd cgroup driver)"
	if changes[0].Summary != want {
		t.Errorf("summary:\n%s\nwant\n%s", changes[0].Summary, want)
	}
	content := changes[0].Data
	m, err := parseContainerdConfig(content)
	if err != nil {
		t.Fatal(err)
	}
	if v := lookup(m, []string{"plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc", "options", "SystemdCgroup"}); v != true {
		t.Errorf("SystemdCgroup = %v", v)
	}
	if v := lookup(m, []string{"plugins", "io.containerd.grpc.v1.cri", "sandbox_image"}); v != "192.168.77.1:5000/google_containers/pause:3.10.1" {
		t.Errorf("sandbox_image = %v", v)
	}
	if v := lookup(m, []string{"plugins", "io.containerd.gc.v1.scheduler", "pause_threshold"}); v != 0.02 {
		t.Errorf("a default value changed on the way: pause_threshold = %v", v)
	}
	// The file written, read back: converged, and the bytes are stable.
	again := mustDiff(t, ContainerdStep{}, input(c, rocky9, containerdState(string(content), containerd16, readTestdata(t, "containerd-1.6-default.toml"))))
	if len(again) != 0 {
		t.Errorf("rerun: %v", summariesOf(again))
	}
	if string(encodeContainerdConfig(m)) != string(content) {
		t.Error("encoding the same config twice gave different bytes")
	}
}

func TestContainerd2UsesVersion3Tables(t *testing.T) {
	c := labCluster()
	state := containerdState("", containerd20, readTestdata(t, "containerd-2.0-default.toml"))
	changes := mustDiff(t, ContainerdStep{}, input(c, rocky9, state))
	m, err := parseContainerdConfig(changes[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if v := lookup(m, []string{"plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox"}); v != "192.168.77.1:5000/google_containers/pause:3.10.1" {
		t.Errorf("pinned sandbox = %v", v)
	}
	if v := lookup(m, []string{"plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc", "options", "SystemdCgroup"}); v != true {
		t.Errorf("SystemdCgroup = %v", v)
	}
	if lookup(m, []string{"plugins", "io.containerd.grpc.v1.cri", "sandbox_image"}) != nil {
		t.Error("a version 2 key was written into a version 3 config")
	}
	if configVersion(m) != 3 {
		t.Errorf("version %d", configVersion(m))
	}
}

func TestContainerdUserConfigKeepsItsKeys(t *testing.T) {
	c := labCluster()
	user := `version = 2
root = "/data/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.zfs"]

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
`
	changes := mustDiff(t, ContainerdStep{}, input(c, rocky9, containerdState(user, containerd16, "")))
	want := []string{"/etc/containerd/config.toml: disabled_plugins switches off io.containerd.grpc.v1.cri; " +
		"the sandbox image is not set, want 192.168.77.1:5000/google_containers/pause:3.10.1; the CRI's cni.bin_dir is not set, want /opt/cni/bin; the CRI's cni.conf_dir is not set, want /etc/cni/net.d; no runc runtime is defined; " +
		"runc's SystemdCgroup is not true (kubelet uses the systemd cgroup driver)"}
	if diff := cmp.Diff(want, summariesOf(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	m, _ := parseContainerdConfig(changes[0].Data)
	if m["root"] != "/data/containerd" || lookup(m, []string{"plugins", "io.containerd.grpc.v1.cri", "registry", "config_path"}) != "/etc/containerd/certs.d" {
		t.Errorf("user keys lost:\n%s", changes[0].Data)
	}
	if diff := cmp.Diff([]any{"io.containerd.snapshotter.v1.zfs"}, m["disabled_plugins"]); diff != "" {
		t.Errorf("disabled_plugins (-want +got):\n%s", diff)
	}
	if v := lookup(m, []string{"plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc", "runtime_type"}); v != "io.containerd.runc.v2" {
		t.Errorf("runtime_type %v", v)
	}
}

func TestContainerdEdgeCases(t *testing.T) {
	c := labCluster()
	// A plan on a host without containerd yet.
	changes := mustDiff(t, ContainerdStep{}, input(c, rocky9, "file config -\nversion_containerd=\n"))
	if len(changes) != 1 || changes[0].Data != nil || !strings.Contains(changes[0].Summary, "not installed yet") {
		t.Errorf("not installed: %+v", changes)
	}
	if err := (ContainerdStep{}).Apply(context.Background(), (&steptest.FakeHost{}).Target(&c.Hosts[0]), input(c, rocky9, ""), changes); err == nil {
		t.Error("Apply without containerd succeeded")
	}
	// Broken TOML is left alone, with its place.
	_, err := (ContainerdStep{}).Diff(input(c, rocky9, containerdState("version = 2\n[plugins\n", containerd16, "")))
	if err == nil || !strings.Contains(err.Error(), "is not valid TOML (line 2") {
		t.Errorf("broken TOML: %v", err)
	}
	// A version 3 file on containerd 1.x is regenerated for 1.x.
	changes = mustDiff(t, ContainerdStep{}, input(c, rocky9, containerdState(readTestdata(t, "containerd-2.0-default.toml"), containerd16, readTestdata(t, "containerd-1.6-default.toml"))))
	if !strings.Contains(changes[0].Summary, "version 3, which containerd 1.x cannot read") {
		t.Errorf("v3 on 1.x: %s", changes[0].Summary)
	}
	for out, want := range map[string]int{containerd16: 1, containerd20: 2, "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3": 1, "": 0} {
		if got := containerdMajor(out); got != want {
			t.Errorf("containerdMajor(%q) = %d, want %d", out, got, want)
		}
	}
}

// The config kprep writes is loaded by a real containerd, where one is
// installed (the lab's image cache has Debian's).
func TestContainerdReadsTheConfig(t *testing.T) {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		matches, _ := filepath.Glob("/var/cache/kprep-lab/debian/*/root/usr/bin/containerd")
		if len(matches) == 0 {
			t.Skip("no containerd binary on this machine")
		}
		bin = matches[0]
	}
	c := labCluster()
	state := containerdState(readTestdata(t, "containerd.io-stock.toml"), containerd16, readTestdata(t, "containerd-1.6-default.toml"))
	content := mustDiff(t, ContainerdStep{}, input(c, rocky9, state))[0].Data
	path := filepath.Join(t.TempDir(), "config.toml")
	runSh(t, "cat > "+path+" <<'EOF'\n"+string(content)+"EOF")
	out := runSh(t, bin+" --config "+path+" config dump")
	for _, want := range []string{"SystemdCgroup = true", `sandbox_image = "192.168.77.1:5000/google_containers/pause:3.10.1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("containerd config dump lacks %q", want)
		}
	}
}

// kubernetes.containerd.restrictOOMScoreAdj lands where each config
// version keeps it, and a config that has it as asked is left alone.
func TestContainerdRestrictOOMScoreAdj(t *testing.T) {
	for _, version := range []int64{2, 3} {
		cur := map[string]any{"version": version}
		want, reasons, err := wantContainerdConfig(cur, true, nil, int(version)-1, criSettings{Sandbox: "p:1", RestrictOOMScoreAdj: true})
		if err != nil {
			t.Fatal(err)
		}
		keys := criKeysFor(version)
		if got, _ := lookup(want, keys.oomAdj).(bool); !got {
			t.Errorf("version %d: restrict_oom_score_adj not set: %v", version, want)
		}
		if !strings.Contains(strings.Join(reasons, "; "), "restrict_oom_score_adj is false, want true") {
			t.Errorf("version %d: reasons %q", version, reasons)
		}
		_, again, _ := wantContainerdConfig(want, true, nil, int(version)-1, criSettings{Sandbox: "p:1", RestrictOOMScoreAdj: true})
		if len(again) != 0 {
			t.Errorf("version %d: converged config still differs: %q", version, again)
		}
	}
}

// The probe asks containerd for its default config only when config.toml
// cannot be the base: the default costs a Go process on every probe of a
// converged host otherwise. Run under a real sh with a stand-in containerd
// that prints the version it is told to, and counts its default calls.
func TestContainerdProbeReadsTheDefaultOnlyWhenNeeded(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.toml")
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := "#!/bin/sh\ncase \"$*\" in\n--version) echo \"containerd containerd.io $FAKE_VERSION abc\" ;;\n'config default') echo 'version = 2' ;;\nesac\n"
	if err := os.WriteFile(filepath.Join(bin, "containerd"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	probe := strings.ReplaceAll(ContainerdStep{}.Probe(nil, nil), containerdConfigPath, config)
	for _, c := range []struct {
		name, config, version string
		wantDefault           bool
	}{
		{"missing", "", "1.7.27", true},
		{"stock file, no version", "disabled_plugins = [\"cri\"]\n", "1.7.27", true},
		{"version 1", "[plugins.cri]\n", "1.7.27", true},
		{"version 2", "version = 2\n[plugins]\n", "1.7.27", false},
		{"version 2, spaces and a comment", "  version=2 # kprep\n", "1.7.27", false},
		{"version 2 after a comment line", "# mine\nroot = \"/var/lib/containerd\"\nversion = 2\n", "1.7.27", false},
		{"version inside a table only", "[plugins.x]\nversion = 2\n", "1.7.27", true},
		{"another key that starts with version", "versions = 2\n", "1.7.27", true},
		{"version 2, tab, no final newline", "\tversion\t= 2", "1.7.27", false},
		{"version 3 under containerd 1", "version = 3\n", "1.7.27", true},
		{"version 3 under containerd 2", "version = 3\n", "v2.1.4", false},
		{"version 3 under containerd 2, no v", "version = 3\n", "2.0.5", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(config)
			if c.config != "" {
				if err := os.WriteFile(config, []byte(c.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("sh", "-c", probe)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "FAKE_VERSION="+c.version)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			st, err := shell.Parse(string(out))
			if err != nil {
				t.Fatal(err)
			}
			d, got := st.File("default")
			if got != c.wantDefault {
				t.Fatalf("default read = %v, want %v\n%s", got, c.wantDefault, out)
			}
			if got && string(d) != "version = 2\n" {
				t.Errorf("default = %q", d)
			}
			// What the probe printed is always enough for the diff: the
			// default is there whenever the file cannot be the base.
			if _, err := (ContainerdStep{}).Diff(input(labCluster(), rocky9, string(out))); err != nil {
				t.Errorf("diff: %v", err)
			}
		})
	}
}
