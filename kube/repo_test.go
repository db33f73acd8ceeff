package kube

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/steptest"
)

func TestRepoYum(t *testing.T) {
	c := labCluster(t)
	changes := mustDiff(t, RepoStep{}, input(c, rocky9, "file yumrepo -\nfile aptlist -\nkeyring=1\n"))
	if diff := cmp.Diff([]string{"/etc/yum.repos.d/kubernetes.repo is missing"}, steptest.Summaries(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	repo := string(changes[0].Data.Content)
	for _, want := range []string{
		"[kubernetes]\n",
		// the base given with a trailing slash, the minor's folder as pkgs.k8s.io lays it out
		"baseurl=http://192.168.77.1:8080/kubernetes-new/core/stable/v1.34/rpm/\n",
		"gpgcheck=1\n",
		"gpgkey=http://192.168.77.1:8080/kubernetes-new/core/stable/v1.34/rpm/repodata/repomd.xml.key\n",
		"exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n",
	} {
		if !strings.Contains(repo, want) {
			t.Errorf("kubernetes.repo lacks %q:\n%s", want, repo)
		}
	}
	converged := steptest.FileRecord("yumrepo", repo) + "file aptlist -\nkeyring=1\n"
	if changes := mustDiff(t, RepoStep{}, input(c, centos7, converged)); len(changes) != 0 {
		t.Errorf("converged: %v", steptest.Summaries(changes))
	}
	// A new minor in the inventory is a new repo.
	c.Kubernetes.Version = "1.35.0"
	changes = mustDiff(t, RepoStep{}, input(c, rocky9, converged))
	if len(changes) != 1 || !strings.Contains(string(changes[0].Data.Content), "/v1.35/rpm/") {
		t.Errorf("1.35: %+v", steptest.Summaries(changes))
	}
	host := &steptest.FakeHost{}
	apply(t, RepoStep{}, input(c, rocky9, converged), changes, host)
	if _, ok := host.Written["/etc/yum.repos.d/kubernetes.repo"]; !ok || len(host.Ran) != 0 {
		t.Errorf("wrote %v, ran %v", host.Written, host.Ran)
	}
}

func TestRepoApt(t *testing.T) {
	c := labCluster(t)
	changes := mustDiff(t, RepoStep{}, input(c, ubuntu, "file yumrepo -\nfile aptlist -\nkeyring=1\n"))
	if diff := cmp.Diff([]string{"aptlist", "keyring"}, steptest.Keys(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	list := string(changes[0].Data.Content)
	if !strings.Contains(list, "deb [signed-by=/etc/apt/keyrings/kubernetes.asc] http://192.168.77.1:8080/kubernetes-new/core/stable/v1.34/deb/ /\n") {
		t.Errorf("kubernetes.list:\n%s", list)
	}
	if changes[1].Data.KeyURL != "http://192.168.77.1:8080/kubernetes-new/core/stable/v1.34/deb/Release.key" {
		t.Errorf("key URL %s", changes[1].Data.KeyURL)
	}
	host := &steptest.FakeHost{}
	apply(t, RepoStep{}, input(c, ubuntu, ""), changes, host)
	if len(host.Ran) != 1 || !strings.Contains(host.Ran[0], "Release.key") || !strings.Contains(host.Ran[0], "/etc/apt/keyrings/kubernetes.asc") {
		t.Errorf("ran %v", host.Ran)
	}
	converged := "file yumrepo -\n" + steptest.FileRecord("aptlist", list) + "keyring=0\n"
	if changes := mustDiff(t, RepoStep{}, input(c, ubuntu, converged)); len(changes) != 0 {
		t.Errorf("converged: %v", steptest.Summaries(changes))
	}
	if changes := mustDiff(t, RepoStep{}, input(c, ubuntu, "file yumrepo -\n"+steptest.FileRecord("aptlist", list)+"keyring=1\n")); len(changes) != 1 || changes[0].Key != "keyring" {
		t.Errorf("key removed: %v", steptest.Summaries(changes))
	}
}
