package e2e

// The Vagrant and cloud-init proofs run their machines as systemd
// containers under a Docker daemon of the tests' own. Its socket, bridge and
// data root are machine-wide (one such daemon at a time, under a lock,
// whatever lab instance the test uses): the machines reach the lab's mirror
// on the instance's bridge address, a local address of this machine, through
// the daemon's bridge, so nothing of the daemon needs to be per instance.
// Its images live in the lab cache, named by recipe; each start removes
// what an older recipe or a killed run left there.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kprep/kprep/test/lab/lab"
)

const (
	// testDockerLock keeps the tests' dockerd to one at a time on the machine.
	testDockerLock = "/run/lock/kprep-e2e-docker.lock"
	// testDockerRun holds its socket, pid file and exec root.
	testDockerRun = "/run/kprep-e2e-docker"
	// testDockerBridge is its default bridge, made by the test rather than
	// docker's docker0, which a Docker of the machine's own may be using.
	testDockerBridge = "kprep-docker0"
	// testDockerBridgeAddr is the bridge's address: the machines' default
	// gateway (their "NAT"), and where their traffic to this machine's own
	// addresses (the lab's mirror) enters it.
	testDockerBridgeAddr = "172.29.77.1/24"
	// testImageRepo prefixes every image the tests make; others are pruned.
	testImageRepo = "kprep-e2e/"
)

// dockerd is the tests' own Docker daemon: its own socket, state and
// network settings, leaving the machine's iptables and forwarding alone.
type dockerd struct {
	env []string // DOCKER_HOST for docker and vagrant
}

