package e2e

// The lab's own end-to-end test: each personality looks right from inside
// (through nsenter and through real SSH with the lab key), the per-host
// kernel stand-ins stay per host, real Docker CE and a real kubelet run in
// the hosts from the lab's mirror and registry, and down leaves nothing.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/test/lab/instance"
	"github.com/kprep/kprep/test/lab/lab"
)

// ltPersonality is what each OS must look like from inside a host.
type ltPersonality struct {
	id, versionID string
	// release is a release file and its first line.
	release, releaseLine string
	// swap is the line /proc/swaps shows on a fresh host (name type KiB).
	swap string
	el   bool
}

var ltPersonalities = map[string]ltPersonality{
	"centos7":     {"centos", "7", "/etc/redhat-release", "CentOS Linux release 7.9.2009 (Core)", "/dev/dm-1 partition 2097148", true},
	"rocky9":      {"rocky", "9.4", "/etc/redhat-release", "Rocky Linux release 9.4 (Blue Onyx)", "/dev/dm-1 partition 2097148", true},
	"openeuler22": {"openEuler", "22.03", "/etc/openEuler-release", "openEuler release 22.03 (LTS)", "/dev/dm-1 partition 2097148", true},
	"ubuntu22":    {"ubuntu", "22.04", "/etc/lsb-release", "DISTRIB_ID=Ubuntu", "/swap.img file 2097148", false},
}

func TestLab(t *testing.T) {
	skipUnlessE2E(t)
	holdLabLock(t)
	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Minute)
	defer cancel()
	stateDir := lab.StateDirFromEnv()
	inotifyBefore := ltReadFile(t, "/proc/sys/fs/inotify/max_user_instances")

	var log bytes.Buffer
	start := time.Now()
	l, err := lab.Up(ctx, lab.Options{Hosts: 4, OS: []string{"centos7", "rocky9", "openeuler22", "ubuntu22"}, Log: &log})
	t.Cleanup(func() {
		if err := lab.Down(context.Background(), stateDir); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, log.String())
	}
	t.Logf("lab up in %s:\n%s", time.Since(start).Round(100*time.Millisecond), log.String())
	if !l.MirrorServed() {
		t.Fatal("the lab does not serve its mirror")
	}

	t.Run("inventory", func(t *testing.T) { ltCheckInventory(t, l) })
	t.Run("personalities", func(t *testing.T) {
		for _, h := range l.Hosts() {
			t.Run(h.Name+"-"+h.OS, func(t *testing.T) {
				t.Parallel()
				ltCheckPersonality(t, ltExecRunner(t, ctx, l, h.Name), h)
				s := ltDial(t, ctx, l, h)
				ltCheckPersonality(t, ltSSHRunner(t, s), h)
				ltCheckSudo(t, s)
			})
		}
	})
	t.Run("kernel stand-ins are per host", func(t *testing.T) { ltCheckPerHostKernel(t, ctx, l) })
	t.Run("workloads", func(t *testing.T) {
		t.Run("docker-ce on rocky9", func(t *testing.T) {
			t.Parallel()
			ltDocker(t, ctx, l, "lab2")
		})
		t.Run("kubelet on centos7", func(t *testing.T) {
			t.Parallel()
			ltKubelet(t, ctx, l, "lab1")
		})
	})
	t.Run("down leaves nothing", func(t *testing.T) {
		hosts := l.Hosts()
		var log bytes.Buffer
		err := lab.DownWithLog(ctx, stateDir, &log)
		t.Logf("down:\n%s", log.String())
		if err != nil {
			t.Fatalf("down: %v", err)
		}
		if left := lab.Leftovers(stateDir); len(left) > 0 {
			t.Errorf("left after down: %s", strings.Join(left, "; "))
		}
		for _, h := range hosts {
			if ltAlive(h.LeaderPID) {
				t.Errorf("%s: its PID 1 (%d), and so its namespaces, are still there", h.Name, h.LeaderPID)
			}
		}
		// Other lab instances may be up beside this one: only this
		// instance's names count.
		id := l.Instance()
		if links := ltCommand(t, "ip", "-o", "link"); strings.Contains(links, " "+id.Bridge()+":") || strings.Contains(links, " "+id.VethPrefix()) {
			t.Errorf("links of %s left:\n%s", id, links)
		}
		if mounts := ltReadFile(t, "/proc/self/mountinfo"); strings.Contains(mounts, " "+stateDir+"/") || strings.Contains(mounts, " "+stateDir+" ") {
			t.Errorf("mounts left under %s", stateDir)
		}
		// The machine's inotify limits come back once no lab is up (another
		// instance keeps them raised while it runs).
		if got := ltReadFile(t, "/proc/sys/fs/inotify/max_user_instances"); got != inotifyBefore && len(ltOtherBridges(t)) == 0 {
			t.Errorf("inotify max_user_instances is %s after down, was %s", got, inotifyBefore)
		}
		if err := lab.Down(ctx, stateDir); err != nil {
			t.Errorf("second down: %v", err)
		}
	})
}

