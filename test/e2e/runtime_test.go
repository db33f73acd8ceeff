package e2e

// End-to-end tests of the runtime phase on the lab's hosts: Docker CE from
// the lab's mirror, daemon.json, the proxy drop-ins and containerd's CRI,
// checked from inside the hosts (lab Exec, not kprep's own SSH) with the
// real dockerd, containerd and a CRI client. Each test boots a lab of its
// own; they need root and KPREP_E2E=1.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kprep/kprep/test/lab/lab"
)

// TestRuntimeFreshHosts installs Docker CE on fresh CentOS 7, Rocky 9 and
// Ubuntu 22.04 hosts, checks every setting took effect in the running
// daemons, pulls through the lab's mirror and insecure registry, and shows
// that a rerun changes and restarts nothing.
func TestRuntimeFreshHosts(t *testing.T) {
	l := bootLab(t, "rocky9", "ubuntu22", "centos7")
	inv := labInventory(t, l, func(docker map[string]any) {
		// A proxy that is not there: pulls from the lab must bypass it.
		docker["proxy"] = map[string]any{
			"http": "http://" + l.BridgeAddr() + ":3128", "https": "http://" + l.BridgeAddr() + ":3128",
			"noProxy": []string{l.BridgeAddr()},
		}
	})

	// Packages in Docker CE's way, as a distribution would have them.
	rtInstallRPM(t, l, "lab1", rtFakeRPM(t, "podman", "4.9.4", "1.el9"))
	rtInstallRPM(t, l, "lab1", rtFakeRPM(t, "runc", "1.1.12", "1.el9"))
	rtInstallDeb(t, l, "lab2", rtFakeDeb(t, "docker.io", "24.0.7-0ubuntu2~22.04.1"))

	start := time.Now()
	rep := runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep", "--phase", "runtime")
	t.Logf("fresh apply on %d hosts: %s", len(l.Hosts()), time.Since(start).Round(time.Millisecond))
	rep.requireNoFailures(t)
	conflicts := map[string]string{
		"lab1": "installed, and in Docker CE's way: podman 4.9.4-1.el9, runc 1.1.12-1.el9",
		"lab2": "installed, and in Docker CE's way: docker.io 24.0.7-0ubuntu2~22.04.1",
	}
	for _, h := range l.Hosts() {
		s := rep.step(t, h.Name, "runtime/conflicts")
		want, has := conflicts[h.Name]
		switch {
		case has && (s.Status != "changed" || len(s.Changes) != 1 || s.Changes[0].Summary != want):
			t.Errorf("%s runtime/conflicts: %s %+v, want %q", h.Name, s.Status, s.Changes, want)
		case !has && s.Status != "unchanged":
			t.Errorf("%s runtime/conflicts: %s %+v", h.Name, s.Status, s.Changes)
		}
	}
	if out, err := hostShErr(l, "lab1", "rpm -q podman runc"); err == nil {
		t.Errorf("conflicting packages still installed: %s", out)
	}
	if base := hostSh(t, l, "lab3", "grep -h '^baseurl=' /etc/yum.repos.d/CentOS-Base.repo"); !strings.Contains(base, l.MirrorURL()+"/centos-vault/7.9.2009/os/$basearch/") {
		t.Errorf("CentOS 7 base repos not on the vault:\n%s", base)
	}

	before := map[string]string{}
	for _, h := range l.Hosts() {
		t.Run(h.Name, func(t *testing.T) {
			checkDockerVersion(t, l, h.Name, lab.DockerVersion)
			// The apply recorded what it installed, so the next run's
			// facts need not ask dockerd and containerd again.
			for _, prog := range []string{"dockerd", "containerd"} {
				id := hostSh(t, l, h.Name, "stat -Lc '%n %d:%i:%s:%Y' \"$(command -v "+prog+")\"")
				if rec := hostSh(t, l, h.Name, "cat /var/lib/kprep/versions"); !strings.Contains(rec, strings.TrimSpace(id)+" ") {
					t.Errorf("%s: the versions record has no line for %s after the apply:\n%s", h.Name, id, rec)
				}
			}
			info := readDockerInfo(t, l, h.Name)
			if !contains(info.RegistryConfig.Mirrors, "http://"+l.RegistryAddr()+"/") {
				t.Errorf("docker info mirrors = %v, want the lab registry", info.RegistryConfig.Mirrors)
			}
			if ic, ok := info.RegistryConfig.IndexConfigs[l.RegistryAddr()]; !ok || ic.Secure {
				t.Errorf("docker info index configs = %+v, want %s insecure", info.RegistryConfig.IndexConfigs, l.RegistryAddr())
			}
			if info.LoggingDriver != "json-file" || info.CgroupDriver != "systemd" {
				t.Errorf("docker info: logging driver %s, cgroup driver %s", info.LoggingDriver, info.CgroupDriver)
			}
			env := hostSh(t, l, h.Name, "systemctl show --property=Environment docker")
			if !strings.Contains(env, "HTTP_PROXY=http://"+l.BridgeAddr()+":3128") || !strings.Contains(env, ".cluster.local") {
				t.Errorf("docker's environment: %s", env)
			}
			// Through the mirror (Docker Hub's library/hello) and from the
			// insecure registry directly.
			hostSh(t, l, h.Name, "docker pull hello:latest && docker pull "+l.RegistryAddr()+"/lab/hello:1")
			// The kubelet pulls through the CRI, not dockerd: the same
			// mirror, insecure registry and sandbox image must work there.
			hostSh(t, l, h.Name, "lab-crictl -timeout 60s pull docker.io/library/hello:latest && lab-crictl -timeout 60s pull "+
				l.RegistryAddr()+"/lab/hello:1 && lab-crictl -timeout 60s pull "+l.RegistryAddr()+"/google_containers/pause:3.10.1")
			cri := readCRIInfo(t, l, h.Name)
			if !cri.ready() || !cri.SystemdCgroup["runc"] {
				t.Errorf("CRI: conditions %+v, SystemdCgroup %v", cri.Conditions, cri.SystemdCgroup)
			}
			before[h.Name] = daemonIDs(t, l, h.Name)
		})
	}

	start = time.Now()
	rep = runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep", "--phase", "runtime")
	t.Logf("rerun on %d hosts: %s", len(l.Hosts()), time.Since(start).Round(time.Millisecond))
	rep.requireUnchanged(t, "runtime/")
	for _, h := range l.Hosts() {
		if now := daemonIDs(t, l, h.Name); now != before[h.Name] {
			t.Errorf("%s: a rerun restarted a daemon:\nbefore %s\nafter  %s", h.Name, before[h.Name], now)
		}
	}
	runKprep(t, l, 0, "plan", "-i", inv, "--phase", "runtime")
}