// startDockerd takes the tests' dockerd lock, starts the daemon, removes
// what a killed run left in it (containers, networks, volumes) and stops it
// at the end of the test.
func startDockerd(t *testing.T) dockerd {
	t.Helper()
	lock, err := os.OpenFile(testDockerLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", testDockerLock, err)
	}
	t.Cleanup(func() { lock.Close() }) // first registered: released last
	if err := os.MkdirAll(testDockerRun, 0o700); err != nil {
		t.Fatal(err)
	}
	stopLeftoverDockerd(t)
	for _, args := range [][]string{
		{"link", "add", testDockerBridge, "type", "bridge"},
		{"addr", "replace", testDockerBridgeAddr, "dev", testDockerBridge},
		{"link", "set", testDockerBridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil && !strings.Contains(string(out), "File exists") {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", testDockerBridge).CombinedOutput(); err != nil {
			t.Errorf("remove the tests' docker bridge: %v\n%s", err, out)
		}
	})
	sock := filepath.Join(testDockerRun, "docker.sock")
	logFile, err := os.Create(filepath.Join(t.TempDir(), "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dockerd",
		"--host=unix://"+sock, "--pidfile="+filepath.Join(testDockerRun, "docker.pid"),
		"--exec-root="+filepath.Join(testDockerRun, "exec"), "--data-root="+testDockerDataRoot(),
		"--bridge="+testDockerBridge,
		// No NAT, forwarding or firewall rules on the shared machine: the
		// machines talk to this machine (the lab's mirror) and each other
		// only; published ports go through docker-proxy.
		"--iptables=false", "--ip-forward=false", "--ip-masq=false",
		"--containerd-namespace=kprep-e2e", "--containerd-plugins-namespace=kprep-e2e-plugins")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	d := dockerd{env: []string{"DOCKER_HOST=unix://" + sock}}
	t.Cleanup(func() {
		// Vagrant's private networks go with their bridges; a failed test
		// leaves its containers for a look until the next start.
		if out, err := d.dockerOutput(context.Background(), "network", "prune", "-f"); err != nil {
			t.Errorf("docker network prune: %v\n%s", err, out)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Errorf("dockerd did not stop in 60 s; killed")
		}
		logFile.Close()
	})
	waitFor(t, "dockerd to answer", func() bool {
		select {
		case err := <-done:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("dockerd exited: %v\n%s", err, log)
		default:
		}
		return d.docker(context.Background(), "version") == nil
	})
	d.removeLeftovers(t)
	return d
}

// testDockerDataRoot is the daemon's data root in the lab cache, so that a
// warm run imports nothing.
func testDockerDataRoot() string { return filepath.Join(lab.CacheDirFromEnv(), "e2e-docker") }

// stopLeftoverDockerd stops the daemon a killed test left running (it runs
// in its own process group, so it outlives the test binary).
func stopLeftoverDockerd(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testDockerRun, "docker.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(testDockerRun)) {
		return // gone, or the number now belongs to another process
	}
	t.Logf("stopping the dockerd (pid %d) a killed run left", pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	waitFor(t, "the left-over dockerd to exit", func() bool {
		return syscall.Kill(pid, 0) != nil
	})
}

// removeLeftovers removes every container, volume and network a killed or
// failed run left in the daemon: nothing else uses it.
func (d dockerd) removeLeftovers(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ids, err := d.dockerOutput(ctx, "ps", "-aq")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(ids); len(f) > 0 {
		if out, err := d.dockerOutput(ctx, append([]string{"rm", "-f", "-v"}, f...)...); err != nil {
			t.Fatalf("remove left-over containers: %v\n%s", err, out)
		}
		t.Logf("removed %d left-over containers", len(f))
	}
	for _, args := range [][]string{{"volume", "prune", "-f"}, {"network", "prune", "-f"}} {
		if out, err := d.dockerOutput(ctx, args...); err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func (d dockerd) docker(ctx context.Context, args ...string) error {
	if out, err := d.dockerOutput(ctx, args...); err != nil {
		return fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (d dockerd) dockerOutput(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), d.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// imageRecipe is how one of the tests' images is made: a script run in the
// lab's root file system (imported as it is, for the base) or in the base
// image, with stdin on its standard input and, if network, this machine's
// network and Debian's mirror in DEBIAN_MIRROR.
type imageRecipe struct {
	name    string
	script  string
	stdin   string
	network bool
}

// The tests' images: a systemd host made from the lab's root file system,
// and on top of it (sharing its layer) a Vagrant box and a cloud image.
var (
	systemdRecipe   = imageRecipe{name: "systemd", script: systemdContainerScript}
	vagrantRecipe   = imageRecipe{name: "vagrant", script: vagrantBoxScript} // stdin: Vagrant's insecure key
	cloudInitRecipe = imageRecipe{name: "cloudinit", script: cloudInitScript, network: true}
)

// testImages names the tests' images by recipe: the lab's layer folders
// (which carry its recipe keys), the base's script, then the image's own.
type testImages struct {
	layers                      []string
	systemd, vagrant, cloudInit imageRecipe
}

func newTestImages(ctx context.Context, t *testing.T) testImages {
	t.Helper()
	layers, err := lab.PersonalityLayers(ctx, lab.Options{}, vagrantPersonality)
	if err != nil {
		t.Fatalf("the lab's %s root file system: %v", vagrantPersonality, err)
	}
	v := vagrantRecipe
	v.stdin = vagrantInsecureKey(t)
	return testImages{layers: layers, systemd: systemdRecipe, vagrant: v, cloudInit: cloudInitRecipe}
}

// ref is the image name of r: its name and a hash of its recipe.
func (ti testImages) ref(r imageRecipe) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", strings.Join(ti.layers, "\n"), ti.systemd.script)
	if r.name != ti.systemd.name {
		fmt.Fprintf(h, "%s\x00%s\x00%v\x00", r.script, r.stdin, r.network)
	}
	return testImageRepo + vagrantPersonality + "-" + r.name + ":" + hex.EncodeToString(h.Sum(nil))[:12]
}

// image returns r's image, making it (and the base) on a cache miss, and
// removes the images of every other recipe from the daemon.
func (ti testImages) image(ctx context.Context, t *testing.T, d dockerd, r imageRecipe) string {
	t.Helper()
	base := ti.ref(ti.systemd)
	if d.docker(ctx, "image", "inspect", base) != nil {
		ti.importBase(ctx, t, d, base)
	}
	image := ti.ref(r)
	if image != base && d.docker(ctx, "image", "inspect", image) != nil {
		start := time.Now()
		ctr := "kprep-e2e-build-" + r.name
		_ = d.docker(ctx, "rm", "-f", ctr)
		args := []string{"run", "-i", "--name", ctr, "--network=none"}
		if r.network {
			mirror := os.Getenv("KPREP_LAB_DEBIAN_MIRROR")
			if mirror == "" {
				mirror = "http://deb.debian.org/debian"
			}
			args = []string{"run", "-i", "--name", ctr, "--network=host", "-e", "DEBIAN_MIRROR=" + mirror}
		}
		cmd := exec.CommandContext(ctx, "docker", append(args, base, "/bin/bash", "-c", r.script)...)
		cmd.Env, cmd.Stdin = append(os.Environ(), d.env...), strings.NewReader(r.stdin)
		raw, err := cmd.CombinedOutput()
		out := string(raw)
		if err == nil {
			out, err = d.dockerOutput(ctx, "commit", "--change", `CMD ["/sbin/init"]`, ctr, image)
		}
		_ = d.docker(ctx, "rm", "-f", ctr)
		if err != nil {
			t.Fatalf("make the image %s: %v\n%s", image, err, out)
		}
		t.Logf("image %s made in %s", image, time.Since(start).Round(100*time.Millisecond))
	}
	ti.prune(ctx, t, d)
	return image
}

// importBase imports the lab's root file system, with the systemd recipe's
// script run in it, as the image named base.
func (ti testImages) importBase(ctx context.Context, t *testing.T, d dockerd, base string) {
	t.Helper()
	start := time.Now()
	tmp := t.TempDir()
	upper, work, merged := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, p := range []string{upper, work, merged} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(ti.layers, ":"), upper, work)
	if out, err := exec.Command("mount", "-t", "overlay", "overlay", "-o", opts, merged).CombinedOutput(); err != nil {
		t.Fatalf("mount the lab's root file system: %v\n%s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", merged).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", merged, err, out)
		}
	}()
	build := exec.CommandContext(ctx, "chroot", merged, "/bin/bash", "-c", ti.systemd.script)
	build.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make the image %s: %v\n%s", base, err, out)
	}
	tarCmd := exec.CommandContext(ctx, "tar", "-C", merged, "--numeric-owner", "--xattrs", "-c", ".")
	imp := exec.CommandContext(ctx, "docker", "import", "--change", `CMD ["/sbin/init"]`, "-", base)
	imp.Env = append(os.Environ(), d.env...)
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	var impOut bytes.Buffer
	imp.Stdout, imp.Stderr = &impOut, &impOut
	if err := tarCmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := imp.Run(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, impOut.String())
	}
	if err := tarCmd.Wait(); err != nil {
		t.Fatalf("tar of the root file system: %v", err)
	}
	t.Logf("image %s imported in %s", base, time.Since(start).Round(100*time.Millisecond))
}

