package inventory

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	headerNoKube = "apiVersion: kprep/v1\nkind: Cluster\nmetadata: {name: lab}\n"
	header       = headerNoKube + "kubernetes: {version: 1.34.4}\n"
)

func TestDefaultsKeepWhatTheFileSays(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Cluster)
	}{
		{"logOpts {} stays empty", header + "hosts: [{name: a, address: 10.0.0.1, roles: [control-plane]}]\ndocker: {logOpts: {}}\n",
			func(t *testing.T, c *Cluster) {
				if len(c.Docker.LogOpts) != 0 {
					t.Errorf("logOpts = %v, want none: an empty mapping asks for dockerd's own", c.Docker.LogOpts)
				}
			}},
		{"logOpts for json-file given explicitly", header + "hosts: [{name: a, address: 10.0.0.1, roles: [control-plane]}]\ndocker: {logDriver: json-file, logOpts: {max-size: 10m}}\n",
			func(t *testing.T, c *Cluster) {
				if diff := cmp.Diff(map[string]string{"max-size": "10m"}, c.Docker.LogOpts); diff != "" {
					t.Errorf("logOpts (-want +got):\n%s", diff)
				}
			}},
		{"bastion defaults to port 22 and the cluster's user", header + "ssh: {user: ops, bastion: {address: jump}}\nhosts: [{name: a, address: 10.0.0.1, roles: [control-plane]}]\n",
			func(t *testing.T, c *Cluster) {
				want := &Bastion{Address: "jump", Port: 22, User: "ops"}
				if diff := cmp.Diff(want, c.Hosts[0].Connection.Bastion); diff != "" {
					t.Errorf("bastion (-want +got):\n%s", diff)
				}
			}},
		{"a host's bastion replaces the cluster's", header + "ssh: {bastion: {address: jump1, user: j}}\nhosts: [{name: a, address: 10.0.0.1, roles: [control-plane], ssh: {bastion: {address: jump2, port: 2022}}}]\n",
			func(t *testing.T, c *Cluster) {
				want := &Bastion{Address: "jump2", Port: 2022, User: "root"}
				if diff := cmp.Diff(want, c.Hosts[0].Connection.Bastion); diff != "" {
					t.Errorf("bastion (-want +got):\n%s", diff)
				}
			}},
		{"relative key against the inventory folder, ~ against home", header + "ssh: {privateKeyFile: keys/id, knownHostsFile: ~/kh}\nhosts: [{name: a, address: 10.0.0.1, roles: [control-plane]}]\n",
			func(t *testing.T, c *Cluster) {
				conn := c.Hosts[0].Connection
				if conn.PrivateKeyFile != "/inv/keys/id" || conn.KnownHostsFile != abs(t, "testdata/home/kh") {
					t.Errorf("key %q, known_hosts %q", conn.PrivateKeyFile, conn.KnownHostsFile)
				}
			}},
		{"failCgroupV1 is the kubelet's own default from 1.35", headerNoKube + "hosts: [{name: a, address: 10.0.0.1, roles: [control-plane]}]\nkubernetes: {version: 1.35.0}\n",
			func(t *testing.T, c *Cluster) {
				if !*c.Kubernetes.Kubelet.FailCgroupV1 {
					t.Error("failCgroupV1 = false on 1.35, whose kubelet defaults it to true")
				}
			}},
		{"external mode leaves localEndpoint empty", headerNoKube + "hosts: [{name: a, address: 10.0.0.1, roles: [control-plane]}]\nkubernetes: {version: 1.34.4, controlPlaneEndpoint: lb.example.com}\n",
			func(t *testing.T, c *Cluster) {
				if c.Kubernetes.LocalMode() || c.Kubernetes.LocalEndpoint != (LocalEndpoint{}) || c.Kubernetes.APIEndpoint() != "lb.example.com" {
					t.Errorf("localEndpoint %+v, endpoint %q", c.Kubernetes.LocalEndpoint, c.Kubernetes.APIEndpoint())
				}
			}},
		{"conntrackMaxPerCore 0 is kept", headerNoKube + "hosts: [{name: a, address: 10.0.0.1, roles: [control-plane]}]\nkubernetes: {version: 1.34.4, kubeProxy: {conntrackMaxPerCore: 0}}\n",
			func(t *testing.T, c *Cluster) {
				if *c.Kubernetes.KubeProxy.ConntrackMaxPerCore != 0 {
					t.Errorf("conntrackMaxPerCore = %d, want the 0 written", *c.Kubernetes.KubeProxy.ConntrackMaxPerCore)
				}
			}},
		{"hostname false is kept", header + "hosts: [{name: a, address: 10.0.0.1, roles: [control-plane]}]\nhostprep: {hostname: false}\n",
			func(t *testing.T, c *Cluster) {
				if *c.Hostprep.Hostname {
					t.Error("hostname: false became true")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(t)
			opts.FileExists = func(string) bool { return true }
			c, err := Parse("/inv/cluster.yaml", []byte(tt.yaml), opts)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestApplyDefaultsTwiceChangesNothing(t *testing.T) {
	c, err := LoadWith("testdata/good/full.yaml", testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	before := *c
	before.Hosts = append([]Host(nil), c.Hosts...)
	ApplyDefaults(c, testOptions(t))
	if diff := cmp.Diff(&before, c, cmpopts.IgnoreUnexported(Cluster{})); diff != "" {
		t.Errorf("second ApplyDefaults (-first +second):\n%s", diff)
	}
}

// TestCodeBuiltCluster goes the way a caller without a file does:
// ApplyDefaults, Validate; errors then carry field paths but no place.
func TestCodeBuiltCluster(t *testing.T) {
	c := &Cluster{
		APIVersion: APIVersion, Kind: KindCluster, Metadata: Metadata{Name: "lab"},
		Hosts: []Host{
			{Name: "cp1", Address: "10.0.0.1", Roles: []string{RoleControlPlane}},
			{Name: "w1", Address: "10.0.0.2", Roles: []string{RoleWorker}, SSH: &SSH{User: "ubuntu", Port: 2222}},
		},
		Kubernetes: Kubernetes{Version: "1.34.4"},
	}
	opts := testOptions(t)
	ApplyDefaults(c, opts)
	if err := Validate(c, opts); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := c.Hosts[1].Connection; got.User != "ubuntu" || got.Port != 2222 || got.ConnectTimeout != 10*time.Second {
		t.Errorf("w1 connection = %+v", got)
	}
	c.Hosts[1].Address = "10.0.0.1"
	c.Kubernetes.CNI = "cilium"
	err := Validate(c, opts)
	want := "hosts[1].address: 10.0.0.1 is already the address of hosts[0] (cp1)\n" +
		`kubernetes.cni: "cilium" is not one of flannel, calico, none`
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v\nwant %s", err, want)
	}
}