// ltCheckInventory loads the lab's inventory with kprep's own loader.
func ltCheckInventory(t *testing.T, l *lab.Lab) {
	data, err := os.ReadFile(l.InventoryPath())
	if err != nil {
		t.Fatal(err)
	}
	pw, err := l.SudoPassword()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(pw)) {
		t.Fatal("the sudo password is in the inventory")
	}
	c, err := inventory.LoadWith(l.InventoryPath(), inventory.Options{
		LookupEnv: func(string) (string, bool) { return "set", true },
	})
	if err != nil {
		t.Fatalf("kprep rejects the lab's inventory: %v", err)
	}
	if len(c.Hosts) != len(l.Hosts()) {
		t.Errorf("inventory has %d hosts, the lab %d", len(c.Hosts), len(l.Hosts()))
	}
	for i, h := range l.Hosts() {
		ih := c.Hosts[i]
		if ih.Name != h.Name || ih.Address != h.Address || ih.Connection.User != h.SSHUser {
			t.Errorf("inventory host %d: %s %s %s, lab: %s %s %s", i, ih.Name, ih.Address, ih.Connection.User, h.Name, h.Address, h.SSHUser)
		}
		if (ih.Connection.SudoPasswordEnv == lab.SudoPasswordEnv) != h.SudoNeedsPassword {
			t.Errorf("%s sudoPasswordEnv %q", h.Name, ih.Connection.SudoPasswordEnv)
		}
	}
}

// ltCheckPersonality checks what kprep's probes look at, as root.
func ltCheckPersonality(t *testing.T, r ltRunner, h lab.Host) {
	t.Helper()
	want := ltPersonalities[h.OS]
	expect := func(line, wantOut string) {
		t.Helper()
		if got, code := r.run(line); got != wantOut || code != 0 {
			t.Errorf("%s via %s: %s\n got %q (exit %d)\nwant %q", h.Name, r.name, line, got, code, wantOut)
		}
	}
	expectExit := func(line string, wantCode int) {
		t.Helper()
		if got, code := r.run(line); code != wantCode {
			t.Errorf("%s via %s: %s exited %d, want %d: %s", h.Name, r.name, line, code, wantCode, got)
		}
	}
	expect(`. /etc/os-release; echo "$ID $VERSION_ID"`, want.id+" "+want.versionID)
	expect("hostname", h.Name)
	expect("head -n 1 "+want.release, want.releaseLine)
	expect(`sed 1d /proc/swaps | awk '{print $1, $2, $3}'`, want.swap)
	expect(`swapon --show=NAME,SIZE --noheadings | tr -s ' '`, strings.Fields(want.swap)[0]+" 2G")
	expectExit("sysctl --system >/dev/null", 0)
	expectExit("modprobe br_netfilter", 0)
	expectExit("test -x /usr/local/bin/lab-crictl", 0)
	if want.el {
		expect("systemctl is-active firewalld; systemctl is-enabled firewalld", "active\nenabled")
		expect("firewall-cmd --get-zone-of-interface=eth0", "public")
		expect("grep '^SELINUX=' /etc/selinux/config; readlink /etc/sysconfig/selinux; getenforce",
			"SELINUX=enforcing\n../selinux/config\nEnforcing")
		expectExit("selinuxenabled", 0)
		expectExit("command -v yum && command -v rpm", 0)
		expectExit("command -v apt-get || test -e /etc/debian_version", 1)
		expectExit("rpm -q --quiet bash", 0)
		return
	}
	expect("ufw status; systemctl is-enabled ufw", "Status: inactive\nenabled")
	expectExit("command -v firewall-cmd || command -v getenforce || command -v yum || test -e /etc/selinux/config", 1)
	expectExit("command -v apt-get", 0)
}

