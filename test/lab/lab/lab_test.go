package lab

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/test/lab/instance"
	"github.com/kprep/kprep/test/lab/mirror"
)

func TestInventoryLoadsWithKprepsOwnLoader(t *testing.T) {
	// Instance 0 has the addresses the lab had before instances; another
	// instance has its own subnet, mirror and registry throughout.
	for _, c := range []struct {
		id       instance.ID
		net      string
		mirror   string
		registry string
	}{
		{0, "192.168.77.", "http://192.168.77.1:8080", "192.168.77.1:5000"},
		{3, "192.168.80.", "http://192.168.80.1:8080", "192.168.80.1:5000"},
	} {
		t.Run(c.id.String(), func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{keyFileName, knownHostsFileName} {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			o, err := Options{Instance: &c.id, Hosts: 4, OS: []string{"centos7", "rocky9", "openeuler22", "ubuntu22"}, StateDir: dir}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			path, err := writeInventory(c.id, dir, planHosts(o))
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			if strings.Contains(string(data), "password:") {
				t.Errorf("the inventory holds a password field:\n%s", data)
			}
			cl, err := inventory.LoadWith(path, inventory.Options{
				LookupEnv: func(name string) (string, bool) { return "set", name == SudoPasswordEnv },
			})
			if err != nil {
				t.Fatalf("kprep rejects the lab's inventory: %v\n%s", err, data)
			}
			type row struct{ Name, Address, User, SudoEnv, Roles string }
			var got []row
			for _, h := range cl.Hosts {
				got = append(got, row{h.Name, h.Address, h.Connection.User, h.Connection.SudoPasswordEnv, strings.Join(h.Roles, ",")})
			}
			want := []row{
				{"lab1", c.net + "11", "root", "", "control-plane"},
				{"lab2", c.net + "12", "kprep", "", "worker"},
				{"lab3", c.net + "13", "kprep", SudoPasswordEnv, "worker"},
				{"lab4", c.net + "14", "root", "", "worker"},
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("hosts (-want +got):\n%s", d)
			}
			if cl.Docker.Version != DockerVersion || cl.Docker.Repo != c.mirror+"/docker-ce" ||
				cl.Kubernetes.Repo != c.mirror+"/kubernetes-new/core/stable" ||
				cl.Kubernetes.ImageRepository != c.registry+"/google_containers" ||
				!slices.Equal(cl.Docker.InsecureRegistries, []string{c.registry}) {
				t.Errorf("docker/kubernetes sections: %+v %+v", cl.Docker, cl.Kubernetes)
			}
			if cl.SSH.HostKeyPolicy != "accept-new" || cl.SSH.KnownHostsFile != filepath.Join(dir, knownHostsFileName) {
				t.Errorf("ssh defaults: %+v", cl.SSH)
			}
		})
	}
}

func TestSudoersByHost(t *testing.T) {
	o, _ := Options{Hosts: 4}.withDefaults()
	hosts := planHosts(o)
	for i, want := range []string{"no sudo", "NOPASSWD: ALL", "kprep ALL=(ALL:ALL) ALL", "no sudo"} {
		if got := sudoersFor(hosts[i]); !strings.Contains(got, want) {
			t.Errorf("%s sudoers %q, want it to contain %q", hosts[i].Name, got, want)
		}
	}
}

