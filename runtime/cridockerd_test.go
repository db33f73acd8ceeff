package runtime

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/steptest"
)

func TestCRIDockerd(t *testing.T) {
	c := labCluster()
	c.Kubernetes.CRI = "cri-dockerd"
	changes := mustDiff(t, CRIDockerdStep{}, input(c, rocky9, "version_cri-dockerd=\nfile service -\nfile socket -\n"))
	if diff := cmp.Diff([]string{"cri-dockerd is not installed (want 0.3.16)", "cri-docker.service is missing"}, summariesOf(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if u := changes[0].Data.Install.URL; u != "https://github.com/Mirantis/cri-dockerd/releases/download/v0.3.16/cri-dockerd-0.3.16.amd64.tgz" {
		t.Errorf("url %s", u)
	}
	units := changes[1].Data.Units
	if !strings.Contains(string(units.Service), "ExecStart=/usr/bin/cri-dockerd --container-runtime-endpoint fd:// --pod-infra-container-image=192.168.77.1:5000/google_containers/pause:3.10.1\n") {
		t.Errorf("service:\n%s", units.Service)
	}
	state := "version_cri-dockerd=cri-dockerd 0.3.16 (91d0a07)\n" + fileRecord("service", string(units.Service)) + fileRecord("socket", string(units.Socket))
	if again := mustDiff(t, CRIDockerdStep{}, input(c, rocky9, state)); len(again) != 0 {
		t.Errorf("converged: %v", summariesOf(again))
	}
	c.Kubernetes.CRIDockerd.Version = "0.3.17"
	changes = mustDiff(t, CRIDockerdStep{}, input(c, openEuler, state))
	if diff := cmp.Diff([]string{"cri-dockerd 0.3.16 is installed; the inventory pins 0.3.17"}, summariesOf(changes)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if u := changes[0].Data.Install.URL; !strings.HasSuffix(u, "cri-dockerd-0.3.17.arm64.tgz") {
		t.Errorf("aarch64 url %s", u)
	}
	host := &steptest.FakeHost{}
	if err := (CRIDockerdStep{}).Apply(context.Background(), host.Target(&c.Hosts[0]), input(c, openEuler, ""), changes); err != nil {
		t.Fatal(err)
	}
	if len(host.Ran) != 1 || !strings.Contains(host.Ran[0], "install -m 0755") {
		t.Errorf("ran %q", host.Ran)
	}
}

func TestStepsForTheCRI(t *testing.T) {
	c := labCluster()
	if !(ContainerdStep{}).AppliesTo(&c.Hosts[0], c) || (CRIDockerdStep{}).AppliesTo(&c.Hosts[0], c) {
		t.Error("containerd cluster")
	}
	c.Kubernetes.CRI = "cri-dockerd"
	if (ContainerdStep{}).AppliesTo(&c.Hosts[0], c) || !(CRIDockerdStep{}).AppliesTo(&c.Hosts[0], c) {
		t.Error("cri-dockerd cluster")
	}
}

// The install snippet runs for real here: curl fetches a tarball made on
// the spot from a file:// URL, and the sum decides whether it is installed.
func TestCRIDockerdInstallChecksTheSHA256(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "src/cri-dockerd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src/cri-dockerd/cri-dockerd"), []byte("#!/bin/sh\necho cri-dockerd 0.3.16\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tgz := filepath.Join(dir, "cri-dockerd.tgz")
	runSh(t, "tar -czf "+tgz+" -C "+filepath.Join(dir, "src")+" cri-dockerd")
	sum := strings.Fields(runSh(t, "sha256sum "+tgz))[0]
	dest := filepath.Join(dir, "bin", "cri-dockerd")
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		t.Fatal(err)
	}

	wrong := strings.Repeat("0", 64)
	out, err := exec.Command("sh", "-c", installCriDockerd(criDockerdInstall{URL: "file://" + tgz, SHA256: wrong}, dest)).CombinedOutput()
	if err == nil {
		t.Fatal("a tarball with the wrong sum was installed")
	}
	if !strings.Contains(string(out), "SHA-256 "+sum+", but "+wrong+" was expected") {
		t.Errorf("error does not name both sums: %s", out)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Errorf("something was installed at %s after a mismatch", dest)
	}

	if out, err := exec.Command("sh", "-c", installCriDockerd(criDockerdInstall{URL: "file://" + tgz, SHA256: sum}, dest)).CombinedOutput(); err != nil {
		t.Fatalf("install with the right sum: %v\n%s", err, out)
	}
	if got := runSh(t, dest); got != "cri-dockerd 0.3.16\n" {
		t.Errorf("installed binary prints %q", got)
	}
}

func TestCRIDockerdUnknownVersionNeedsASum(t *testing.T) {
	c := labCluster()
	c.Kubernetes.CRI = "cri-dockerd"
	c.Kubernetes.CRIDockerd.Version = "0.3.19"
	_, err := CRIDockerdStep{}.Diff(input(c, rocky9, "version_cri-dockerd=\nfile service -\nfile socket -\n"))
	if err == nil || !strings.Contains(err.Error(), "set kubernetes.criDockerd.sha256.amd64") {
		t.Fatalf("err = %v", err)
	}
	c.Kubernetes.CRIDockerd.SHA256 = map[string]string{"amd64": strings.Repeat("a", 64)}
	changes := mustDiff(t, CRIDockerdStep{}, input(c, rocky9, "version_cri-dockerd=\nfile service -\nfile socket -\n"))
	if got := changes[0].Data.Install.SHA256; got != strings.Repeat("a", 64) {
		t.Errorf("sum = %q, want the inventory's", got)
	}
}
