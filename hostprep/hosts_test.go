package hostprep

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/inventory"
)

func TestWantHosts(t *testing.T) {
	c := labCluster()
	entries := hostsEntries(c, &c.Hosts[1]) // w1 itself and the control plane
	const stock = "127.0.0.1   localhost localhost.localdomain\n::1         localhost localhost.localdomain\n"
	withBlock := stock + "\n" + hostsBegin + "\n192.168.77.11 cp1\n192.168.77.12 w1\n" + hostsEnd + "\n"
	tests := []struct {
		name, in, want string
		missing        []hostEntry
	}{
		{"fresh", stock, withBlock, entries},
		{"converged", withBlock, withBlock, nil},
		{"user carries one", stock + "192.168.77.12 w1 w1.lab\n", stock + "192.168.77.12 w1 w1.lab\n\n" + hostsBegin + "\n192.168.77.11 cp1\n" + hostsEnd + "\n", []hostEntry{{"192.168.77.11", "cp1"}}},
		{"user carries all: no block", stock + "192.168.77.11 cp1\n192.168.77.12 w1\n", stock + "192.168.77.11 cp1\n192.168.77.12 w1\n", nil},
		{"a line after the block stays after it", withBlock + "192.168.77.11 api.internal # kprep: the API endpoint\n", withBlock + "192.168.77.11 api.internal # kprep: the API endpoint\n", nil},
		{"stale entry in block", stock + "\n" + hostsBegin + "\n192.168.77.99 cp1\n192.168.77.12 w1\n" + hostsEnd + "\n", withBlock, []hostEntry{{"192.168.77.11", "cp1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, missing := wantHosts(tt.in, entries)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.missing, missing); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
		})
	}
}

// A worker's /etc/hosts carries itself and the control planes, never the
// other workers: adding a worker changes no other host.
func TestHostsEntriesAreSelfAndControlPlanes(t *testing.T) {
	c := labCluster()
	c.Hosts = append(c.Hosts, inventory.Host{Name: "w3", Address: "192.168.77.14", Roles: []string{"worker"}})
	want := []hostEntry{{"192.168.77.11", "cp1"}, {"192.168.77.14", "w3"}}
	if diff := cmp.Diff(want, hostsEntries(c, &c.Hosts[3])); diff != "" {
		t.Errorf("w3 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]hostEntry{{"192.168.77.11", "cp1"}}, hostsEntries(c, &c.Hosts[0])); diff != "" {
		t.Errorf("cp1 (-want +got):\n%s", diff)
	}
}

func TestHostnameDiff(t *testing.T) {
	c := labCluster()
	hosts := "127.0.0.1 localhost\n\n" + hostsBegin + "\n192.168.77.11 cp1\n" + hostsEnd + "\n"
	state := "running=localhost.localdomain\nfile hostname " + b64("localhost.localdomain\n") + "\nfile hosts " + b64(hosts) + "\n"
	changes, err := HostnameStep{}.Diff(input(c, centos7, state))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`hostname is "localhost.localdomain" (at boot: "localhost.localdomain"), want "cp1"`}
	if diff := cmp.Diff(want, summariesOf(changes)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	state = "running=cp1\nfile hostname " + b64("cp1\n") + "\nfile hosts " + b64(hosts) + "\n"
	if changes, _ := (HostnameStep{}).Diff(input(c, centos7, state)); len(changes) != 0 {
		t.Errorf("converged host: %v", summariesOf(changes))
	}
}
