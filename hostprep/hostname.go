package hostprep

import (
	"context"
	"fmt"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// HostnameStep names the host after its inventory name (which becomes the
// Kubernetes node name) and makes /etc/hosts carry the host and every
// control plane (not the other workers: a new worker changes no host). It
// runs first: a node renamed after kubeadm join is a different node.
type HostnameStep struct{}

// Name implements provision.Step.
func (HostnameStep) Name() string { return "hostprep/hostname" }

// Independent implements provision.Independent: the probe reads
// /proc/sys/kernel/hostname, /etc/hostname and /etc/hosts: no other step
// changes them.
func (HostnameStep) Independent() bool { return true }

// Probe reads the running and the configured hostname and /etc/hosts.
func (HostnameStep) Probe(*inventory.Host, *inventory.Cluster) string {
	// The shell's own read: no process.
	return `kprep_v=; read -r kprep_v </proc/sys/kernel/hostname 2>/dev/null; printf 'running=%s\n' "$kprep_v"` + "\n" +
		shell.File("hostname", "/etc/hostname") + "\n" +
		shell.File("hosts", "/etc/hosts")
}

// Diff implements provision.Step.
func (HostnameStep) Diff(in provision.Input) ([]provision.Planned[string], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	var changes []provision.Planned[string]
	name := in.Host.Name
	if set := in.Cluster.Hostprep.Hostname; set == nil || *set {
		configured, _ := st.File("hostname")
		running := st.Values["running"]
		if running != name || strings.TrimSpace(string(configured)) != name {
			changes = append(changes, provision.Planned[string]{Key: "hostname",
				Summary: fmt.Sprintf("hostname is %q (at boot: %q), want %q", running, strings.TrimSpace(string(configured)), name),
				Action:  "hostnamectl set-hostname " + name})
		}
	}
	hosts, _ := st.File("hosts")
	content, missing := wantHosts(string(hosts), hostsEntries(in.Cluster, in.Host))
	if content != string(hosts) {
		summary := "/etc/hosts has a stale kprep block"
		if len(missing) > 0 {
			var names []string
			for _, e := range missing {
				names = append(names, e.Name+" ("+e.Address+")")
			}
			summary = "/etc/hosts lacks cluster hosts: " + strings.Join(names, ", ")
		}
		changes = append(changes, provision.Planned[string]{Key: "hosts", Summary: summary,
			Action: "write the kprep block in /etc/hosts", Data: content})
	}
	return changes, nil
}

// Apply implements provision.Step. /etc/hosts goes first, so that sudo can
// resolve the new name as soon as it is set.
func (HostnameStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[string]) error {
	for _, c := range changes {
		if c.Key == "hosts" {
			if err := t.WriteFile(ctx, "/etc/hosts", []byte(c.Data), transport.WriteOptions{Mode: 0o644}); err != nil {
				return err
			}
		}
	}
	for _, c := range changes {
		if c.Key == "hostname" {
			name := in.Host.Name
			// hostnamectl sets both the running and the boot name; where
			// hostnamed cannot run, do what it does by hand.
			if _, err := t.Run(ctx, transport.Command{Line: "hostnamectl set-hostname " + shell.Quote(name)}); err == nil {
				continue
			}
			if err := t.WriteFile(ctx, "/etc/hostname", []byte(name+"\n"), transport.WriteOptions{Mode: 0o644}); err != nil {
				return err
			}
			if _, err := t.Run(ctx, transport.Command{Line: "hostname " + shell.Quote(name)}); err != nil {
				return err
			}
		}
	}
	return nil
}