// TestRuntimeDrift shows that a key added by hand survives, that a mirror
// removed by hand comes back with a reload (same PID), and that a version
// changed in the inventory is planned, then applied (docker-ce 20.10 up to
// the lab's 26.1); that dropping the proxy from the inventory removes the
// drop-in; and that a daemon.json the new dockerd rejects is refused by
// `dockerd --validate` before it is written.
func TestRuntimeDrift(t *testing.T) {
	l := bootLab(t, "rocky9")
	const host = "lab1"
	proxy := func(docker map[string]any) {
		docker["version"] = oldDockerVersion
		docker["proxy"] = map[string]any{"http": "http://" + l.BridgeAddr() + ":3128", "noProxy": []string{l.BridgeAddr()}}
	}
	inv := labInventory(t, l, proxy)
	fresh := runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep", "--phase", "runtime")
	fresh.requireNoFailures(t)
	// One probe round trip for the first look, one verify for hostprep's
	// and the repo's changes with the packages' probe, one for the
	// packages with daemon.json's and containerd's probes (they depend on
	// what the packages installed, and on nothing later), one for
	// daemon.json, the proxy, containerd and the registries with the
	// service's probe, and the service's verify: 5, where each change was
	// verified on its own before (15).
	for _, h := range fresh.Hosts {
		if h.Time.Probes > 5 {
			t.Errorf("%s: %d probe round trips on a fresh host, want 5 at most", h.Name, h.Time.Probes)
		}
	}

	// By hand: a key of the user's own, one mirror fewer, and a reload so
	// the running dockerd really lost the mirror.
	daemon := map[string]any{}
	if err := json.Unmarshal([]byte(hostSh(t, l, host, "cat /etc/docker/daemon.json")), &daemon); err != nil {
		t.Fatal(err)
	}
	daemon["debug"] = true
	// Emptied, not deleted: dockerd's reload leaves a key the file lacks as it was.
	daemon["registry-mirrors"] = []string{}
	edited, _ := json.MarshalIndent(daemon, "", "    ")
	hostShInput(t, l, host, edited, "cat > /etc/docker/daemon.json && systemctl reload docker")
	waitFor(t, "dockerd to drop the mirror", func() bool { return len(readDockerInfo(t, l, host).RegistryConfig.Mirrors) == 0 })
	pid := hostSh(t, l, host, "systemctl show -p MainPID docker")
	containerd := hostSh(t, l, host, "systemctl show -p MainPID -p ActiveEnterTimestamp containerd")

	rep := runKprep(t, l, 0, "apply", "-i", inv, "--phase", "runtime")
	rep.requireNoFailures(t)
	svc := rep.step(t, host, "runtime/service")
	if svc.Status != "changed" || !hasPrefix(svc.Commands, "systemctl reload docker.service") || hasPrefix(svc.Commands, "systemctl restart docker") {
		t.Errorf("runtime/service: %s, commands %q; want a reload and no restart", svc.Status, svc.Commands)
	}
	if st := rep.step(t, host, "runtime/daemon-json").Status; st != "changed" {
		t.Errorf("runtime/daemon-json: %s", st)
	}
	if now := hostSh(t, l, host, "systemctl show -p MainPID docker"); now != pid {
		t.Errorf("dockerd was restarted: %s, now %s", pid, now)
	}
	if now := hostSh(t, l, host, "systemctl show -p MainPID -p ActiveEnterTimestamp containerd"); now != containerd {
		t.Errorf("containerd was restarted though its config did not change: %s, now %s", containerd, now)
	}
	info := readDockerInfo(t, l, host)
	if !contains(info.RegistryConfig.Mirrors, "http://"+l.RegistryAddr()+"/") || !info.Debug {
		t.Errorf("after the reload: mirrors %v, debug %v", info.RegistryConfig.Mirrors, info.Debug)
	}
	if file := hostSh(t, l, host, "cat /etc/docker/daemon.json"); !strings.Contains(file, `"debug": true`) {
		t.Errorf("the key added by hand is gone:\n%s", file)
	}

	// A new version in the inventory, and no proxy any more.
	inv = labInventory(t, l, func(docker map[string]any) { docker["version"] = lab.DockerVersion })
	plan := runKprep(t, l, 2, "plan", "-i", inv, "--phase", "runtime")
	pkgs := plan.step(t, host, "runtime/packages")
	if pkgs.Status != "pending" || len(pkgs.Changes) == 0 || !strings.Contains(pkgs.Changes[0].Summary, "docker-ce "+oldDockerVersion+" is installed; the inventory pins "+lab.DockerVersion+" (upgrade)") {
		t.Errorf("plan of the upgrade: %+v", pkgs)
	}
	if p := plan.step(t, host, "runtime/proxy"); p.Status != "pending" {
		t.Errorf("plan of the proxy removal: %+v", p)
	}
	runKprep(t, l, 0, "apply", "-i", inv, "--phase", "runtime").requireNoFailures(t)
	checkDockerVersion(t, l, host, lab.DockerVersion)
	// The packages carry the programs of their version: daemon and client.
	for _, v := range strings.Fields(hostSh(t, l, host, "docker version --format '{{.Server.Version}} {{.Client.Version}}'")) {
		if !strings.HasPrefix(v, lab.DockerVersion) {
			t.Errorf("docker version after the upgrade: %s, want %s for the daemon and the client", v, lab.DockerVersion)
		}
	}
	if env := hostSh(t, l, host, "systemctl show --property=Environment docker"); strings.Contains(env, "PROXY") {
		t.Errorf("the proxy stayed: %s", env)
	}
	if out, _ := hostShErr(l, host, "ls /etc/systemd/system/docker.service.d/http-proxy.conf"); !strings.Contains(out, "No such file") {
		t.Errorf("the drop-in stayed: %s", out)
	}
	runKprep(t, l, 0, "apply", "-i", inv, "--phase", "runtime").requireUnchanged(t, "runtime/")

	// A key dockerd does not know, and a mirror removed, by hand: the new
	// file kprep would write keeps the user's key, and dockerd 26's
	// --validate refuses it before anything is written.
	bad := "{\n  \"exec-opts\": [\"native.cgroupdriver=systemd\"],\n  \"no-such-option\": true\n}\n"
	hostShInput(t, l, host, []byte(bad), "cat > /etc/docker/daemon.json")
	rep = runKprep(t, l, 1, "apply", "-i", inv, "--phase", "runtime")
	dj := rep.step(t, host, "runtime/daemon-json")
	if dj.Status != "failed" || !strings.Contains(dj.Error, "dockerd --validate refused the new /etc/docker/daemon.json, which was not written") ||
		!strings.Contains(dj.Error, "no-such-option") {
		t.Errorf("runtime/daemon-json with a key dockerd rejects: %s: %s", dj.Status, dj.Error)
	}
	if got := hostSh(t, l, host, "cat /etc/docker/daemon.json"); got+"\n" != bad {
		t.Errorf("daemon.json was written though dockerd refused it:\n%s", got)
	}
	if left := hostSh(t, l, host, "ls -a /etc/docker"); strings.Contains(left, ".daemon.json.kprep-") {
		t.Errorf("the candidate file was left behind: %s", left)
	}
}

