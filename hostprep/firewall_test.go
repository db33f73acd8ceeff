package hostprep

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/steptest"
)

func TestRulesFor(t *testing.T) {
	cp := &inventory.Host{Roles: []string{"control-plane"}}
	both := &inventory.Host{Roles: []string{"control-plane", "worker"}}
	w := &inventory.Host{Roles: []string{"worker"}}
	tests := []struct {
		host *inventory.Host
		cni  string
		pods []string
		want firewallRules
	}{
		{cp, "flannel", []string{"10.244.0.0/16"}, firewallRules{Ports: []string{"10250/tcp", "10257/tcp", "10259/tcp", "2379-2380/tcp", "6443/tcp", "8472/udp"}, Sources: []string{"10.244.0.0/16"}}},
		{w, "calico", []string{"192.168.0.0/16"}, firewallRules{Ports: []string{"10250/tcp", "10256/tcp", "179/tcp", "30000-32767/tcp", "4789/udp", "5473/tcp"}, Protocols: []string{"ipip"}, Sources: []string{"192.168.0.0/16"}}},
		{both, "none", []string{"10.244.0.0/16", "fd00:10:244::/56"}, firewallRules{Ports: []string{"10250/tcp", "10256/tcp", "10257/tcp", "10259/tcp", "2379-2380/tcp", "30000-32767/tcp", "6443/tcp"}, Sources: []string{"10.244.0.0/16", "fd00:10:244::/56"}}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, rulesFor(tt.host, tt.cni, tt.pods)); diff != "" {
			t.Errorf("%v %s (-want +got):\n%s", tt.host.Roles, tt.cni, diff)
		}
	}
}

