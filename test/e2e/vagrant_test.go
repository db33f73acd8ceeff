package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/test/lab/lab"
)

// The Vagrant proof runs Debian's real vagrant on the shipped Vagrantfile
// with its docker provider: this machine cannot run VMs (no usable KVM;
// VirtualBox is not packaged; vagrant-libvirt on qemu without KVM boots a
// machine in minutes and needs a box kprep cannot download). The machines
// are systemd containers made from the lab's own root file system (ubuntu22
// personality) plus what a Vagrant box has: the vagrant user with Vagrant's
// insecure key (vagrant replaces it with a key of its own per machine) and
// passwordless sudo. Vagrant publishes each machine's port 22 on
// 127.0.0.1:2222, 2200, ... as it forwards ports under VirtualBox, and gives
// each a second interface on the private network, so the NAT trap is real:
// eth0 (docker's bridge, the default route) must not become the node address.

// vagrantPersonality is the lab personality the Vagrant machines are made of.
const vagrantPersonality = "ubuntu22"

func TestVagrantLab(t *testing.T) {
	skipUnlessE2E(t)
	for _, tool := range []string{"vagrant", "dockerd", "docker"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the Vagrant proof needs Debian's vagrant and docker.io (.ci/run installs them)", tool)
		}
	}
	l := bootLab(t, vagrantPersonality) // for its package mirror
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	docker := startDockerd(t)
	image := vagrantImage(ctx, t, docker)

	dir := t.TempDir()
	copyFile(t, filepath.Join(repoRoot(t), "inventories", "vagrant", "Vagrantfile"), filepath.Join(dir, "Vagrantfile"))
	env := append(os.Environ(), docker.env...)
	env = append(env,
		"VAGRANT_HOME="+filepath.Join(dir, ".vagrant.d"),
		"VAGRANT_CHECKPOINT_DISABLE=1",
		"KPREP_VAGRANT_COUNT=2",
		"KPREP_VAGRANT_OS="+vagrantPersonality,
		"KPREP_VAGRANT_DOCKER_IMAGE="+image,
		// runc cannot grant what this machine's own bounding set lacks.
		"KPREP_VAGRANT_DOCKER_CAP_DROP="+strings.Join(missingCapabilities(t), ","),
	)
	vagrant := func(args ...string) string {
		t.Helper()
		start := time.Now()
		cmd := exec.CommandContext(ctx, "vagrant", args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("vagrant %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("vagrant %s: %s", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
		return string(out)
	}
	vagrant("validate")
	t.Cleanup(func() {
		cmd := exec.Command("vagrant", "destroy", "--force")
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("vagrant destroy: %v\n%s", err, out)
		}
	})
	vagrant("up", "--provider=docker")

	// kprep init --vagrant, as the README says, then validate.
	start := time.Now()
	cmd := exec.CommandContext(ctx, kprepBinary(t), "init", "--vagrant", dir)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kprep init --vagrant: %v\n%s", err, stderr.String())
	}
	t.Logf("kprep init --vagrant: %s", time.Since(start).Round(100*time.Millisecond))
	generated := stdout.String()
	inv := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(inv, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(kprepBinary(t), "validate", "-i", inv).CombinedOutput(); err != nil {
		t.Fatalf("kprep validate of init's inventory: %v\n%s\n%s", err, out, generated)
	}

	// What init wrote: the private addresses, read from the machines, for
	// the cluster; Vagrant's forwarded ports and keys for the login.
	var doc struct {
		Hosts []struct {
			Name, Address string
			SSH           struct {
				Address, PrivateKeyFile string
				Port                    int
			}
		}
	}
	if err := yaml.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	sshConfig := vagrant("ssh-config")
	if len(doc.Hosts) != 2 {
		t.Fatalf("init wrote %d hosts, want 2:\n%s", len(doc.Hosts), generated)
	}
	for i, h := range doc.Hosts {
		wantName, wantAddr := fmt.Sprintf("node%d", i+1), fmt.Sprintf("192.168.56.%d", 10+i)
		if h.Name != wantName || h.Address != wantAddr {
			t.Errorf("host %d: %s at %s, want %s at %s (the private network)", i, h.Name, h.Address, wantName, wantAddr)
		}
		if h.SSH.Address != "127.0.0.1" || !strings.Contains(sshConfig, fmt.Sprintf("Port %d\n", h.SSH.Port)) ||
			!strings.Contains(sshConfig, "IdentityFile "+h.SSH.PrivateKeyFile+"\n") {
			t.Errorf("host %s logs in at %s port %d with %s; vagrant ssh-config says:\n%s", h.Name, h.SSH.Address, h.SSH.Port, h.SSH.PrivateKeyFile, sshConfig)
		}
		// The machine itself agrees: the address is its eth1's, and the
		// default route (the NAT) is on another interface.
		ip := vagrant("ssh", h.Name, "-c", "ip -4 -o addr show dev eth1; ip -4 route show default")
		if !strings.Contains(ip, " "+h.Address+"/") || strings.Contains(ip, "dev eth1") {
			t.Errorf("%s: eth1 and the default route:\n%s", h.Name, ip)
		}
	}

	// The lab's mirror instead of the internet: the same docker and
	// kubernetes settings as the lab's own inventory.
	applyInv := editInventoryFile(t, inv, func(doc map[string]any) {
		labDoc := readYAML(t, l.InventoryPath())
		doc["docker"], doc["kubernetes"] = labDoc["docker"], labDoc["kubernetes"]
	})
	rep := runKprep(t, l, 0, "apply", "-i", applyInv, "--phase", "hostprep", "--phase", "runtime")
	rep.requireNoFailures(t)
	for i, h := range doc.Hosts {
		if s := rep.step(t, h.Name, "runtime/packages"); s.Status != "changed" {
			t.Errorf("%s runtime/packages: %s, want changed (docker-ce installed)", h.Name, s.Status)
		}
		// The package the inventory pins (the lab's docker-ce packages
		// Debian's dockerd under Docker CE's names), running; the hostname
		// set; /etc/hosts naming the other node by its private address.
		other := doc.Hosts[1-i]
		out := vagrant("ssh", h.Name, "-c", "dpkg-query -W -f '${Version}\\n' docker-ce; sudo systemctl is-active docker; hostname; getent hosts "+other.Name)
		if !strings.Contains(out, lab.DockerVersion) || !strings.Contains(out, "\nactive\n") || !strings.Contains(out, "\n"+h.Name+"\n") ||
			!strings.Contains(out, other.Address) {
			t.Errorf("%s after apply (want docker-ce %s, docker active, hostname %s, %s at %s):\n%s", h.Name, lab.DockerVersion, h.Name, other.Name, other.Address, out)
		}
	}
	again := runKprep(t, l, 0, "apply", "-i", applyInv, "--phase", "hostprep", "--phase", "runtime")
	again.requireUnchanged(t, "hostprep/")
	again.requireUnchanged(t, "runtime/")
}

