package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
	images := newTestImages(ctx, t)
	image := images.image(ctx, t, docker, images.vagrant)

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
	// the cluster; Vagrant's forwarded ports and keys for the login. The
	// checks look at the containers themselves (docker port, docker exec),
	// not through vagrant or kprep.
	var doc struct {
		Hosts []struct {
			Name, Address string
			SSH           struct {
				Address        string
				PrivateKeyFile string `yaml:"privateKeyFile"`
				Port           int
			}
		}
	}
	if err := yaml.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Hosts) != 2 {
		t.Fatalf("init wrote %d hosts, want 2:\n%s", len(doc.Hosts), generated)
	}
	machines := map[string]vagrantMachine{}
	for i, h := range doc.Hosts {
		wantName, wantAddr := fmt.Sprintf("node%d", i+1), fmt.Sprintf("192.168.56.%d", 10+i)
		if h.Name != wantName || h.Address != wantAddr {
			t.Errorf("host %d: %s at %s, want %s at %s (the private network)", i, h.Name, h.Address, wantName, wantAddr)
		}
		m := openVagrantMachine(ctx, t, docker, dir, h.Name)
		machines[h.Name] = m
		if h.SSH.Address != "127.0.0.1" || h.SSH.Port != m.sshPort || h.SSH.PrivateKeyFile != m.keyFile {
			t.Errorf("host %s logs in at %s port %d with %s; vagrant forwarded 127.0.0.1:%d and keeps the key in %s",
				h.Name, h.SSH.Address, h.SSH.Port, h.SSH.PrivateKeyFile, m.sshPort, m.keyFile)
		}
		// The machine itself agrees: the address is its eth1's, and the
		// default route (the NAT) is on another interface.
		ip := m.sh(ctx, t, "ip -4 -o addr show dev eth1; ip -4 route show default")
		if !strings.Contains(ip, " "+h.Address+"/") || strings.Contains(ip, "dev eth1") {
			t.Errorf("%s: eth1 and the default route:\n%s", h.Name, ip)
		}
	}

	// The lab's mirror instead of the internet: the same docker and
	// kubernetes settings as the lab's own inventory, whose URLs name the
	// lab's bridge address. The machines reach it through their default
	// route (the tests' docker bridge): it is an address of this machine.
	applyInv := editInventoryFile(t, inv, func(doc map[string]any) {
		labDoc := readYAML(t, l.InventoryPath())
		doc["docker"], doc["kubernetes"] = labDoc["docker"], labDoc["kubernetes"]
	})
	start = time.Now()
	rep := runKprep(t, l, 0, "apply", "-i", applyInv, "--phase", "hostprep", "--phase", "runtime")
	rep.requireNoFailures(t)
	t.Logf("kprep apply --phase hostprep,runtime: %s", time.Since(start).Round(100*time.Millisecond))
	for _, h := range rep.Hosts {
		var slow []string
		for _, s := range h.Steps {
			if s.DurationMs >= 1000 {
				slow = append(slow, fmt.Sprintf("%s %.1fs", s.Name, float64(s.DurationMs)/1000))
			}
		}
		t.Logf("%s: steps of a second or more: %s", h.Name, strings.Join(slow, ", "))
	}
	mirrorLog, err := os.ReadFile(filepath.Join(l.StateDir(), "mirror.log"))
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range doc.Hosts {
		m := machines[h.Name]
		if s := rep.step(t, h.Name, "runtime/packages"); s.Status != "changed" {
			t.Errorf("%s runtime/packages: %s, want changed (docker-ce installed)", h.Name, s.Status)
		}
		// The package the inventory pins (the lab's docker-ce packages
		// Debian's dockerd under Docker CE's names), running; the hostname
		// set; /etc/hosts naming the other node by its private address.
		other := doc.Hosts[1-i]
		out := m.sh(ctx, t, "dpkg-query -W -f '${Version}\\n' docker-ce; systemctl is-active docker; hostname; getent hosts "+other.Name)
		if !strings.Contains(out, lab.DockerVersion) || !strings.Contains(out, "\nactive\n") || !strings.Contains(out, "\n"+h.Name+"\n") ||
			!strings.Contains(out, other.Address) {
			t.Errorf("%s after apply (want docker-ce %s, docker active, hostname %s, %s at %s):\n%s", h.Name, lab.DockerVersion, h.Name, other.Name, other.Address, out)
		}
		// docker-ce came from the lab's mirror, fetched from the machine's
		// NAT address.
		if !regexp.MustCompile(`(?m) ` + regexp.QuoteMeta(m.natAddr) + `:\d+ GET /docker-ce/linux/ubuntu/\S*/docker-ce_[^ ]*\.deb 200 `).Match(mirrorLog) {
			t.Errorf("%s: the lab mirror's log (%s) has no docker-ce download from %s", h.Name, l.MirrorURL(), m.natAddr)
		}
	}
	start = time.Now()
	again := runKprep(t, l, 0, "apply", "-i", applyInv, "--phase", "hostprep", "--phase", "runtime")
	again.requireUnchanged(t, "hostprep/")
	again.requireUnchanged(t, "runtime/")
	t.Logf("kprep apply again: %s", time.Since(start).Round(100*time.Millisecond))
}

// vagrantMachine is a machine of the docker provider, as docker knows it.
type vagrantMachine struct {
	d       dockerd
	id      string // the container
	sshPort int    // the port on 127.0.0.1 that vagrant forwarded to its 22
	keyFile string // the key vagrant made for it
	natAddr string // its eth0 address, on the tests' docker bridge
}

// openVagrantMachine finds machine name of the Vagrant project in dir.
func openVagrantMachine(ctx context.Context, t *testing.T, d dockerd, dir, name string) vagrantMachine {
	t.Helper()
	machine := filepath.Join(dir, ".vagrant", "machines", name, "docker")
	id, err := os.ReadFile(filepath.Join(machine, "id"))
	if err != nil {
		t.Fatalf("vagrant's record of %s: %v", name, err)
	}
	m := vagrantMachine{d: d, id: strings.TrimSpace(string(id)), keyFile: filepath.Join(machine, "private_key")}
	port, err := d.dockerOutput(ctx, "port", m.id, "22/tcp")
	if err != nil {
		t.Fatalf("docker port %s 22: %v\n%s", name, err, port)
	}
	_, p, ok := strings.Cut(strings.TrimSpace(strings.Split(port, "\n")[0]), "127.0.0.1:")
	if m.sshPort, err = strconv.Atoi(p); !ok || err != nil {
		t.Fatalf("docker port %s 22: %q, want 127.0.0.1:PORT", name, port)
	}
	addr, err := d.dockerOutput(ctx, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", m.id)
	if err != nil {
		t.Fatalf("docker inspect %s: %v\n%s", name, err, addr)
	}
	m.natAddr = strings.TrimSpace(addr)
	return m
}

// sh runs a shell line in the machine as root, without SSH.
func (m vagrantMachine) sh(ctx context.Context, t *testing.T, line string) string {
	t.Helper()
	out, err := m.d.dockerOutput(ctx, "exec", m.id, "sh", "-c", line)
	if err != nil {
		t.Fatalf("docker exec %s: %s: %v\n%s", m.id, line, err, out)
	}
	return out
}

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
