package hostprep

import (
	"encoding/base64"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sysctlProbe(dropin string, live map[string]string, sets ...string) string {
	out := "file dropin -\n"
	if dropin != "" {
		out = "file dropin " + base64.StdEncoding.EncodeToString([]byte(dropin)) + "\n"
	}
	for _, k := range slices.Sorted(maps.Keys(live)) {
		out += k + " = " + live[k] + "\n"
	}
	for _, s := range sets {
		out += s + "\n"
	}
	return out
}

var allOne = map[string]string{"net.bridge.bridge-nf-call-ip6tables": "1", "net.bridge.bridge-nf-call-iptables": "1", "net.ipv4.ip_forward": "1"}

func TestSysctlDiff(t *testing.T) {
	c := labCluster()
	want := sysctlDropin(wantedSysctls(c))
	tests := []struct {
		name  string
		state string
		want  []string
	}{
		{"fresh host", sysctlProbe("", map[string]string{"net.bridge.bridge-nf-call-ip6tables": "<missing>", "net.bridge.bridge-nf-call-iptables": "<missing>", "net.ipv4.ip_forward": "0"}), []string{
			"/etc/sysctl.d/k8s.conf is missing",
			"net.bridge.bridge-nf-call-ip6tables is <missing>, want 1; net.bridge.bridge-nf-call-iptables is <missing>, want 1; net.ipv4.ip_forward is 0, want 1",
		}},
		{"converged", sysctlProbe(want, allOne,
			"/etc/sysctl.d/k8s.conf:3:net.bridge.bridge-nf-call-ip6tables = 1",
			"/etc/sysctl.d/k8s.conf:5:net.ipv4.ip_forward = 1",
			// applied before ours: does not matter
			"/usr/lib/sysctl.d/50-default.conf:12:net.ipv4.ip_forward = 0",
			// after ours, but the same value
			"/etc/sysctl.conf:3:net.ipv4.ip_forward=1",
		), nil},
		{"live value dropped by hand", sysctlProbe(want, map[string]string{"net.bridge.bridge-nf-call-ip6tables": "1", "net.bridge.bridge-nf-call-iptables": "1", "net.ipv4.ip_forward": "0"}),
			[]string{"net.ipv4.ip_forward is 0, want 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, err := SysctlStep{}.Diff(input(c, centos7, tt.state))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summariesOf(changes)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSysctlOverrideIsAnErrorNamingTheFile(t *testing.T) {
	c := labCluster()
	state := sysctlProbe(sysctlDropin(wantedSysctls(c)), allOne,
		"/etc/sysctl.d/k8s.conf:5:net.ipv4.ip_forward = 1",
		"/etc/sysctl.conf:12:net.ipv4.ip_forward = 0",
		// same base name in /usr/lib is hidden by /etc's: no error for it
		"/usr/lib/sysctl.d/zz-tuning.conf:1:net.bridge.bridge-nf-call-iptables = 0",
		"/etc/sysctl.d/zz-tuning.conf:1:vm.swappiness = 10",
	)
	_, err := SysctlStep{}.Diff(input(c, centos7, state))
	want := "/etc/sysctl.conf:12 sets net.ipv4.ip_forward = 0, which overrides /etc/sysctl.d/k8s.conf (want 1); remove that line or set it to 1"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestSysctlExtraKeys(t *testing.T) {
	c := labCluster()
	c.Hostprep.Sysctl = map[string]string{"net/ipv4/ip_local_port_range": "1024   65000", "net.ipv4.ip_forward": "0"}
	got := sysctlDropin(wantedSysctls(c))
	if !strings.Contains(got, "net.ipv4.ip_local_port_range = 1024 65000\n") || !strings.Contains(got, "net.ipv4.ip_forward = 1\n") {
		t.Errorf("drop-in:\n%s", got)
	}
	// sysctl prints multi-value keys with a tab; that is the same value.
	live := map[string]string{"net.ipv4.ip_local_port_range": "1024\t65000"}
	for k, v := range allOne {
		live[k] = v
	}
	changes, err := SysctlStep{}.Diff(input(c, centos7, sysctlProbe(got, live)))
	if err != nil || len(changes) != 0 {
		t.Errorf("changes %v, err %v", summariesOf(changes), err)
	}
}

func TestEffectiveOrder(t *testing.T) {
	got := effectiveOrder([]string{"/etc/sysctl.conf", "/usr/lib/sysctl.d/50-default.conf", "/etc/sysctl.d/k8s.conf",
		"/etc/sysctl.d/99-sysctl.conf", "/usr/lib/sysctl.d/99-sysctl.conf", "/run/sysctl.d/zz.conf"})
	want := []string{"/usr/lib/sysctl.d/50-default.conf", "/etc/sysctl.d/99-sysctl.conf", "/etc/sysctl.d/k8s.conf", "/run/sysctl.d/zz.conf", "/etc/sysctl.conf"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The probe reads every live value with one sysctl: on this machine it must
// read what sysctl -n reads key by key (a multi-value key, a key the kernel
// lacks), and find the keys' lines in the machine's own sysctl files as
// grep does.
func TestSysctlProbeReadsWhatSysctlReads(t *testing.T) {
	if _, err := exec.LookPath("sysctl"); err != nil {
		t.Skip("no sysctl on this machine")
	}
	c := labCluster()
	c.Hostprep.Sysctl = map[string]string{"net.ipv4.tcp_rmem": "4096 87380 6291456", "net.no.such.key": "1"}
	_, live, sets, err := parseSysctlState(runSnippet(t, SysctlStep{}.Probe(&c.Hosts[0], c)), slices.Collect(maps.Keys(wantedSysctls(c))))
	if err != nil {
		t.Fatal(err)
	}
	for k := range wantedSysctls(c) {
		out, err := exec.Command("sysctl", "-n", k).Output()
		want := normalizeValue(string(out))
		if err != nil {
			want = "<missing>"
		}
		if live[k] != want {
			t.Errorf("live %s = %q, sysctl -n says %q", k, live[k], want)
		}
	}
	var keys []string
	for k := range wantedSysctls(c) {
		keys = append(keys, strings.ReplaceAll(k, ".", "[./]"))
	}
	grep := exec.Command("sh", "-c", `cat /etc/sysctl.d/*.conf /run/sysctl.d/*.conf /usr/local/lib/sysctl.d/*.conf /usr/lib/sysctl.d/*.conf /lib/sysctl.d/*.conf /etc/sysctl.conf 2>/dev/null | grep -cE '^[[:space:]]*-?(`+strings.Join(keys, "|")+`)[[:space:]]*='`)
	out, _ := grep.Output()
	if got, want := len(sets), strings.TrimSpace(string(out)); fmt.Sprint(got) != want {
		t.Errorf("the probe found %d settings in the sysctl files, grep finds %s: %+v", got, want, sets)
	}
}
