package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cloudInitScript installs Debian's cloud-init into the lab's root file
// system, reading only its NoCloud seed and leaving the network as docker
// sets it up; and en_US.UTF-8 generated, as cloud images have it
// (cloud-init's locale module sets it with update-locale at first boot).
const cloudInitScript = `set -eu
export DEBIAN_FRONTEND=noninteractive
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
echo "deb $DEBIAN_MIRROR bookworm main" >/etc/apt/sources.list
apt-get update -q
apt-get install -y -q --no-install-recommends cloud-init locales
sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen
locale-gen
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
: >/etc/apt/sources.list
printf 'datasource_list: [ NoCloud, None ]\n' >/etc/cloud/cloud.cfg.d/90-kprep-nocloud.cfg
printf 'network: {config: disabled}\n' >/etc/cloud/cloud.cfg.d/91-kprep-network.cfg
`

// TestCloudInitUserData proves inventories/multipass/user-data with Debian's
// real cloud-init: its schema check accepts the file (and refuses a broken
// copy), and a systemd host made from the lab's root file system, booted
// with the file as its NoCloud seed, lets kprep log in as the user it
// creates with the key it installs, and sudo works.
func TestCloudInitUserData(t *testing.T) {
	skipUnlessE2E(t)
	for _, tool := range []string{"dockerd", "docker", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (.ci/run installs docker.io)", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	d := startDockerd(t)
	images := newTestImages(ctx, t)
	image := images.image(ctx, t, d, images.cloudInit)

	shipped, err := os.ReadFile(filepath.Join(repoRoot(t), "inventories", "multipass", "user-data"))
	if err != nil {
		t.Fatal(err)
	}
	seed := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(seed, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("shipped", string(shipped))
	write("broken", strings.Replace(string(shipped), "lock_passwd: true", "lock_passwd: [true]", 1))
	schema := func(file string) (string, error) {
		out, err := d.dockerOutput(ctx, "run", "--rm", "-v", seed+":/seed:ro", image, "cloud-init", "schema", "--config-file", "/seed/"+file)
		return out, err
	}
	if out, err := schema("shipped"); err != nil || !strings.Contains(out, "Valid cloud-config") {
		t.Fatalf("cloud-init schema of the shipped user-data: %v\n%s", err, out)
	}
	if out, err := schema("broken"); err == nil {
		t.Fatalf("cloud-init schema accepted a broken copy (lock_passwd: [true]):\n%s", out)
	}

	// The operator's key in place, as README.md's sed line puts it.
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "operator@e2e", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	const placeholder = "ssh-ed25519 REPLACE-WITH-YOUR-PUBLIC-KEY operator@example"
	if !strings.Contains(string(shipped), placeholder) {
		t.Fatalf("the shipped user-data lacks the placeholder README.md's sed line replaces: %q", placeholder)
	}
	nocloud := t.TempDir()
	if err := os.WriteFile(filepath.Join(nocloud, "user-data"), []byte(strings.Replace(string(shipped), placeholder, strings.TrimSpace(string(pub)), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(nocloud, "meta-data"), []byte("instance-id: kprep-e2e\nlocal-hostname: ci1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	name := "kprep-cloudinit-e2e"
	booted := time.Now()
	_ = d.docker(ctx, "rm", "-f", name)
	args := append([]string{"run", "-d", "--name", name, "--hostname", "ci1", "-v", nocloud + ":/var/lib/cloud/seed/nocloud:ro"},
		systemdContainerArgs(t)...)
	if _, err := d.dockerOutput(ctx, append(args, image)...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.docker(context.Background(), "rm", "-f", name); err != nil {
			t.Errorf("remove the cloud-init host: %v", err)
		}
	})
	status, err := d.dockerOutput(ctx, "exec", name, "cloud-init", "status", "--wait", "--long")
	if err != nil || !strings.Contains(status, "status: done") {
		log, _ := d.dockerOutput(ctx, "exec", name, "tail", "-n", "40", "/var/log/cloud-init.log")
		t.Fatalf("cloud-init status: %v\n%s\n%s", err, status, log)
	}
	t.Logf("boot and cloud-init: %s", time.Since(booted).Round(100*time.Millisecond))
	addr, err := d.dockerOutput(ctx, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", name)
	if err != nil {
		t.Fatal(err)
	}
	addr = strings.TrimSpace(addr)

	// kprep: a starter for kprep@address with the key, validated, then a
	// real login that runs its probe through sudo.
	dir := t.TempDir()
	initCmd := exec.CommandContext(ctx, kprepBinary(t), "init", "--key", key, "kprep@"+addr)
	var inv bytes.Buffer
	initCmd.Stdout, initCmd.Stderr = &inv, os.Stderr
	if err := initCmd.Run(); err != nil {
		t.Fatalf("kprep init: %v", err)
	}
	path := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(path, inv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(dir, "known_hosts")
	edited := editInventoryFile(t, path, func(doc map[string]any) {
		doc["ssh"].(map[string]any)["knownHostsFile"] = kh // not root's own
	})
	if out, err := exec.Command(kprepBinary(t), "validate", "-i", edited).CombinedOutput(); err != nil {
		t.Fatalf("kprep validate: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, kprepBinary(t), "facts", "-i", edited, "-o", "json").Output()
	if err != nil {
		t.Fatalf("kprep facts as kprep with the installed key: %v\n%s", err, out)
	}
	var facts struct {
		Hosts []struct {
			Name, Error string
			Facts       struct {
				User string
				Sudo bool
			}
		}
	}
	if err := json.Unmarshal(out, &facts); err != nil {
		t.Fatalf("facts JSON: %v\n%s", err, out)
	}
	if len(facts.Hosts) != 1 || facts.Hosts[0].Error != "" || facts.Hosts[0].Facts.User != "kprep" || !facts.Hosts[0].Facts.Sudo {
		t.Fatalf("facts: %s", out)
	}
	// sudo without a password, as the user-data says.
	who, err := d.dockerOutput(ctx, "exec", "-u", "kprep", name, "sudo", "-n", "id", "-u")
	if err != nil || strings.TrimSpace(who) != "0" {
		t.Errorf("sudo -n as kprep: %v %q", err, who)
	}
}
