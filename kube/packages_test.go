package kube

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/steptest"
	"github.com/kprep/kprep/runtime"
)

// rpmState is the packages probe of an EL host with kubelet, kubeadm and
// kubectl at v and kubernetes-cni installed, the kubelet in state.
func rpmState(v, kubelet string) string {
	return "rpm kubelet (none):" + v + "-150500.1.1\nrpm kubeadm (none):" + v + "-150500.1.1\nrpm kubectl (none):" + v +
		"-150500.1.1\nrpm kubernetes-cni (none):1.5.1-150500.1.1\nheld=\nkubelet=" + kubelet + "\n"
}

func TestPackagesDiff(t *testing.T) {
	tests := []struct {
		name, state string
		f           string
		want        []string
	}{
		{name: "fresh EL host", state: "held=\nkubelet=\n", want: []string{
			"kubelet is not installed (the inventory pins 1.34.4)",
			"kubeadm is not installed (the inventory pins 1.34.4)",
			"kubectl is not installed (the inventory pins 1.34.4)",
			"kubernetes-cni is not installed",
			"the kubelet is not installed at boot"}},
		{name: "converged EL host", state: rpmState("1.34.4", "enabled")},
		{name: "kubelet disabled", state: rpmState("1.34.4", "disabled"), want: []string{"the kubelet is disabled at boot"}},
		{name: "upgrade", state: rpmState("1.34.3", "enabled"), want: []string{
			"kubelet 1.34.3 is installed; the inventory pins 1.34.4 (upgrade)",
			"kubeadm 1.34.3 is installed; the inventory pins 1.34.4 (upgrade)",
			"kubectl 1.34.3 is installed; the inventory pins 1.34.4 (upgrade)"}},
		{name: "downgrade", state: rpmState("1.35.0", "enabled"), want: []string{
			"kubelet 1.35.0 is installed; the inventory pins 1.34.4 (downgrade)",
			"kubeadm 1.35.0 is installed; the inventory pins 1.34.4 (downgrade)",
			"kubectl 1.35.0 is installed; the inventory pins 1.34.4 (downgrade)"}},
		{name: "Ubuntu, held", f: "ubuntu", state: "deb kubelet 1.34.4-1.1 ii \ndeb kubeadm 1.34.4-1.1 ii \ndeb kubectl 1.34.4-1.1 ii \ndeb kubernetes-cni 1.5.1-1.1 ii \n" +
			"held=kubeadm kubectl kubelet kubernetes-cni\nkubelet=enabled\n"},
		{name: "Ubuntu, a hold lifted by hand", f: "ubuntu", state: "deb kubelet 1.34.4-1.1 ii \ndeb kubeadm 1.34.4-1.1 ii \ndeb kubectl 1.34.4-1.1 ii \ndeb kubernetes-cni 1.5.1-1.1 ii \n" +
			"held=kubeadm kubectl kubernetes-cni\nkubelet=enabled\n",
			want: []string{"not held, so an apt upgrade would move them off the pinned version: kubelet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := rocky9
			if tt.f == "ubuntu" {
				f = ubuntu
			}
			changes := mustDiff(t, PackagesStep{}, input(labCluster(t), f, tt.state))
			if diff := cmp.Diff(tt.want, steptest.Summaries(changes)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// yumList is `yum -q list --showduplicates kubelet kubeadm kubectl` of the
// lab's mirror, which carries 1.34.3 and 1.34.4.
const yumList = `Available Packages
kubeadm.x86_64                 1.34.3-150500.1.1                 kubernetes
kubeadm.x86_64                 1.34.4-150500.1.1                 kubernetes
kubectl.x86_64                 1.34.3-150500.1.1                 kubernetes
kubectl.x86_64                 1.34.4-150500.1.1                 kubernetes
kubelet.x86_64                 1.34.3-150500.1.1                 kubernetes
kubelet.x86_64                 1.34.4-150500.1.1                 kubernetes
`

func TestPackagesApplyYum(t *testing.T) {
	c := labCluster(t)
	in := input(c, rocky9, "held=\nkubelet=\n")
	host := &steptest.FakeHost{Replies: map[string]string{"yum -q": yumList}}
	apply(t, PackagesStep{}, in, mustDiff(t, PackagesStep{}, in), host)
	want := []string{
		"yum -q '--disablerepo=*' --enablerepo=kubernetes --disableexcludes=kubernetes list --showduplicates kubelet kubeadm kubectl",
		runtime.YumTransaction("install", []string{"kubernetes"}, []string{"--disableexcludes=kubernetes",
			"kubelet-1.34.4-150500.1.1", "kubeadm-1.34.4-150500.1.1", "kubectl-1.34.4-150500.1.1", "kubernetes-cni"}),
		"systemctl enable kubelet",
	}
	if diff := cmp.Diff(want, host.Ran); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}

	// A version change downgrades with yum downgrade, past the exclude.
	in = input(c, rocky9, rpmState("1.35.0", "enabled"))
	host = &steptest.FakeHost{Replies: map[string]string{"yum -q": yumList}}
	apply(t, PackagesStep{}, in, mustDiff(t, PackagesStep{}, in), host)
	if got := host.Ran[1]; !strings.HasPrefix(got, "out=$(yum downgrade -y '--disablerepo=*' --enablerepo=kubernetes --disableexcludes=kubernetes kubelet-1.34.4-150500.1.1 kubeadm-1.34.4-150500.1.1 kubectl-1.34.4-150500.1.1 2>&1)") {
		t.Errorf("downgrade: %s", got)
	}

	// A version the repo lacks names the ones it has.
	c.Kubernetes.Version = "1.34.9"
	in = input(c, rocky9, rpmState("1.34.4", "enabled"))
	err := PackagesStep{}.Apply(t.Context(), (&steptest.FakeHost{Replies: map[string]string{"yum -q": yumList}}).Target(&c.Hosts[0]), in, mustDiff(t, PackagesStep{}, in))
	if err == nil || !strings.Contains(err.Error(), "kubelet 1.34.9 is not in the Kubernetes repo http://192.168.77.1:8080/kubernetes-new/core/stable/v1.34, which has these versions: 1.34.3, 1.34.4; set kubernetes.version to one of them") {
		t.Errorf("missing version: %v", err)
	}
}

// TestPackagesAptHoldsAgainAfterAMove pins what the lab showed: apt lifts
// the hold of a package it installs at another version, so kprep holds
// them again after every install, even when they were all held before.
func TestPackagesAptHoldsAgainAfterAMove(t *testing.T) {
	c := labCluster(t)
	in := input(c, ubuntu, "deb kubelet 1.34.3-1.1 ii \ndeb kubeadm 1.34.3-1.1 ii \ndeb kubectl 1.34.3-1.1 ii \ndeb kubernetes-cni 1.5.1-1.1 ii \n"+
		"held=kubeadm kubectl kubelet kubernetes-cni\nkubelet=enabled\n")
	changes := mustDiff(t, PackagesStep{}, in)
	if diff := cmp.Diff([]string{"kubelet", "kubeadm", "kubectl"}, steptest.Keys(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	host := &steptest.FakeHost{Replies: map[string]string{"apt-cache madison": " kubelet | 1.34.4-1.1 | x\n kubeadm | 1.34.4-1.1 | x\n kubectl | 1.34.4-1.1 | x\n"}}
	apply(t, PackagesStep{}, in, changes, host)
	if last := host.Ran[len(host.Ran)-1]; last != "apt-mark hold kubelet kubeadm kubectl kubernetes-cni" {
		t.Errorf("last command %q, want the packages held again", last)
	}
}

func TestPackagesApplyApt(t *testing.T) {
	c := labCluster(t)
	c.Kubernetes.Version = "1.34.3"
	in := input(c, ubuntu, "deb kubelet 1.34.4-1.1 ii \ndeb kubeadm 1.34.4-1.1 ii \ndeb kubectl 1.34.4-1.1 ii \ndeb kubernetes-cni 1.5.1-1.1 ii \nheld=\nkubelet=enabled\n")
	madison := " kubelet | 1.34.4-1.1 | http://192.168.77.1:8080/kubernetes-new/core/stable/v1.34/deb  Packages\n" +
		" kubelet | 1.34.3-1.1 | http://192.168.77.1:8080/kubernetes-new/core/stable/v1.34/deb  Packages\n" +
		" kubeadm | 1.34.3-1.1 | x\n kubectl | 1.34.3-1.1 | x\n"
	host := &steptest.FakeHost{Replies: map[string]string{"apt-cache madison": madison}}
	apply(t, PackagesStep{}, in, mustDiff(t, PackagesStep{}, in), host)
	want := []string{
		aptUpdateKube,
		"apt-cache madison kubelet kubeadm kubectl",
		"DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades --allow-change-held-packages -o Dpkg::Options::=--force-confold kubelet=1.34.3-1.1 kubeadm=1.34.3-1.1 kubectl=1.34.3-1.1",
		"apt-mark hold kubelet kubeadm kubectl kubernetes-cni",
	}
	if diff := cmp.Diff(want, host.Ran); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
}
