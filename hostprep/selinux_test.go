package hostprep

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/facts"
)

const centosSELinuxConfig = `
# This file controls the state of SELinux on the system.
# SELINUX= can take one of these three values:
#     enforcing - SELinux security policy is enforced.
#     permissive - SELinux prints warnings instead of enforcing.
#     disabled - No SELinux policy is loaded.
SELINUX=enforcing
# SELINUXTYPE= can take one of three values:
SELINUXTYPE=targeted
`

func selinuxProbe(getenforce, config, sysconfig string) string {
	out := "getenforce=" + getenforce + "\n"
	if config == "" {
		out += "file config -\n"
	} else {
		out += "file config " + base64.StdEncoding.EncodeToString([]byte(config)) + "\n"
	}
	return out + "sysconfig=" + sysconfig + "\n"
}

func TestSetConfiguredMode(t *testing.T) {
	got := setConfiguredMode(centosSELinuxConfig, "permissive")
	want := strings.Replace(centosSELinuxConfig, "SELINUX=enforcing", "SELINUX=permissive", 1)
	if got != want {
		t.Errorf("got\n%s", got)
	}
	if configuredMode(got) != "permissive" || !strings.Contains(got, "SELINUXTYPE=targeted") {
		t.Errorf("mode %q or SELINUXTYPE lost", configuredMode(got))
	}
	if got := setConfiguredMode("SELINUXTYPE=targeted", "permissive"); got != "SELINUXTYPE=targeted\nSELINUX=permissive\n" {
		t.Errorf("no SELINUX= line: got %q", got)
	}
}

func TestSELinuxDiff(t *testing.T) {
	c := labCluster()
	permissiveConfig := setConfiguredMode(centosSELinuxConfig, "permissive")
	disabledConfig := setConfiguredMode(centosSELinuxConfig, "disabled")
	tests := []struct {
		name  string
		mode  string
		facts facts.Facts
		state string
		want  []string
	}{
		{"fresh CentOS 7", "permissive", centos7, selinuxProbe("Enforcing", centosSELinuxConfig, "link"),
			[]string{"SELinux is enforcing now", "SELinux is enforcing at boot (/etc/selinux/config: SELINUX=enforcing)"}},
		{"converged", "permissive", centos7, selinuxProbe("Permissive", permissiveConfig, "link"), nil},
		{"disabled counts as permissive", "permissive", rocky9, selinuxProbe("Disabled", disabledConfig, "link"), nil},
		{"sed -i broke the link", "permissive", centos7, selinuxProbe("Permissive", permissiveConfig, "file"),
			[]string{"/etc/sysconfig/selinux is a regular file, not the link to ../selinux/config that EL ships (an earlier sed -i replaced it)"}},
		{"disabled on EL7", "disabled", centos7, selinuxProbe("Permissive", permissiveConfig, "link"),
			[]string{"SELinux is permissive at boot (/etc/selinux/config: SELINUX=permissive)"}},
		{"not installed", "permissive", centos7, selinuxProbe("", "", "missing"), nil},
		{"Ubuntu", "permissive", ubuntu, selinuxProbe("", "", "missing"), nil},
		{"keep", "keep", centos7, selinuxProbe("Enforcing", centosSELinuxConfig, "link"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Hostprep.SELinux = tt.mode
			changes, err := SELinuxStep{}.Diff(input(c, tt.facts, tt.state))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summariesOf(changes)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSELinuxDisabledRefusedOnEL9(t *testing.T) {
	c := labCluster()
	c.Hostprep.SELinux = "disabled"
	_, err := SELinuxStep{}.Diff(input(c, rocky9, selinuxProbe("Enforcing", centosSELinuxConfig, "link")))
	if err == nil || !strings.Contains(err.Error(), "disabled is refused on Rocky Linux 9.4") || !strings.Contains(err.Error(), "permissive") {
		t.Fatalf("err = %v", err)
	}
}
