package kube

import (
	"context"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/provision/steptest"
)

// adminConfFixture is admin.conf as kubeadm v1.34 writes it (keys shortened).
const adminConfFixture = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://kube-apiserver.kprep.internal:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVAo=
    client-key-data: S0VZCg==
`

func TestAdminKubeconfigNamesAServerTheOperatorReaches(t *testing.T) {
	c := cluster()
	host := &steptest.FakeHost{Replies: map[string]string{"cat /etc/kubernetes/admin.conf": adminConfFixture}}
	out, err := AdminKubeconfig(context.Background(), host, c)
	if err != nil {
		t.Fatal(err)
	}
	var kc struct {
		Clusters []struct {
			Cluster map[string]string
			Name    string
		}
		Users []struct {
			User map[string]string
		}
		CurrentContext string `yaml:"current-context"`
	}
	if err := yaml.Unmarshal(out, &kc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(kc.Clusters) != 1 || kc.Clusters[0].Cluster["server"] != "https://192.168.77.11:6443" ||
		kc.Clusters[0].Cluster["certificate-authority-data"] != "Q0EK" || kc.Clusters[0].Name != "kubernetes" {
		t.Errorf("clusters: %+v", kc.Clusters)
	}
	if len(kc.Users) != 1 || kc.Users[0].User["client-key-data"] != "S0VZCg==" || kc.CurrentContext != "kubernetes-admin@kubernetes" {
		t.Errorf("the rest changed:\n%s", out)
	}

	// Behind a load balancer the endpoint is the operator's too: unchanged.
	c.Kubernetes.ControlPlaneEndpoint = "lb.example.com:6443"
	lb := strings.Replace(adminConfFixture, "kube-apiserver.kprep.internal", "lb.example.com", 1)
	host = &steptest.FakeHost{Replies: map[string]string{"cat ": lb}}
	if out, err := AdminKubeconfig(context.Background(), host, c); err != nil || string(out) != lb {
		t.Errorf("external mode: %v\n%s", err, out)
	}

	// Local mode on another port.
	c.Kubernetes.ControlPlaneEndpoint = ""
	c.Kubernetes.LocalEndpoint.Port = 7443
	if got := OperatorServer(c); got != "https://192.168.77.11:7443" {
		t.Errorf("OperatorServer = %q", got)
	}
}

func TestAdminKubeconfigErrors(t *testing.T) {
	c := cluster()
	host := &steptest.FakeHost{Fail: map[string]string{"cat ": "cat: /etc/kubernetes/admin.conf: No such file or directory"}}
	if _, err := AdminKubeconfig(context.Background(), host, c); err == nil || !strings.Contains(err.Error(), "has apply brought the cluster up?") {
		t.Errorf("no admin.conf: %v", err)
	}
	for _, bad := range []string{"{", "- a\n", "kind: Config\n", "clusters:\n- cluster: {}\n  name: x\n"} {
		host := &steptest.FakeHost{Replies: map[string]string{"cat ": bad}}
		if _, err := AdminKubeconfig(context.Background(), host, c); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
