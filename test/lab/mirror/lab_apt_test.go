package mirror

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// aptIn returns apt-get and apt-cache runners that see only the given
// sources (with keys fetched from the tree, as kprep does on a host) and
// keep their lists, cache and package status in a throwaway folder.
func aptIn(t *testing.T, base string) (aptGet, aptCache func(args ...string) (string, error)) {
	dir := t.TempDir()
	for _, d := range []string{"lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// apt reads ASCII-armoured keys in signed-by when the name ends in .asc.
	dockerKey, kubeKey := filepath.Join(dir, "docker.asc"), filepath.Join(dir, "kubernetes.asc")
	fetch(t, base+"/"+dockerKeyUbuntu, dockerKey)
	fetch(t, base+"/"+KubeDebPath+"/Release.key", kubeKey)
	sources := fmt.Sprintf("deb [arch=amd64 signed-by=%s] %s/%s jammy stable\ndeb [signed-by=%s] %s/%s/ /\n",
		dockerKey, base, DockerAptPath, kubeKey, base, KubeDebPath)
	if err := writeFile(filepath.Join(dir, "sources.list"), []byte(sources), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(dir, "status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := []string{
		"-o", "Dir::Etc::sourcelist=" + filepath.Join(dir, "sources.list"),
		"-o", "Dir::Etc::sourceparts=" + filepath.Join(dir, "sources.list.d"),
		"-o", "Dir::Etc::preferencesparts=" + filepath.Join(dir, "preferences.d"),
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "Dir::State::status=" + filepath.Join(dir, "status"),
		"-o", "APT::Architecture=amd64",
		"-o", "Debug::NoLocking=1",
	}
	// They run in the throwaway folder: `apt-get download` saves into the
	// working directory, which must never be the source tree.
	run := func(tool string) func(args ...string) (string, error) {
		return func(args ...string) (string, error) {
			cmd := exec.Command(tool, append(opts, args...)...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
	}
	return run("apt-get"), run("apt-cache")
}

// fetch downloads url to path.
func fetch(t *testing.T, url, path string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	if err := writeFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLabAptSeesBothDockerVersionsSigned(t *testing.T) {
	tree := labTree(t)
	needTool(t, "apt-get")
	base, log := serveTree(t, tree.Root)
	aptGet, aptCache := aptIn(t, base)
	out, err := aptGet("update")
	if err != nil || strings.Contains(out, "NO_PUBKEY") || strings.Contains(out, "not signed") {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	madison, err := aptCache("madison", "docker-ce", "kubeadm", "kubernetes-cni")
	if err != nil {
		t.Fatalf("apt-cache madison: %v\n%s", err, madison)
	}
	var want []string
	for _, v := range UbuntuDockerVersions {
		_, deb, _ := dockerVersion(formatDeb, "docker-ce", v, dockerDebDist)
		want = append(want, deb)
	}
	for _, v := range KubePackageVersions {
		want = append(want, v+"-1.1")
	}
	for _, w := range append(want, KubernetesCNIVersion+"-1.1") {
		if !strings.Contains(madison, " "+w+" ") {
			t.Errorf("apt-cache madison lacks %s:\n%s", w, madison)
		}
	}
	// A pinned install resolves with only the repos' own packages.
	sim, err := aptGet("-s", "install", "docker-ce=5:26.1.5-1~ubuntu.22.04~jammy", "docker-ce-cli=5:26.1.5-1~ubuntu.22.04~jammy", "containerd.io", "kubeadm=1.34.4-1.1", "kubelet=1.34.4-1.1")
	if err != nil {
		t.Fatalf("apt-get -s install: %v\n%s", err, sim)
	}
	for _, w := range []string{"Inst docker-ce (5:26.1.5-1~ubuntu.22.04~jammy", "Inst containerd.io (1.7.24-1", "Inst kubernetes-cni (1.5.1-1.1"} {
		if !strings.Contains(sim, w) {
			t.Errorf("apt-get -s install lacks %q:\n%s", w, sim)
		}
	}
	// Downloading checks the index's size and digests against the file.
	if out, err := aptGet("download", "docker-ce-cli=5:20.10.24~3-0~ubuntu-jammy"); err != nil {
		t.Fatalf("apt-get download: %v\n%s", err, out)
	}
	if !strings.Contains(log.String(), "/"+DockerAptPath+"/dists/jammy/InRelease 200") {
		t.Errorf("apt did not fetch the signed InRelease:\n%s", log.String())
	}
}

func TestLabDebsCarryTheRealLayout(t *testing.T) {
	tree := labTree(t)
	pool := filepath.Join(tree.Root, DockerAptPath, "dists/jammy/pool/stable/amd64")
	containerd := filepath.Join(pool, "containerd.io_1.7.24-1_amd64.deb")
	if got := mustRun(t, "dpkg-deb", "--ctrl-tarfile", containerd); got == "" {
		t.Fatal("containerd.io has no control archive")
	}
	conffiles := mustRun(t, "sh", "-c", "dpkg-deb --ctrl-tarfile "+containerd+" | tar -xO ./conffiles")
	if strings.TrimSpace(conffiles) != "/etc/containerd/config.toml" {
		t.Errorf("containerd.io conffiles = %q", conffiles)
	}
	contents := mustRun(t, "dpkg-deb", "--contents", filepath.Join(pool, "docker-ce_26.1.5-1~ubuntu.22.04~jammy_amd64.deb"))
	for _, f := range []string{"./usr/bin/dockerd", "./lib/systemd/system/docker.service", "./lib/systemd/system/docker.socket"} {
		if !strings.Contains(contents, f+"\n") {
			t.Errorf("docker-ce deb lacks %s:\n%s", f, contents)
		}
	}
	postinst := mustRun(t, "sh", "-c", "dpkg-deb --ctrl-tarfile "+filepath.Join(pool, "docker-ce_26.1.5-1~ubuntu.22.04~jammy_amd64.deb")+" | tar -xO ./postinst")
	if !strings.Contains(postinst, "deb-systemd-invoke $_dh_action 'docker.service' 'docker.socket'") {
		t.Errorf("docker-ce postinst does not start docker as Ubuntu's does:\n%s", postinst)
	}
	kubeadm := mustRun(t, "dpkg-deb", "--contents", filepath.Join(tree.Root, KubeDebPath, "amd64/kubeadm_1.34.4-1.1_amd64.deb"))
	if !strings.Contains(kubeadm, "./usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf\n") {
		t.Errorf("kubeadm deb lacks the drop-in:\n%s", kubeadm)
	}
}
