package preflight

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
)

// recorded parses a facts probe recording of provision/facts/testdata.
func recorded(t *testing.T, name string) facts.Facts {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "provision", "facts", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	f, err := facts.Parse(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// cluster loads a one-host inventory with the given kubernetes and
// hostprep blocks (YAML flow mappings' insides).
func cluster(t *testing.T, kube, hostprep, docker string) *inventory.Cluster {
	t.Helper()
	text := "apiVersion: kprep/v1\nkind: Cluster\nmetadata: {name: t}\n" +
		"hosts: [{name: h1, address: 192.168.77.10, roles: [control-plane, worker]}]\n" +
		"kubernetes: {" + kube + "}\nhostprep: {" + hostprep + "}\ndocker: {" + docker + "}\n"
	c, err := inventory.Parse("cluster.yaml", []byte(text), inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMatrix is the preflight matrix: recorded hosts against the
// Kubernetes versions and settings that matter to them. Each row lists every
// problem expected, as "severity check", in Check's order.
func TestMatrix(t *testing.T) {
	const tools = "warning conntrack,warning socat"
	tests := []struct {
		name, facts            string
		kube, hostprep, docker string
		want                   string
	}{
		{"CentOS 7 (3.10) with 1.34", "centos7.txt", `version: "1.34.4"`, "", "",
			"error kernel," + tools},
		{"CentOS 7 with 1.31, the newest for its kernel", "centos7.txt", `version: "1.31.14"`, "", "",
			tools},
		{"CentOS 7 with 1.35: kernel, and cgroup v1 refused by default", "centos7.txt", `version: "1.35.0"`, "", "",
			"error kernel,error cgroup-v1," + tools},
		{"CentOS 7 with 1.35 allowing cgroup v1", "centos7.txt", `version: "1.35.0", kubelet: {failCgroupV1: false}`, "", "",
			"error kernel," + tools},
		{"CentOS 7 keeping its swap", "centos7.txt", `version: "1.31.14"`, "swap: keep", "",
			tools + ",error swap"},
		{"swap turned off by hostprep is no problem", "centos7.txt", `version: "1.31.14"`, "swap: off", "",
			tools},
		{"CentOS 7 with nftables kube-proxy", "centos7.txt", `version: "1.31.14", kubeProxy: {mode: nftables}`, "", "",
			"error nftables-kernel," + tools},
		{"ipvs where the kernel has no ip_vs", "debian12-no-systemd.txt", `version: "1.34.4", kubeProxy: {mode: ipvs}`, "", "",
			"error ipvs,warning containerd," + tools},
		{"ipvs on 1.35 where the modules are there: deprecated", "rocky9.txt", `version: "1.35.0", kubeProxy: {mode: ipvs}`, "", "",
			"warning ipvs," + tools},
		{"Rocky 9 with 1.34 and nothing installed", "rocky9.txt", `version: "1.34.4"`, "", "",
			tools},
		{"Kylin's 4.19 kernel with 1.34: nothing wrong", "kylin-v10.txt", `version: "1.34.4"`, "", "",
			""},
		{"containerd 1.7.25 is below 1.34's recommended 1.7.28", "ubuntu2204.txt", `version: "1.34.4"`, "", "",
			"warning containerd,warning socat"},
		{"containerd 1.7.25 is recommended for 1.33", "ubuntu2204.txt", `version: "1.33.5"`, "", "",
			"warning socat"},
		{"containerd 1.6 for 1.35: not recommended at all, and cgroup v1 refused", "kunpeng-openeuler2203.txt", `version: "1.35.0"`, "", "",
			"error cgroup-v1,warning containerd"},
		{"cri-dockerd 0.3.16 on the installed Docker 27.5.1", "ubuntu2204.txt", `version: "1.34.4", cri: cri-dockerd`, "", "",
			"warning socat"},
		{"cri-dockerd 0.3.12+ on Docker 20.10", "ubuntu2204.txt", `version: "1.34.4", cri: cri-dockerd, criDockerd: {version: "0.3.14"}`, "", `version: "20.10.24"`,
			"error docker,warning socat"},
		{"Docker 29 with an older cri-dockerd", "ubuntu2204.txt", `version: "1.34.4", cri: cri-dockerd, criDockerd: {version: "0.3.15"}`, "", `version: "29.0.1"`,
			"error cri-dockerd,warning socat"},
		{"cri-dockerd without CRI v1", "ubuntu2204.txt", `version: "1.34.4", cri: cri-dockerd, criDockerd: {version: "0.2.6"}`, "", "",
			"error cri-dockerd,warning socat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster(t, tt.kube, tt.hostprep, tt.docker)
			problems := Check(c, &c.Hosts[0], recorded(t, tt.facts))
			var got []string
			for _, p := range problems {
				got = append(got, string(p.Severity)+" "+p.Check)
				if p.Summary == "" || p.Fix == "" {
					t.Errorf("%s has no summary or no fix: %+v", p.Check, p)
				}
			}
			var want []string
			if tt.want != "" {
				want = strings.Split(tt.want, ",")
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s\nall of them:\n%v", diff, problems)
			}
		})
	}
}

// TestMessagesSayWhatWorks pins the words of the checks whose fix names
// versions or kernels, which a user acts on.
func TestMessagesSayWhatWorks(t *testing.T) {
	c := cluster(t, `version: "1.35.0"`, "", "")
	problems := Check(c, &c.Hosts[0], recorded(t, "centos7.txt"))
	want := map[string][]string{
		"kernel":    {"kernel 3.10.0-1160.el7.x86_64 is older than 4.19", `kubernetes.version: "1.31.14"`, "ELRepo's kernel-lt (5.4) or kernel-ml"},
		"cgroup-v1": {"kubernetes.kubelet.failCgroupV1: false", "CentOS 7's systemd cannot run cgroup v2", "plan Kubernetes 1.34"},
		"conntrack": {"conntrack-tools"},
	}
	for _, p := range problems {
		for _, w := range want[p.Check] {
			if !strings.Contains(p.Summary+" "+p.Fix, w) {
				t.Errorf("%s: %q lacks %q", p.Check, p.String(), w)
			}
		}
		delete(want, p.Check)
	}
	for check := range want {
		t.Errorf("no %s problem", check)
	}
}

func TestIgnoreFlag(t *testing.T) {
	if flag, err := IgnoreFlag(KubeadmIgnores); err != nil || flag != "" {
		t.Errorf("kprep's own list: %q, %v; the lab's init and join needed no ignored check", flag, err)
	}
	flag, err := IgnoreFlag([]IgnoredCheck{{"Swap", "r1"}, {"SystemVerification", "r2"}})
	if err != nil || flag != "--ignore-preflight-errors=Swap,SystemVerification" {
		t.Errorf("two checks: %q, %v", flag, err)
	}
	for _, bad := range [][]IgnoredCheck{{{"all", "lazy"}}, {{"ALL", "lazy"}}, {{"Swap", ""}}, {{"Swap,Port-6443", "x"}}} {
		if _, err := IgnoreFlag(bad); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}