// ltCheckSudo checks each host's sudo policy over SSH.
func ltCheckSudo(t *testing.T, s *ltSSH) {
	t.Helper()
	h := s.host
	out, stderr, code, err := s.run("sudo -n id -u", nil)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case h.SSHUser == "root":
		if out, _, _, _ := s.run("id -u", nil); strings.TrimSpace(out) != "0" {
			t.Errorf("%s: root login gives uid %q", h.Name, out)
		}
	case h.SudoNeedsPassword:
		if code == 0 || !strings.Contains(stderr, "a password is required") {
			t.Errorf("%s: sudo -n without a password: exit %d %q %q, want it refused", h.Name, code, out, stderr)
		}
		if _, _, code, _ := s.run("sudo -S -p '' id -u", []byte("wrong-password\n")); code == 0 {
			t.Errorf("%s: sudo took a wrong password", h.Name)
		}
		if out, stderr, code, _ := s.run("sudo -S -p '' id -u", []byte(s.sudoPassword+"\n")); strings.TrimSpace(out) != "0" {
			t.Errorf("%s: sudo with the lab's password: exit %d %q %q", h.Name, code, out, stderr)
		}
	default:
		if strings.TrimSpace(out) != "0" {
			t.Errorf("%s: password-less sudo: exit %d %q %q", h.Name, code, out, stderr)
		}
	}
}

// ltCheckPerHostKernel changes the emulated kernel state of lab3 and checks
// that lab1 and the machine do not see it, and the SELinux-disabled path.
func ltCheckPerHostKernel(t *testing.T, ctx context.Context, l *lab.Lab) {
	one, three := ltExecRunner(t, ctx, l, "lab1"), ltExecRunner(t, ctx, l, "lab3")
	machineSwaps := ltReadFile(t, "/proc/swaps")
	steps := []struct {
		r         ltRunner
		line, out string
	}{
		{three, "setenforce 0 && getenforce", "Permissive"},
		{one, "getenforce", "Enforcing"},
		{three, "swapoff -a && sed 1d /proc/swaps && swapon --show", ""},
		{one, "sed 1d /proc/swaps | wc -l", "1"},
		{three, "swapon -a && swapon --show=NAME --noheadings", "/dev/dm-1"},
		// A host that boots with SELINUX=disabled has no SELinux at all.
		{three, "sed -i 's/^SELINUX=.*/SELINUX=disabled/' /etc/selinux/config && /usr/lib/lab-kernel/selinux boot && getenforce", "Disabled"},
		{three, "setenforce 0; echo $?", "setenforce: SELinux is disabled\n1"},
		{three, "selinuxenabled; echo $?", "1"},
		{three, "sed -i 's/^SELINUX=.*/SELINUX=enforcing/' /etc/selinux/config && /usr/lib/lab-kernel/selinux boot && getenforce", "Enforcing"},
	}
	for _, s := range steps {
		got, _ := s.r.run("{ " + s.line + "; } 2>&1")
		if got != s.out {
			t.Errorf("%s: %s\n got %q\nwant %q", s.r.name, s.line, got, s.out)
		}
	}
	if got := ltReadFile(t, "/proc/swaps"); got != machineSwaps {
		t.Errorf("the machine's /proc/swaps changed:\n%s", got)
	}
}