// oldDockerVersion is the older docker-ce the lab's mirror serves (dockerd
// 20.10, without --validate); lab.DockerVersion is the newer one.
const oldDockerVersion = "20.10.24"

// TestRuntimeBadInput: a version the repo lacks (26.1.4 is real, but the
// lab has no programs of it) is an error listing the ones it has
// (openEuler 22.03 reads the centos/8 tree), and a daemon.json that is not
// JSON is reported and left as it was.
func TestRuntimeBadInput(t *testing.T) {
	l := bootLab(t, "openeuler22")
	const host = "lab1"
	inv := labInventory(t, l, func(docker map[string]any) { docker["version"] = "26.1.4" })
	rep := runKprep(t, l, 1, "apply", "-i", inv, "--phase", "hostprep", "--phase", "runtime")
	pkgs := rep.step(t, host, "runtime/packages")
	if pkgs.Status != "failed" || !strings.Contains(pkgs.Error, "docker-ce 26.1.4 is not in the Docker CE repo") ||
		!strings.Contains(pkgs.Error, "/linux/centos/8/$basearch/stable, which has these versions: "+oldDockerVersion+", "+lab.DockerVersion) {
		t.Errorf("runtime/packages: %s: %s", pkgs.Status, pkgs.Error)
	}
	if out, err := hostShErr(l, host, "rpm -q docker-ce"); err == nil {
		t.Errorf("docker-ce got installed: %s", out)
	}

	broken := "{\n  \"debug\": true,\n  \"log-driver\": \"json-file\",\n"
	hostShInput(t, l, host, []byte(broken), "mkdir -p /etc/docker && cat > /etc/docker/daemon.json")
	inv = labInventory(t, l, nil)
	rep = runKprep(t, l, 1, "apply", "-i", inv, "--phase", "runtime")
	dj := rep.step(t, host, "runtime/daemon-json")
	if dj.Status != "failed" || !strings.Contains(dj.Error, "/etc/docker/daemon.json is not valid JSON (line 4, column 1: unexpected EOF)") {
		t.Errorf("runtime/daemon-json: %s: %s", dj.Status, dj.Error)
	}
	if got := hostSh(t, l, host, "cat /etc/docker/daemon.json"); got+"\n" != broken && got != broken {
		t.Errorf("the broken daemon.json was changed:\n%q", got)
	}
	// Mended by hand, the next run takes it from there and keeps the key.
	hostShInput(t, l, host, []byte(broken+"  \"labels\": [\"mended=by-hand\"]\n}\n"), "cat > /etc/docker/daemon.json")
	runKprep(t, l, 0, "apply", "-i", inv, "--phase", "runtime").requireNoFailures(t)
	if info := readDockerInfo(t, l, host); !info.Debug || !contains(info.Labels, "mended=by-hand") || info.CgroupDriver != "systemd" {
		t.Errorf("docker info: debug %v, labels %v, cgroup driver %s", info.Debug, info.Labels, info.CgroupDriver)
	}
}

