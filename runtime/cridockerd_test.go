package runtime

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCRIDockerd(t *testing.T) {
	c := labCluster()
	c.Kubernetes.CRI = "cri-dockerd"
	changes := mustDiff(t, CRIDockerdStep{}, input(c, rocky9, "version=sh: 1: /usr/bin/cri-dockerd: not found\nfile service -\nfile socket -\n"))
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
	state := "version=cri-dockerd 0.3.16 (91d0a07)\n" + fileRecord("service", string(units.Service)) + fileRecord("socket", string(units.Socket))
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
	host := &fakeHost{}
	if err := (CRIDockerdStep{}).Apply(context.Background(), host.target(c), input(c, openEuler, ""), changes); err != nil {
		t.Fatal(err)
	}
	if len(host.ran) != 1 || !strings.Contains(host.ran[0], "install -m 0755") {
		t.Errorf("ran %q", host.ran)
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