// ltDocker installs a pinned docker-ce with yum from the lab's mirror and
// runs an image from the lab's registry.
func ltDocker(t *testing.T, ctx context.Context, l *lab.Lab, host string) {
	reg := l.RegistryAddr()
	ltWrite(t, ctx, l, host, "/etc/yum.repos.d/docker-ce.repo", ltDockerRepo(l))
	ltWrite(t, ctx, l, host, "/etc/docker/daemon.json", `{"insecure-registries": ["`+reg+`"], "exec-opts": ["native.cgroupdriver=systemd"]}`+"\n")
	sh := ltSh(t, ctx, l, host)
	v := lab.DockerVersion
	// The distribution's own repos are unreachable, as on an offline host.
	sh("yum install -y -q --disablerepo='*' --enablerepo=docker-ce-stable docker-ce-" + v + " docker-ce-cli-" + v + " containerd.io")
	if got := sh("rpm -q --qf '%{VERSION}' docker-ce"); got != v {
		t.Errorf("docker-ce version %q, want %q", got, v)
	}
	// The package holds the dockerd of its version, and that one checks a
	// config file without starting: a good daemon.json passes, a bad one fails.
	if got := sh("dockerd --version"); !strings.HasPrefix(got, "Docker version "+v) {
		t.Errorf("dockerd --version: %q, want %s", got, v)
	}
	if got := sh("dockerd --validate --config-file /etc/docker/daemon.json 2>&1"); got != "configuration OK" {
		t.Errorf("dockerd --validate of the good daemon.json: %q", got)
	}
	ltWrite(t, ctx, l, host, "/root/bad-daemon.json", `{"no-such-option": true, "log-level": "loud"}`+"\n")
	if out, _, err := l.Exec(ctx, host, "sh", "-c", "dockerd --validate --config-file /root/bad-daemon.json 2>&1"); err == nil ||
		!strings.Contains(string(out), "no-such-option") {
		t.Errorf("dockerd --validate of a bad daemon.json: %v, %q; want a failure naming the unknown key", err, out)
	}
	sh("systemctl start docker")
	if got := sh("docker info --format '{{.Driver}} {{.CgroupDriver}} {{.CgroupVersion}}'"); got != "overlay2 systemd 1" {
		t.Errorf("docker info: %q, want overlay2 on the systemd cgroup driver, cgroup v1", got)
	}
	img := reg + "/library/hello:latest"
	sh("docker pull -q " + img)
	if got := sh("docker run --rm " + img + " /bin/sh -c 'echo ran in docker on $(hostname)'"); !strings.HasPrefix(got, "ran in docker on ") {
		t.Errorf("docker run: %q", got)
	}
}

// ltKubelet runs the real kubelet in standalone mode with containerd's CRI
// and a static pod from the lab's registry.
func ltKubelet(t *testing.T, ctx context.Context, l *lab.Lab, host string) {
	reg := l.RegistryAddr()
	ltWrite(t, ctx, l, host, "/etc/yum.repos.d/lab.repo", ltKubeRepos(l))
	ltContainerdCRI(t, ctx, l, host, reg+"/google_containers/pause:3.10")
	ltStandaloneKubelet(t, ctx, l, host)
	ltWrite(t, ctx, l, host, "/etc/kubernetes/manifests/hello.yaml", `apiVersion: v1
kind: Pod
metadata: {name: hello, namespace: default}
spec:
  hostNetwork: true
  containers:
  - name: hello
    image: `+reg+`/library/hello:latest
`)
	sh := ltSh(t, ctx, l, host)
	sh("yum install -y -q --disablerepo='*' --enablerepo=docker-ce-stable --enablerepo=kubernetes containerd.io kubelet-" + lab.KubernetesVersion +
		" && cp /root/config.toml /etc/containerd/config.toml")
	// The kubelet refuses to run with swap on, as on a real host.
	sh("swapoff -a")
	sh("systemctl daemon-reload && systemctl restart containerd && systemctl start kubelet")
	deadline := time.Now().Add(5 * time.Minute)
	for {
		out, _, _ := l.Exec(ctx, host, "lab-crictl", "ps")
		if ltInState(string(out), "hello", "RUNNING") {
			t.Logf("static pod running:\n%s", out)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			journal, _, _ := l.Exec(ctx, host, "journalctl", "-u", "kubelet", "-u", "containerd", "--no-pager", "-n", "60")
			t.Fatalf("the static pod's container is not RUNNING after 5 minutes; lab-crictl ps:\n%s\njournal:\n%s", out, journal)
		}
		time.Sleep(2 * time.Second)
	}
	if info := sh("lab-crictl info"); !strings.Contains(info, "SystemdCgroup") {
		t.Logf("lab-crictl info does not mention SystemdCgroup:\n%s", info)
	}
}