func TestFirewallDiff(t *testing.T) {
	tests := []struct {
		name, mode, state string
		want              []string
	}{
		{"CentOS default", "disable", "firewalld_unit=0\nfirewalld_active=active\nfirewalld_enabled=enabled\nufw=\n", []string{"firewalld is running and enabled"}},
		{"stopped but enabled", "disable", "firewalld_unit=0\nfirewalld_active=inactive\nfirewalld_enabled=enabled\nufw=\n", []string{"firewalld is enabled at boot (not running now)"}},
		{"converged", "disable", "firewalld_unit=0\nfirewalld_active=inactive\nfirewalld_enabled=disabled\nufw=\n", nil},
		{"not installed", "disable", "firewalld_unit=1\nfirewalld_active=inactive\nfirewalld_enabled=\nufw=\n", nil},
		{"Ubuntu ufw on", "disable", "firewalld_unit=1\nufw=Status: active\n", []string{"ufw is active"}},
		{"keep", "keep", "firewalld_unit=0\nfirewalld_active=active\nfirewalld_enabled=enabled\n", nil},
		{"open ports", "open-ports", "firewalld_unit=0\nfirewalld_active=active\nfirewalld_enabled=enabled\nports_runtime=6443/tcp 10250/tcp\nports_permanent=10250/tcp 10257/tcp 10259/tcp 2379-2380/tcp 6443/tcp 8472/udp\n", []string{
			"firewalld does not let in now: 10257/tcp 10259/tcp 2379-2380/tcp 8472/udp",
			"firewalld does not trust the pod network now: 10.244.0.0/16 (forwarded pod traffic is rejected)",
			"firewalld does not trust the pod network at boot: 10.244.0.0/16 (forwarded pod traffic is rejected)",
			"/var/lib/kprep/firewall-opened does not list what kprep opened",
		}},
		// Everything open already (the user did it): nothing to do, nothing kprep owns.
		{"open ports, pod network trusted", "open-ports", "firewalld_unit=0\nfirewalld_active=active\nfirewalld_enabled=enabled\nports_runtime=10250/tcp 10257/tcp 10259/tcp 2379-2380/tcp 6443/tcp 8472/udp\nports_permanent=10250/tcp 10257/tcp 10259/tcp 2379-2380/tcp 6443/tcp 8472/udp\nsources_runtime=10.244.0.0/16\nsources_permanent=192.168.7.0/24 10.244.0.0/16\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := labCluster()
			c.Hostprep.Firewall = tt.mode
			changes, err := FirewallStep{}.Diff(input(c, centos7, tt.state))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summariesOf(changes)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// open-ports closes what kprep opened and no longer needs, and never a
// port the user opened: the control plane became a worker-only host.
func TestFirewallClosesOnlyWhatKprepOpened(t *testing.T) {
	c := labCluster()
	c.Hostprep.Firewall = "open-ports"
	c.Hosts[0].Roles = []string{"worker"}
	record := "# Written by kprep: ...\nfirewalld port 6443/tcp\nfirewalld port 10250/tcp\nfirewalld port 8472/udp\nfirewalld source 10.244.0.0/16\n"
	// 2379-2380 was open before kprep (the user's): not in the record.
	state := "firewalld_unit=0\nfirewalld_active=active\nfirewalld_enabled=enabled\nufw=\n" + steptest.FileRecord("opened", record) +
		"ports_runtime=6443/tcp 10250/tcp 2379-2380/tcp 8472/udp 10256/tcp 30000-32767/tcp\n" +
		"ports_permanent=6443/tcp 10250/tcp 2379-2380/tcp 8472/udp 10256/tcp 30000-32767/tcp\n" +
		"sources_runtime=10.244.0.0/16\nsources_permanent=10.244.0.0/16\n"
	changes, err := FirewallStep{}.Diff(input(c, centos7, state))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"firewalld lets in now: 6443/tcp, which kprep opened and the host no longer needs",
		"firewalld lets in at boot: 6443/tcp, which kprep opened and the host no longer needs",
		"/var/lib/kprep/firewall-opened does not list what kprep opened",
	}
	if diff := cmp.Diff(want, summariesOf(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if got := firewallCmds(*changes[1].Data.Ports); !cmp.Equal(got, []string{"firewall-cmd --permanent --remove-port=6443/tcp"}) {
		t.Errorf("commands %q", got)
	}
	if got := *changes[2].Data.Record; !strings.HasSuffix(got, "firewalld port 10250/tcp\nfirewalld port 8472/udp\nfirewalld source 10.244.0.0/16\n") || strings.Contains(got, "6443") {
		t.Errorf("new record:\n%s", got)
	}
	// After apply: the port is closed and the record matches: converged.
	state = strings.ReplaceAll(state, "6443/tcp ", "")
	state = strings.Replace(state, steptest.FileRecord("opened", record), steptest.FileRecord("opened", *changes[2].Data.Record), 1)
	if again, _ := (FirewallStep{}).Diff(input(c, centos7, state)); len(again) != 0 {
		t.Errorf("after apply: %q", summariesOf(again))
	}
}

// The pod network moved: the new range is trusted, the old one (kprep's)
// is no longer, and a range the user trusted stays.
func TestFirewallFollowsThePodNetwork(t *testing.T) {
	c := labCluster()
	c.Hostprep.Firewall = "open-ports"
	c.Kubernetes.PodSubnet = "10.32.0.0/16"
	record := "firewalld port 10257/tcp\nfirewalld source 10.244.0.0/16\n"
	// firewalld is stopped: only the boot-time lists, through
	// firewall-offline-cmd.
	state := "firewalld_unit=0\nfirewalld_active=inactive\nfirewalld_enabled=enabled\n" + steptest.FileRecord("opened", record) +
		"ports_permanent=10250/tcp 10257/tcp 10259/tcp 2379-2380/tcp 6443/tcp 8472/udp\nsources_permanent=192.168.7.0/24 10.244.0.0/16\n"
	changes, err := FirewallStep{}.Diff(input(c, centos7, state))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"firewalld does not trust the pod network at boot: 10.32.0.0/16 (forwarded pod traffic is rejected)",
		"firewalld trusts 10.244.0.0/16 at boot, a pod network kprep trusted and the cluster no longer uses",
		"/var/lib/kprep/firewall-opened does not list what kprep opened",
	}
	if diff := cmp.Diff(want, summariesOf(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	var cmds []string
	for _, ch := range changes[:2] {
		cmds = append(cmds, firewallCmds(*ch.Data.Ports)...)
	}
	if want := []string{"firewall-offline-cmd --zone=trusted --add-source=10.32.0.0/16", "firewall-offline-cmd --zone=trusted --remove-source=10.244.0.0/16"}; !cmp.Equal(cmds, want) {
		t.Errorf("commands %q, want %q", cmds, want)
	}
	if got := *changes[2].Data.Record; !strings.HasSuffix(got, "firewalld port 10257/tcp\nfirewalld source 10.32.0.0/16\n") {
		t.Errorf("new record:\n%s", got)
	}
}

func TestFirewallCmds(t *testing.T) {
	// firewall-cmd refuses --add-protocol beside --add-port (seen on the
	// lab's real firewalld): two calls.
	got := firewallCmds(portChange{Permanent: true, Ports: []string{"6443/tcp", "30000-32767/tcp"}, Protocols: []string{"ipip"}})
	want := []string{"firewall-cmd --permanent --add-port=6443/tcp --add-port=30000-32767/tcp", "firewall-cmd --permanent --add-protocol=ipip"}
	if !cmp.Equal(got, want) {
		t.Errorf("got %q", got)
	}
	if got := firewallCmds(portChange{Permanent: true, Offline: true, Ports: []string{"8472/udp"}, Sources: []string{"10.244.0.0/16"}}); !cmp.Equal(got, []string{"firewall-offline-cmd --add-port=8472/udp", "firewall-offline-cmd --zone=trusted --add-source=10.244.0.0/16"}) {
		t.Errorf("offline: %q", got)
	}
}

func TestModulesConf(t *testing.T) {
	tests := []struct {
		name, in string
		exists   bool
		want     string
		missing  []string
	}{
		{"missing", "", false, "# Written by kprep: kernel modules Kubernetes needs, loaded at boot.\noverlay\nbr_netfilter\n", []string{"overlay", "br_netfilter"}},
		{"the docs' file", "overlay\nbr_netfilter\n", true, "overlay\nbr_netfilter\n", nil},
		{"user file with more", "ip_vs\n# br_netfilter\noverlay", true, "ip_vs\n# br_netfilter\noverlay\nbr_netfilter\n", []string{"br_netfilter"}},
	}
	for _, tt := range tests {
		got, missing := modulesConfWith(tt.in, tt.exists)
		if got != tt.want || !cmp.Equal(missing, tt.missing) {
			t.Errorf("%s: got %q %v, want %q %v", tt.name, got, missing, tt.want, tt.missing)
		}
	}
}

func TestProbesAreValidShell(t *testing.T) {
	c := labCluster()
	for _, mode := range []string{"disable", "open-ports"} {
		c.Hostprep.Firewall = mode
		for _, s := range Steps() {
			runSnippet(t, "sh -n <<'EOF'\n"+s.Probe(&c.Hosts[0], c)+"\nEOF")
		}
	}
}

// The open-ports probe reads ports and protocols from one --list-all per
// view (runtime, permanent) instead of four firewall-cmd runs; run under
// sh with a stand-in firewall-cmd that prints firewalld 0.6's layout and
// counts its calls. A firewalld that is not running gives empty runtime
// lists and falls back to firewall-offline-cmd for the permanent ones.
func TestFirewallProbeListsAllOnce(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	// firewalld 0.6's layout: the default zone is not always marked, so
	// the probe takes its name from firewalld.conf (public when unset).
	listAll := `block
  target: %%REJECT%%
  ports: 
  sources: 
dmz
  target: default
  ports: 22/tcp
  protocols: esp
public (active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  sources: 
  services: dhcpv6-client ssh
  ports: 6443/tcp 10250/tcp
  protocols: vrrp
  masquerade: no
  forward-ports: 
  source-ports: 9999/udp
  icmp-blocks: 
  rich rules: 
	
trusted (active)
  target: ACCEPT
  interfaces: 
  sources: 10.244.0.0/16 192.168.7.0/24
  ports: 1/tcp
`
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\necho "+name+" >> "+calls+"\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := labCluster()
	c.Hostprep.Firewall = "open-ports"
	probe := FirewallStep{}.Probe(&c.Hosts[0], c)
	run := func() map[string]string {
		t.Helper()
		os.Remove(calls)
		cmd := exec.Command("sh", "-c", probe)
		cmd.Env = append(os.Environ(), "PATH="+dir+":/usr/bin:/bin")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		st, err := shell.Parse(string(out))
		if err != nil {
			t.Fatal(err)
		}
		return st.Values
	}

	write("firewall-cmd", "case \"$*\" in '--list-all-zones'|'--permanent --list-all-zones') cat <<'EOF'\n"+listAll+"EOF\n;; *) exit 2 ;; esac\n")
	v := run()
	for k, want := range map[string]string{"ports_runtime": "6443/tcp 10250/tcp", "protocols_runtime": "vrrp", "ports_permanent": "6443/tcp 10250/tcp", "protocols_permanent": "vrrp",
		"sources_runtime": "10.244.0.0/16 192.168.7.0/24", "sources_permanent": "10.244.0.0/16 192.168.7.0/24"} {
		if v[k] != want {
			t.Errorf("%s=%q, want %q", k, v[k], want)
		}
	}
	if b, _ := os.ReadFile(calls); strings.Count(string(b), "firewall-cmd") != 2 {
		t.Errorf("firewall-cmd ran %d times, want 2 (one --list-all-zones each)", strings.Count(string(b), "firewall-cmd"))
	}

	// Another default zone, named in firewalld.conf: its block is read.
	conf := filepath.Join(dir, "firewalld.conf")
	if err := os.WriteFile(conf, []byte("# firewalld config\nDefaultZone=dmz\nFirewallBackend=nftables\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	probe = strings.ReplaceAll(FirewallStep{}.Probe(&c.Hosts[0], c), firewalldConf, conf)
	v = run()
	for k, want := range map[string]string{"ports_runtime": "22/tcp", "protocols_runtime": "esp", "sources_runtime": "10.244.0.0/16 192.168.7.0/24"} {
		if v[k] != want {
			t.Errorf("default zone dmz: %s=%q, want %q", k, v[k], want)
		}
	}
	probe = FirewallStep{}.Probe(&c.Hosts[0], c)

	write("firewall-cmd", "echo 'FirewallD is not running' >&2; exit 252\n")
	write("firewall-offline-cmd", "[ \"$*\" = --list-all-zones ] || exit 2\nprintf 'public\\n  ports: 8472/udp\\n  protocols: \\ntrusted\\n  sources: 10.244.0.0/16\\n'\n")
	v = run()
	for k, want := range map[string]string{"ports_runtime": "", "protocols_runtime": "", "sources_runtime": "", "ports_permanent": "8472/udp", "protocols_permanent": "", "sources_permanent": "10.244.0.0/16"} {
		if got, ok := v[k]; !ok || got != want {
			t.Errorf("firewalld stopped: %s=%q (present %v), want %q", k, got, ok, want)
		}
	}
}