// dockerd is the test's own Docker daemon: its own socket, state and
// network settings, leaving the machine's iptables and forwarding alone.
type dockerd struct {
	env []string // DOCKER_HOST for docker and vagrant
}

// startDockerd starts a dockerd for the test and stops it at the end. Its
// images stay in the lab cache (vagrant-docker/), so a warm run imports
// nothing.
func startDockerd(t *testing.T) dockerd {
	t.Helper()
	run := filepath.Join("/run", "kprep-vagrant-docker")
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(run, "docker.sock")
	logFile, err := os.Create(filepath.Join(t.TempDir(), "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dockerd",
		"--host=unix://"+sock, "--pidfile="+filepath.Join(run, "docker.pid"),
		"--exec-root="+filepath.Join(run, "exec"), "--data-root="+filepath.Join(lab.CacheDirFromEnv(), "vagrant-docker"),
		// No NAT, forwarding or firewall rules on the shared machine: the
		// machines talk to this machine (the lab's mirror) and each other only.
		"--iptables=false", "--ip-forward=false", "--ip-masq=false",
		"--containerd-namespace=kprep-vagrant", "--containerd-plugins-namespace=kprep-vagrant-plugins")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Errorf("dockerd did not stop in 60 s; killed")
		}
		logFile.Close()
		// dockerd leaves its bridge behind; nothing else here uses it.
		if out, err := exec.Command("ip", "link", "del", "docker0").CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
			t.Errorf("remove dockerd's bridge docker0: %v\n%s", err, out)
		}
	})
	d := dockerd{env: []string{"DOCKER_HOST=unix://" + sock}}
	waitFor(t, "dockerd to answer", func() bool {
		select {
		case err := <-done:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("dockerd exited: %v\n%s", err, log)
		default:
		}
		return d.docker(context.Background(), "version") == nil
	})
	return d
}