// ltContainerdCRI writes containerd's config with the CRI on, as kprep
// sets it up (the lab registry over plain HTTP through a hosts.toml, the
// sandbox image from there, the systemd cgroup driver), plus
// restrict_oom_score_adj, which the lab's hosts need (the machine lacks
// CAP_SYS_RESOURCE). It goes to /root/config.toml: the caller copies it
// over containerd.io's own after installing it.
func ltContainerdCRI(t *testing.T, ctx context.Context, l *lab.Lab, host, sandboxImage string) {
	t.Helper()
	reg := l.RegistryAddr()
	ltWrite(t, ctx, l, host, "/root/config.toml", `version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "`+sandboxImage+`"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = true
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
`)
	ltWrite(t, ctx, l, host, "/etc/containerd/certs.d/"+reg+"/hosts.toml", `server = "http://`+reg+`"
[host."http://`+reg+`"]
  capabilities = ["pull", "resolve"]
`)
}

// ltKubeRepos is a yum repo file with the lab mirror's Docker CE and
// Kubernetes repos.
func ltKubeRepos(l *lab.Lab) string {
	return ltDockerRepo(l) + `
[kubernetes]
name=Kubernetes
baseurl=` + l.MirrorURL() + `/kubernetes-new/core/stable/v1.34/rpm/
enabled=1
gpgcheck=0
`
}

// ltStandaloneKubelet configures the kubelet to run static pods alone
// (no API server) on containerd's CRI with the systemd cgroup driver.
func ltStandaloneKubelet(t *testing.T, ctx context.Context, l *lab.Lab, host string) {
	t.Helper()
	ltWrite(t, ctx, l, host, "/var/lib/kubelet/config.yaml", `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
staticPodPath: /etc/kubernetes/manifests
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
`)
	ltWrite(t, ctx, l, host, "/etc/systemd/system/kubelet.service.d/20-lab.conf",
		"[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml\n")
}

// ltDockerRepo is a docker-ce.repo for the lab's mirror, laid out like
// download.docker.com (the distribution picks its $releasever folder).
func ltDockerRepo(l *lab.Lab) string {
	return `[docker-ce-stable]
name=Docker CE Stable - $basearch
baseurl=` + l.MirrorURL() + `/docker-ce/linux/centos/$releasever/$basearch/stable
enabled=1
gpgcheck=0
`
}

// ltSh returns a function that runs a shell line as root in the host and
// returns its trimmed stdout, failing the test if it fails.
func ltSh(t *testing.T, ctx context.Context, l *lab.Lab, host string) func(string) string {
	return func(line string) string {
		t.Helper()
		out, stderr, err := l.Exec(ctx, host, "sh", "-c", line)
		if err != nil {
			t.Fatalf("%s: %v\n%s%s", host, err, out, stderr)
		}
		return strings.TrimSpace(string(out))
	}
}

// ltInState reports whether lab-crictl ps lists the container in state
// (RUNNING, EXITED).
func ltInState(ps, name, state string) bool {
	for _, line := range strings.Split(ps, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == name && f[2] == state {
			return true
		}
	}
	return false
}

// ltWrite writes a file inside a host through Exec.
func ltWrite(t *testing.T, ctx context.Context, l *lab.Lab, host, path, content string) {
	t.Helper()
	if _, stderr, err := l.ExecInput(ctx, host, []byte(content), "sh", "-c", `mkdir -p "$(dirname "$1")" && cat >"$1"`, "sh", path); err != nil {
		t.Fatalf("write %s in %s: %v %s", path, host, err, stderr)
	}
}

func ltReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// ltAlive reports whether a process runs (a zombie has exited).
func ltAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// ltOtherBridges lists the lab bridges on the machine: the other lab
// instances that are up beside this test's.
func ltOtherBridges(t *testing.T) []string {
	var bridges []string
	for _, f := range strings.Fields(ltCommand(t, "ip", "-o", "link")) {
		if _, ok := instance.BridgeFor(strings.TrimSuffix(f, ":")); ok {
			bridges = append(bridges, strings.TrimSuffix(f, ":"))
		}
	}
	return bridges
}

// ltCommand runs a program on the machine and returns its output.
func ltCommand(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}
