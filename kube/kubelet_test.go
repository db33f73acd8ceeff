package kube

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/steptest"
)

const wantEnv = "# Written by kprep: the kubelet's flags on this node.\n" +
	"# Edits are overwritten; the node IP is the host's address in the inventory.\n" +
	"KUBELET_EXTRA_ARGS=--node-ip=192.168.77.11\n"

// kubeadmConfig is the head of the config.yaml kubeadm 1.34 writes.
const kubeadmConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
kind: KubeletConfiguration
`

func TestKubeletDiff(t *testing.T) {
	packaged := steptest.FileRecord("sysconfig", "KUBELET_EXTRA_ARGS=\n")
	tests := []struct {
		name, state string
		ubuntu      bool
		want        []string
		restart     bool
	}{
		{name: "as the package left it, before kubeadm", state: packaged + "active=activating\n",
			want: []string{"/etc/sysconfig/kubelet was not written by kprep and differs from what it should hold (it is backed up before kprep replaces it) (node IP 192.168.77.11)"}},
		{name: "Ubuntu's file is /etc/default/kubelet", ubuntu: true, state: "file default -\nactive=inactive\n",
			want: []string{"/etc/default/kubelet is missing"}},
		{name: "converged and joined", state: steptest.FileRecord("sysconfig", wantEnv) + steptest.FileRecord("config", kubeadmConfig) +
			steptest.FileRecord("flags", `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=x"`+"\n") + "active=active\n"},
		{name: "a node IP edited on a running node", state: steptest.FileRecord("sysconfig", strings.Replace(wantEnv, ".11", ".99", 1)) + "active=active\n",
			want: []string{"/etc/sysconfig/kubelet differs from what it should hold (node IP 192.168.77.11)"}, restart: true},
		{name: "cgroup driver edited by hand", state: steptest.FileRecord("sysconfig", wantEnv) +
			steptest.FileRecord("config", strings.Replace(kubeadmConfig, "cgroupDriver: systemd", "cgroupDriver: cgroupfs", 1)) + "active=active\n",
			want: []string{`/var/lib/kubelet/config.yaml sets cgroupDriver "cgroupfs"; the runtime uses systemd`}, restart: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := rocky9
			if tt.ubuntu {
				f = ubuntu
			}
			changes := mustDiff(t, KubeletStep{}, input(labCluster(t), f, tt.state))
			if diff := cmp.Diff(tt.want, steptest.Summaries(changes)); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
			for _, c := range changes {
				if c.Data.Restart != tt.restart {
					t.Errorf("%s: restart %v, want %v", c.Key, c.Data.Restart, tt.restart)
				}
				if c.Key == "env" && string(c.Data.Content) != wantEnv {
					t.Errorf("env file:\n%s", c.Data.Content)
				}
			}
		})
	}
}

func TestKubeletCgroupDriverIsPutBack(t *testing.T) {
	state := steptest.FileRecord("sysconfig", wantEnv) + steptest.FileRecord("config", strings.Replace(kubeadmConfig, "cgroupDriver: systemd\n", "", 1)) + "active=active\n"
	in := input(labCluster(t), rocky9, state)
	changes := mustDiff(t, KubeletStep{}, in)
	host := &steptest.FakeHost{}
	apply(t, KubeletStep{}, in, changes, host)
	fixed := string(host.Written["/var/lib/kubelet/config.yaml"])
	if !strings.Contains(fixed, "cgroupDriver: systemd") || !strings.Contains(fixed, "clusterDNS:") || !strings.Contains(fixed, "enabled: false") {
		t.Errorf("config.yaml, cgroupDriver added and the rest kept:\n%s", fixed)
	}
	if diff := cmp.Diff([]string{"systemctl try-restart kubelet"}, host.Ran); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Once written back, it is converged.
	again := steptest.FileRecord("sysconfig", wantEnv) + steptest.FileRecord("config", fixed) + "active=active\n"
	if changes := mustDiff(t, KubeletStep{}, input(labCluster(t), rocky9, again)); len(changes) != 0 {
		t.Errorf("after the fix: %v", steptest.Summaries(changes))
	}
}

func TestKubeletRefusesAnotherCRISocket(t *testing.T) {
	c := labCluster(t)
	c.Kubernetes.CRI = "cri-dockerd"
	for _, state := range []string{
		steptest.FileRecord("flags", `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock"`+"\n"),
		steptest.FileRecord("instance", "containerRuntimeEndpoint: \"unix:///run/containerd/containerd.sock\"\n"),
	} {
		_, err := KubeletStep{}.Diff(input(c, rocky9, state+"active=active\n"))
		if err == nil || !strings.Contains(err.Error(), "joined with the CRI socket unix:///run/containerd/containerd.sock") ||
			!strings.Contains(err.Error(), "kubernetes.cri cri-dockerd is unix:///run/cri-dockerd.sock") {
			t.Errorf("error %v", err)
		}
	}
}

// kubeadm's own detection writes /var/run/..., kprep's configuration
// /run/...: one socket (seen on the lab after a join cut off halfway).
func TestKubeletTakesVarRunForRun(t *testing.T) {
	c := labCluster(t)
	for _, endpoint := range []string{"unix:///var/run/containerd/containerd.sock", "/run/containerd/containerd.sock", "unix:///run/containerd/containerd.sock"} {
		state := steptest.FileRecord("instance", "containerRuntimeEndpoint: \""+endpoint+"\"\n") + "active=active\n"
		if _, err := (KubeletStep{}).Diff(input(c, rocky9, state)); err != nil {
			t.Errorf("%s: %v", endpoint, err)
		}
	}
}

func TestKubeletNeedsAnIP(t *testing.T) {
	c := labCluster(t)
	c.Hosts[0].Address = "cp1.lab"
	if _, err := (KubeletStep{}).Diff(input(c, rocky9, "active=inactive\n")); err == nil || !strings.Contains(err.Error(), `host cp1: address "cp1.lab" is a name`) {
		t.Errorf("error %v", err)
	}
}