// prune removes every image but the current recipes' (older recipes, and
// anything else someone put in the tests' daemon), so the data root holds
// one base and its two small layers on top.
func (ti testImages) prune(ctx context.Context, t *testing.T, d dockerd) {
	t.Helper()
	keep := map[string]bool{}
	for _, r := range []imageRecipe{ti.systemd, ti.vagrant, ti.cloudInit} {
		keep[ti.ref(r)] = true
	}
	out, err := d.dockerOutput(ctx, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		t.Fatalf("docker images: %v\n%s", err, out)
	}
	var old []string
	for _, ref := range strings.Fields(out) {
		if !keep[ref] && ref != "<none>:<none>" {
			old = append(old, ref)
		}
	}
	if len(old) > 0 {
		if out, err := d.dockerOutput(ctx, append([]string{"rmi"}, old...)...); err != nil {
			t.Fatalf("remove old images: %v\n%s", err, out)
		}
		t.Logf("removed old images: %s", strings.Join(old, " "))
	}
	if out, err := d.dockerOutput(ctx, "image", "prune", "-f"); err != nil {
		t.Fatalf("docker image prune: %v\n%s", err, out)
	}
}

// systemdContainerScript makes a copy of the lab's root file system boot
// as a docker container the way a VM boots: SSH host keys made at first
// boot (the lab makes them per host; an image has none), and /etc/hosts,
// hostname and resolv.conf as plain files (docker bind-mounts them, and
// kprep renames files into place as on any host), no wait for a network
// that docker, not systemd-networkd, sets up, and no 2 GiB swap file.
const systemdContainerScript = `set -eu
mkdir -p /etc/systemd/system/ssh.service.d
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' >/etc/systemd/system/ssh.service.d/host-keys.conf
cat >/usr/local/sbin/docker-etc-files <<'SCRIPT'
#!/bin/sh
for f in hosts hostname resolv.conf; do
	if grep -q " /etc/$f " /proc/self/mountinfo; then
		cp "/etc/$f" "/run/docker-etc-$f"
		umount "/etc/$f"
		cat "/run/docker-etc-$f" >"/etc/$f"
	fi
done
SCRIPT
chmod 755 /usr/local/sbin/docker-etc-files
cat >/etc/systemd/system/docker-etc-files.service <<'UNIT'
[Unit]
Description=Plain /etc/hosts, hostname and resolv.conf instead of docker's bind mounts
DefaultDependencies=no
After=local-fs.target
Before=sysinit.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/docker-etc-files
[Install]
WantedBy=sysinit.target
UNIT
systemctl enable docker-etc-files.service ssh.service
# docker configures the network, not networkd: waiting for networkd to call
# it online would hold cloud-init (ordered after it) for 2 minutes.
systemctl mask systemd-networkd-wait-online.service
rm -f /etc/ssh/ssh_host_*
: >/etc/machine-id
# The lab's sparse 2 GiB swap file would be stored in full by docker import;
# fstab still names it, as Ubuntu's does.
rm -f /swap.img
`

// systemdContainerArgs are the docker run flags for a systemd host, the
// same the shipped Vagrantfile gives its docker provider.
func systemdContainerArgs(t *testing.T) []string {
	args := []string{"--cap-add=ALL"}
	for _, c := range missingCapabilities(t) {
		args = append(args, "--cap-drop="+c)
	}
	return append(args, "--security-opt=seccomp=unconfined", "--security-opt=apparmor=unconfined",
		"--security-opt=systempaths=unconfined", "--device-cgroup-rule=a *:* rwm",
		"--tmpfs=/run", "--tmpfs=/run/lock", "--volume=/sys/fs/cgroup:/sys/fs/cgroup:rw",
		"--stop-signal=SIGRTMIN+3")
}

// missingCapabilities names the capabilities this machine's bounding set
// lacks, which a container cannot be given (SYS_RESOURCE here).
func missingCapabilities(t *testing.T) []string {
	t.Helper()
	names := []string{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
		"LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE",
		"SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
		"SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
		"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var bnd uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			fmt.Sscanf(strings.TrimSpace(v), "%x", &bnd)
		}
	}
	var missing []string
	for i, n := range names {
		if bnd&(1<<i) == 0 {
			missing = append(missing, n)
		}
	}
	return missing
}
