package kubeadmconfig

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/provision/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files from what Render writes now")

// Versions the golden files cover: the newest minor kprep plans, which
// takes v1beta4, and one that takes v1beta3.
var goldenVersions = []string{"1.34.4", "1.30.14"}

// Modes are the inventories in testdata/clusters, one per way of serving
// the API endpoint.
var goldenModes = []string{"single", "local-ha", "external-ha"}

// loadCluster reads testdata/clusters/<mode>.yaml at a Kubernetes version.
func loadCluster(t *testing.T, mode, version string) *inventory.Cluster {
	t.Helper()
	path := filepath.Join("testdata", "clusters", mode+".yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "VERSION", version, 1))
	c, err := inventory.Parse(path, data, inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// goldenPath is testdata/<version>/<mode>/<role>.yaml. The test module in
// test/kubebuild hands every one of them to the real kubeadm.
func goldenPath(version, mode string, role Role) string {
	return filepath.Join("testdata", version, mode, string(role)+".yaml")
}

// TestGolden renders the first host of each role of each mode at each
// version and compares it with its golden file. The configuration depends
// on the inventory only, never on the host's operating system: kubeadm
// itself points the kubelet at systemd-resolved's resolv.conf on the hosts
// that run it, the node IP is the inventory's, and kprep's runtime steps
// give every OS the systemd cgroup driver.
func TestGolden(t *testing.T) {
	seen := 0
	for _, version := range goldenVersions {
		for _, mode := range goldenModes {
			c := loadCluster(t, mode, version)
			done := map[Role]bool{}
			for i := range c.Hosts {
				h := &c.Hosts[i]
				role := RoleOf(c, h)
				if done[role] {
					continue
				}
				done[role] = true
				t.Run(fmt.Sprintf("%s/%s/%s", version, mode, role), func(t *testing.T) {
					got, err := Render(c, h, nil)
					if err != nil {
						t.Fatal(err)
					}
					compareGolden(t, goldenPath(version, mode, role), got)
				})
				seen++
			}
		}
	}
	if files, _ := filepath.Glob("testdata/*/*/*.yaml"); len(files) != seen {
		t.Errorf("%d golden files, %d rendered: remove the stale ones", len(files), seen)
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./kube/kubeadmconfig -update writes it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from what Render writes (go test -update rewrites it):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// docs splits a rendered configuration into its documents, keyed by kind.
func docs(t *testing.T, data []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatal(err)
		}
		out[d["kind"].(string)] = d
	}
}

// path reads a nested value like "discovery.bootstrapToken.token".
func path(d map[string]any, p string) any {
	var v any = d
	for _, k := range strings.Split(p, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestJoinCarriesTheCredentialsGiven(t *testing.T) {
	c := loadCluster(t, "local-ha", "1.34.4")
	creds := &Credentials{
		Token:          "abcdef.0123456789abcdef",
		CACertHash:     "sha256:" + strings.Repeat("ab", 32),
		CertificateKey: strings.Repeat("cd", 32),
	}
	out, err := Render(c, c.Host("cp2"), creds)
	if err != nil {
		t.Fatal(err)
	}
	j := docs(t, out)["JoinConfiguration"]
	if got := path(j, "discovery.bootstrapToken.token"); got != creds.Token {
		t.Errorf("token = %v", got)
	}
	if got := path(j, "discovery.bootstrapToken.caCertHashes"); fmt.Sprint(got) != "["+creds.CACertHash+"]" {
		t.Errorf("caCertHashes = %v", got)
	}
	if got := path(j, "controlPlane.certificateKey"); got != creds.CertificateKey {
		t.Errorf("certificateKey = %v", got)
	}
	if strings.Contains(string(out), "placeholder") || strings.Contains(string(out), "unsafeSkipCAVerification") {
		t.Errorf("a join with credentials shows a placeholder or skips CA verification:\n%s", out)
	}
}

func TestJoinRefusesMissingCredentials(t *testing.T) {
	c := loadCluster(t, "local-ha", "1.34.4")
	for _, tt := range []struct {
		host  string
		creds Credentials
		want  string
	}{
		{"w1", Credentials{Token: "abcdef.0123456789abcdef"}, "host w1: a join needs a bootstrap token and the CA hash"},
		{"cp2", Credentials{Token: "abcdef.0123456789abcdef", CACertHash: PlaceholderCACertHash}, "host cp2: a control-plane join needs the certificate key"},
	} {
		if _, err := Render(c, c.Host(tt.host), &tt.creds); err == nil || err.Error() != tt.want {
			t.Errorf("%s: error %v, want %q", tt.host, err, tt.want)
		}
	}
}

// TestNodeIdentity checks what decides how a node is reached, for each
// host of each mode: its own address advertised and registered, the
// endpoint always set, every control plane in the certificate.
func TestNodeIdentity(t *testing.T) {
	for _, mode := range goldenModes {
		c := loadCluster(t, mode, "1.34.4")
		for i := range c.Hosts {
			h := &c.Hosts[i]
			out, err := Render(c, h, nil)
			if err != nil {
				t.Fatal(err)
			}
			d := docs(t, out)
			reg := "InitConfiguration"
			if RoleOf(c, h) != RoleInit {
				reg = "JoinConfiguration"
			}
			args := fmt.Sprint(path(d[reg], "nodeRegistration.kubeletExtraArgs"))
			if args != "[map[name:node-ip value:"+h.Address+"]]" {
				t.Errorf("%s/%s: kubeletExtraArgs = %s, want node-ip %s", mode, h.Name, args, h.Address)
			}
			if got := path(d[reg], "nodeRegistration.name"); got != h.Name {
				t.Errorf("%s/%s: node name %v", mode, h.Name, got)
			}
			if RoleOf(c, h) == RoleInit {
				if got := path(d["InitConfiguration"], "localAPIEndpoint.advertiseAddress"); got != h.Address {
					t.Errorf("%s/%s: advertiseAddress %v", mode, h.Name, got)
				}
				sans := fmt.Sprint(path(d["ClusterConfiguration"], "apiServer.certSANs"))
				for _, cp := range c.ControlPlanes() {
					if !strings.Contains(sans, cp.Address) || !strings.Contains(sans, cp.Name) {
						t.Errorf("%s: certSANs %s lack %s (%s)", mode, sans, cp.Name, cp.Address)
					}
				}
				if ep := path(d["ClusterConfiguration"], "controlPlaneEndpoint"); ep == nil || ep == "" {
					t.Errorf("%s: no controlPlaneEndpoint", mode)
				}
			}
		}
	}
}

func TestTaintsFollowRolesAndInventory(t *testing.T) {
	c := loadCluster(t, "local-ha", "1.34.4")
	want := map[string]string{
		"cp1": "[map[effect:NoSchedule key:node-role.kubernetes.io/control-plane]]",
		"cp3": "[]", // control plane and worker: untainted, written as an empty list
		"w1":  "[]",
	}
	for name, taints := range want {
		out, err := Render(c, c.Host(name), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs(t, out) {
			if reg := path(d, "nodeRegistration.taints"); reg != nil && fmt.Sprint(reg) != taints {
				t.Errorf("%s: taints %v, want %s", name, reg, taints)
			}
		}
	}
}

func TestRenderRefusesANameAsAddress(t *testing.T) {
	c := loadCluster(t, "single", "1.34.4")
	c.Hosts[1].Address = "w1.example.com"
	_, err := Render(c, &c.Hosts[1], nil)
	if err == nil || !strings.Contains(err.Error(), `host w1: address "w1.example.com" is a name`) {
		t.Errorf("error %v", err)
	}
}