// --- runtime checks, read from inside the hosts ---

// checkDockerVersion checks the installed docker-ce package's version.
func checkDockerVersion(t *testing.T, l *lab.Lab, host, want string) {
	t.Helper()
	got := hostSh(t, l, host, "rpm -q --qf '%{VERSION}\n' docker-ce docker-ce-cli 2>/dev/null || dpkg-query -W -f='${Version} ' docker-ce docker-ce-cli")
	for _, v := range strings.Fields(got) {
		if v != want && !strings.HasPrefix(v, "5:"+want+"-") {
			t.Errorf("%s: docker-ce packages are %s, want %s", host, got, want)
			return
		}
	}
}

type dockerInfo struct {
	LoggingDriver  string
	CgroupDriver   string
	Debug          bool
	Labels         []string
	RegistryConfig struct {
		Mirrors      []string
		IndexConfigs map[string]struct{ Secure bool }
	}
}

func readDockerInfo(t *testing.T, l *lab.Lab, host string) dockerInfo {
	t.Helper()
	var info dockerInfo
	out := hostSh(t, l, host, `docker info --format '{{json .}}'`)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("%s: docker info: %v\n%s", host, err, out)
	}
	return info
}

// criInfo is what `lab-crictl info -o json` says of the CRI runtime.
type criInfo struct {
	Conditions []struct {
		Type   string
		Status bool
	}
	SystemdCgroup map[string]bool
	SandboxImage  string
}

