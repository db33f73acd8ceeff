package hostprep

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWantHosts(t *testing.T) {
	entries := clusterEntries(labCluster()) // w2 has a DNS name: not carried
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

func TestHostnameDiff(t *testing.T) {
	c := labCluster()
	hosts := "127.0.0.1 localhost\n\n" + hostsBegin + "\n192.168.77.11 cp1\n192.168.77.12 w1\n" + hostsEnd + "\n"
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