func TestMountPointsUnderADirDeepestFirst(t *testing.T) {
	info := `22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
90 22 0:50 / /var/lib/kprep-lab/hosts/lab1/root rw - overlay overlay rw
91 90 0:51 / /var/lib/kprep-lab/hosts/lab1/root/proc rw - proc proc rw
92 22 0:52 / /var/lib/kprep-lab\040x/hosts/lab2/root rw - overlay overlay rw
93 22 0:53 / /var/lib/kprep-lab-other rw - tmpfs tmpfs rw
`
	got := mountPoints(info, "/var/lib/kprep-lab")
	want := []string{"/var/lib/kprep-lab/hosts/lab1/root/proc", "/var/lib/kprep-lab/hosts/lab1/root"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := mountPoints(info, "/var/lib/kprep-lab x"); len(got) != 1 || got[0] != "/var/lib/kprep-lab x/hosts/lab2/root" {
		t.Errorf("escaped space: %q", got)
	}
}

func TestIsLabProcess(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"systemd-nspawn", "--boot", "--directory=/var/lib/kprep-lab/hosts/lab1/root"}, true},
		{[]string{"/usr/bin/docker-registry", "serve", "/var/lib/kprep-lab/registry/config.yml"}, true},
		{[]string{"/tmp/go-build1/e2e.test", helperArg, "--state", "/var/lib/kprep-lab", "--root", "/var/cache/x"}, true},
		// A lab with another state folder whose name starts the same.
		{[]string{"systemd-nspawn", "--directory=/var/lib/kprep-lab-e2e/hosts/lab1/root"}, false},
		// Someone reading a log of the lab is not the lab.
		{[]string{"tail", "-f", "/var/lib/kprep-lab/hosts/lab1/console.log"}, false},
		// Another lab's nspawn is not this one's.
		{[]string{"systemd-nspawn", "--directory=/srv/other/root"}, false},
	} {
		if got := isLabProcess(c.args, "/var/lib/kprep-lab/"); got != c.want {
			t.Errorf("isLabProcess(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

// osRelease parses an os-release file into its fields.
func osRelease(t *testing.T, personality string) map[string]string {
	t.Helper()
	b, err := fs.ReadFile(hostFiles, "files/"+personality+"/usr/lib/os-release")
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			fields[k] = strings.Trim(v, `"`)
		}
	}
	return fields
}

func TestPersonalities(t *testing.T) {
	want := map[string][2]string{
		"centos7":     {"centos", "7"},
		"rocky9":      {"rocky", "9.4"},
		"openeuler22": {"openEuler", "22.03"},
		"ubuntu22":    {"ubuntu", "22.04"},
	}
	for _, name := range PersonalityNames() {
		p, _ := lookupPersonality(name)
		t.Run(name, func(t *testing.T) {
			rel := osRelease(t, name)
			if w := want[name]; rel["ID"] != w[0] || rel["VERSION_ID"] != w[1] || rel["PRETTY_NAME"] == "" {
				t.Errorf("os-release ID=%q VERSION_ID=%q PRETTY_NAME=%q, want %v", rel["ID"], rel["VERSION_ID"], rel["PRETTY_NAME"], w)
			}
			fstab, err := fs.ReadFile(hostFiles, "files/"+name+"/etc/fstab")
			if err != nil {
				t.Fatal(err)
			}
			devices, _ := fs.ReadFile(hostFiles, "files/"+name+"/usr/lib/lab-kernel/swap-devices")
			var active, mentions int
			for _, line := range strings.Split(string(fstab), "\n") {
				f := strings.Fields(line)
				if len(f) >= 3 && !strings.HasPrefix(f[0], "#") && f[2] == "swap" {
					active++
					if !strings.Contains(string(devices), f[0]+"\t") {
						t.Errorf("fstab swap %s is not among the host's swap devices", f[0])
					}
				} else if strings.Contains(line, "swap") {
					mentions++
				}
			}
			if active != 1 || mentions == 0 {
				t.Errorf("fstab has %d active swap lines (want 1) and %d lines that merely mention swap (want some)", active, mentions)
			}
			if p.Family != "el" {
				return
			}
			cfg, err := fs.ReadFile(hostFiles, "files/"+name+"/etc/selinux/config")
			if err != nil || !strings.Contains(string(cfg), "\nSELINUX=enforcing\n") {
				t.Errorf("selinux config: %v\n%s", err, cfg)
			}
			if p.Symlinks["/etc/sysconfig/selinux"] != "../selinux/config" {
				t.Errorf("/etc/sysconfig/selinux is not a link to ../selinux/config")
			}
			stubs, err := parseRPMDB(p.RPMDB)
			if err != nil {
				t.Fatal(err)
			}
			var releasever, sh bool
			for _, s := range stubs {
				for _, pr := range s.Provides {
					releasever = releasever || strings.HasPrefix(pr, "system-release(releasever) = ")
					sh = sh || pr == "/bin/sh"
				}
			}
			if !releasever || !sh {
				t.Errorf("rpm database: system-release(releasever) provided %v, /bin/sh provided %v", releasever, sh)
			}
		})
	}
}

func TestOptionsRejectUnknownOS(t *testing.T) {
	_, err := Options{OS: []string{"centos7", "gentoo"}}.withDefaults()
	if err == nil || !strings.Contains(err.Error(), `unknown OS "gentoo"`) || !strings.Contains(err.Error(), "ubuntu22") {
		t.Errorf("err = %v", err)
	}
	if _, err := (Options{Hosts: MaxHosts + 1}).withDefaults(); err == nil {
		t.Error("no error for too many hosts")
	}
}

// The lab's inventory pins starter.DockerVersion (what `kprep init` offers);
// the mirror must serve it with real programs, in every tree.
func TestInventoryPinsADockerVersionTheMirrorServes(t *testing.T) {
	if !slices.Contains(mirror.DockerReleases, DockerVersion) || !slices.Contains(mirror.UbuntuDockerVersions, DockerVersion) {
		t.Fatalf("the lab inventory pins docker-ce %s (provision/starter.DockerVersion), which the mirror does not serve: it has %v, each with the dockerd of its version; set starter.DockerVersion to the newest",
			DockerVersion, mirror.DockerReleases)
	}
	for _, tr := range mirror.DockerYumTrees {
		if !slices.Contains(tr.Versions, DockerVersion) {
			t.Errorf("%s lacks docker-ce %s, which the lab inventory pins", tr.Path, DockerVersion)
		}
	}
}

// Each root file system's one-shot container has a name of its own: two
// hosts' "root" folders must not share nspawn's per-machine state.
func TestImageMachineNamesDiffer(t *testing.T) {
	a, b := imageMachineName("/var/lib/kprep-lab/hosts/lab1/root"), imageMachineName("/var/lib/kprep-lab/hosts/lab2/root")
	if a == b || len(a) > 64 || !strings.HasPrefix(a, "kprep-image-") {
		t.Errorf("machine names %q and %q", a, b)
	}
}