func (c criInfo) ready() bool {
	for _, cond := range c.Conditions {
		if cond.Type == "RuntimeReady" {
			return cond.Status
		}
	}
	return false
}

func readCRIInfo(t *testing.T, l *lab.Lab, host string) criInfo {
	t.Helper()
	var cri criInfo
	out := hostSh(t, l, host, "lab-crictl -r unix:///run/containerd/containerd.sock info -o json")
	if err := json.Unmarshal([]byte(out), &cri); err != nil {
		t.Fatalf("%s: lab-crictl info: %v\n%s", host, err, out)
	}
	return cri
}

// daemonIDs identifies the running containerd and dockerd: PID and start.
func daemonIDs(t *testing.T, l *lab.Lab, host string) string {
	t.Helper()
	return hostSh(t, l, host, "systemctl show -p MainPID -p ActiveEnterTimestamp containerd docker | tr '\\n' ' '")
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func hasPrefix(list []string, prefix string) bool {
	for _, e := range list {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// rtFakeRPM builds an empty noarch rpm with a conflicting package's name,
// as rpmbuild on this machine makes it (the lab's mirror is built the same
// way).
func rtFakeRPM(t *testing.T, name, version, release string) []byte {
	t.Helper()
	top := t.TempDir()
	spec := filepath.Join(top, name+".spec")
	text := fmt.Sprintf("Name: %s\nVersion: %s\nRelease: %s\nSummary: stand-in for the distribution's %s\nLicense: none\nBuildArch: noarch\n\n%%description\nStand-in.\n\n%%files\n", name, version, release, name)
	if err := os.WriteFile(spec, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("rpmbuild", "-bb", "--define", "_topdir "+top, spec).CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild %s: %v\n%s", name, err, out)
	}
	rpm, err := os.ReadFile(filepath.Join(top, "RPMS", "noarch", fmt.Sprintf("%s-%s-%s.noarch.rpm", name, version, release)))
	if err != nil {
		t.Fatal(err)
	}
	return rpm
}

// rtFakeDeb builds an empty deb with a conflicting package's name.
func rtFakeDeb(t *testing.T, name, version string) []byte {
	t.Helper()
	dir := t.TempDir()
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: kprep e2e <e2e@kprep.invalid>\nDescription: stand-in for the distribution's %s\n", name, version, name)
	if err := os.MkdirAll(filepath.Join(dir, "pkg", "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pkg", "DEBIAN", "control"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(dir, name+".deb")
	if out, err := exec.Command("dpkg-deb", "--build", filepath.Join(dir, "pkg"), deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb %s: %v\n%s", name, err, out)
	}
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rtInstallRPM(t *testing.T, l *lab.Lab, host string, rpm []byte) {
	t.Helper()
	hostShInput(t, l, host, rpm, "f=$(mktemp --suffix=.rpm) && cat > $f && rpm -i --nodeps $f; rc=$?; rm -f $f; exit $rc")
}

func rtInstallDeb(t *testing.T, l *lab.Lab, host string, deb []byte) {
	t.Helper()
	hostShInput(t, l, host, deb, "f=$(mktemp --suffix=.deb) && cat > $f && dpkg -i $f; rc=$?; rm -f $f; exit $rc")
}