func (d dockerd) docker(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), d.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// systemdContainerScript makes a copy of the lab's root file system boot
// as a docker container the way a VM boots: SSH host keys made at first
// boot (the lab makes them per host; an image has none), and /etc/hosts,
// hostname and resolv.conf as plain files (docker bind-mounts them, and
// kprep renames files into place as on any host).
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
rm -f /etc/ssh/ssh_host_*
: >/etc/machine-id
`

// vagrantBoxScript adds what a Vagrant box has: the vagrant user with
// Vagrant's insecure key (stdin) and passwordless sudo.
const vagrantBoxScript = `set -eu
id vagrant >/dev/null 2>&1 || useradd -m -s /bin/bash vagrant
install -d -m 700 -o vagrant -g vagrant /home/vagrant/.ssh
cat >/home/vagrant/.ssh/authorized_keys
chown vagrant:vagrant /home/vagrant/.ssh/authorized_keys
chmod 600 /home/vagrant/.ssh/authorized_keys
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/vagrant
chmod 440 /etc/sudoers.d/vagrant
`

// vagrantImage is the lab's root file system made into a Vagrant box for
// the docker provider.
func vagrantImage(ctx context.Context, t *testing.T, d dockerd) string {
	t.Helper()
	return labImage(ctx, t, d, "kprep-vagrant", systemdContainerScript+vagrantBoxScript, vagrantInsecureKey(t), false)
}

// labImage imports the lab's root file system (vagrantPersonality) with
// script run in it (stdin on its standard input; with network, this
// machine's resolv.conf and Debian's mirror for apt) as a docker image named
// repo, once per recipe: the tag hashes the layers' folders, which carry
// the lab's recipe keys, the script and its input.
func labImage(ctx context.Context, t *testing.T, d dockerd, repo, script, stdin string, network bool) string {
	t.Helper()
	layers, err := lab.PersonalityLayers(ctx, lab.Options{}, vagrantPersonality)
	if err != nil {
		t.Fatalf("the lab's %s root file system: %v", vagrantPersonality, err)
	}
	sum := sha256.Sum256([]byte(strings.Join(layers, "\n") + "\x00" + script + "\x00" + stdin))
	image := repo + "/" + vagrantPersonality + ":" + hex.EncodeToString(sum[:6])
	if d.docker(ctx, "image", "inspect", image) == nil {
		return image
	}
	start := time.Now()
	tmp := t.TempDir()
	upper, work, merged := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, p := range []string{upper, work, merged} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(layers, ":"), upper, work)
	if out, err := exec.Command("mount", "-t", "overlay", "overlay", "-o", opts, merged).CombinedOutput(); err != nil {
		t.Fatalf("mount the lab's root file system: %v\n%s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", merged).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", merged, err, out)
		}
	}()
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	if network {
		copyFile(t, "/etc/resolv.conf", filepath.Join(merged, "etc", "resolv.conf"))
		mirror := os.Getenv("KPREP_LAB_DEBIAN_MIRROR")
		if mirror == "" {
			mirror = "http://deb.debian.org/debian"
		}
		env = append(env, "DEBIAN_MIRROR="+mirror)
	}
	build := exec.CommandContext(ctx, "chroot", merged, "/bin/bash", "-c", script)
	build.Stdin, build.Env = strings.NewReader(stdin), env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make the image %s: %v\n%s", image, err, out)
	}
	tarCmd := exec.CommandContext(ctx, "tar", "-C", merged, "--numeric-owner", "--xattrs", "-c", ".")
	imp := exec.CommandContext(ctx, "docker", "import", "--change", `CMD ["/sbin/init"]`, "-", image)
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
	t.Logf("image %s made in %s", image, time.Since(start).Round(100*time.Millisecond))
	return image
}

// vagrantInsecureKey is the public half of the key every Vagrant box
// trusts at first boot, as Debian's vagrant package ships it.
func vagrantInsecureKey(t *testing.T) string {
	t.Helper()
	keys, _ := filepath.Glob("/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub")
	if len(keys) == 0 {
		t.Fatal("Vagrant's insecure public key (keys/vagrant.pub of Debian's vagrant package) is not there")
	}
	b, err := os.ReadFile(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// editInventoryFile writes a copy of an inventory, changed by edit, and
// returns its path.
func editInventoryFile(t *testing.T, path string, edit func(doc map[string]any)) string {
	t.Helper()
	doc := readYAML(t, path)
	edit(doc)
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(edited, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return edited
}
