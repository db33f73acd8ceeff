package hostprep

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// FirewallStep stops the host firewall (firewall: disable) or opens
// exactly the ports the host's roles and the CNI need (open-ports), so
// cross-node pod traffic and NodePorts do not fail silently.
type FirewallStep struct{}

// firewallWork is what one change of FirewallStep needs: whether firewalld
// was running when it is turned off (docker then needs a restart), or the
// ports to open.
type firewallWork struct {
	WasActive bool
	Ports     *portChange
}

// Name implements provision.Step.
func (FirewallStep) Name() string { return "hostprep/firewall" }

// Probe reads firewalld's and ufw's state and, for open-ports, the ports
// and protocols they let in now and at boot.
func (FirewallStep) Probe(h *inventory.Host, c *inventory.Cluster) string {
	lines := []string{
		shell.Status("firewalld_unit", "systemctl cat firewalld.service"),
		shell.Value("firewalld_active", "systemctl is-active firewalld.service"),
		shell.Value("firewalld_enabled", "systemctl is-enabled firewalld.service"),
		shell.Value("ufw", "command -v ufw >/dev/null && ufw status | head -n1"),
	}
	if c.Hostprep.Firewall == "open-ports" {
		lines = append(lines,
			shell.Value("ports_runtime", "firewall-cmd --list-ports"),
			shell.Value("ports_permanent", "firewall-cmd --permanent --list-ports || firewall-offline-cmd --list-ports"),
			shell.Value("protocols_runtime", "firewall-cmd --list-protocols"),
			shell.Value("protocols_permanent", "firewall-cmd --permanent --list-protocols || firewall-offline-cmd --list-protocols"),
			`if command -v ufw >/dev/null; then ufw status | sed -n 's/^\([0-9:]*\/[a-z]*\) .*ALLOW.*/ufw_allow \1/p'; fi`,
		)
	}
	return strings.Join(lines, "\n")
}

// Diff implements provision.Step.
func (FirewallStep) Diff(in provision.Input) ([]provision.Planned[firewallWork], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	installed := st.Values["firewalld_unit"] == "0"
	active := st.Values["firewalld_active"] == "active"
	enabled := st.Values["firewalld_enabled"] == "enabled"
	ufwActive := st.Values["ufw"] == "Status: active"
	switch in.Cluster.Hostprep.Firewall {
	case "disable":
		var changes []provision.Planned[firewallWork]
		if installed && (active || enabled) {
			changes = append(changes, provision.Planned[firewallWork]{Key: "firewalld",
				Summary: "firewalld is " + describeUnit(active, enabled),
				Action:  "systemctl disable --now firewalld (and restart docker if it runs: stopping firewalld flushes its iptables chains)",
				Data:    firewallWork{WasActive: active}})
		}
		if ufwActive {
			changes = append(changes, provision.Planned[firewallWork]{Key: "ufw", Summary: "ufw is active", Action: "ufw disable"})
		}
		return changes, nil
	case "open-ports":
		return openPortChanges(in.Host, in.Cluster, st, active, enabled, ufwActive), nil
	}
	return nil, nil
}

func describeUnit(active, enabled bool) string {
	switch {
	case active && enabled:
		return "running and enabled"
	case active:
		return "running (not enabled at boot)"
	}
	return "enabled at boot (not running now)"
}

// portChange is what open-ports must add in one place.
type portChange struct {
	Permanent bool
	Offline   bool // firewalld is stopped: use firewall-offline-cmd
	Ports     []string
	Protocols []string
	UFW       bool
}

func openPortChanges(h *inventory.Host, c *inventory.Cluster, st shell.State, active, enabled, ufwActive bool) []provision.Planned[firewallWork] {
	rules := rulesFor(h, c.Kubernetes.CNI)
	var changes []provision.Planned[firewallWork]
	add := func(key, where, portsKey, protosKey string, pc portChange) {
		pc.Ports = missingItems(rules.Ports, strings.Fields(st.Values[portsKey]))
		pc.Protocols = missingItems(rules.Protocols, strings.Fields(st.Values[protosKey]))
		if len(pc.Ports)+len(pc.Protocols) == 0 {
			return
		}
		changes = append(changes, provision.Planned[firewallWork]{Key: key,
			Summary: fmt.Sprintf("firewalld does not let in %s", where+strings.Join(append(pc.Ports, pc.Protocols...), " ")),
			Action:  "firewall-cmd --add-port/--add-protocol (no --reload: it would flush Docker's chains)", Data: firewallWork{Ports: &pc}})
	}
	if active {
		add("runtime", "now: ", "ports_runtime", "protocols_runtime", portChange{})
	}
	if active || enabled {
		add("permanent", "at boot: ", "ports_permanent", "protocols_permanent", portChange{Permanent: true, Offline: !active})
	}
	if ufwActive {
		var allowed []string
		for _, l := range st.Lines {
			if p, ok := strings.CutPrefix(l, "ufw_allow "); ok {
				allowed = append(allowed, strings.ReplaceAll(p, ":", "-"))
			}
		}
		if missing := missingItems(rules.Ports, allowed); len(missing) > 0 {
			changes = append(changes, provision.Planned[firewallWork]{Key: "ufw", Summary: "ufw does not allow " + strings.Join(missing, " "),
				Action: "ufw allow", Data: firewallWork{Ports: &portChange{UFW: true, Ports: missing}}})
		}
	}
	return changes
}

func missingItems(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// Apply implements provision.Step. Stopping firewalld only opens the host,
// and adding ports never closes SSH, so the session kprep uses survives.
func (FirewallStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[firewallWork]) error {
	for _, c := range changes {
		var lines []string
		switch c.Key {
		case "firewalld":
			lines = append(lines, "systemctl disable --now firewalld.service")
			if c.Data.WasActive {
				lines = append(lines, "if systemctl is-active --quiet docker.service; then systemctl restart docker.service; fi")
			}
		case "ufw":
			if c.Data.Ports == nil {
				lines = append(lines, "ufw disable")
				break
			}
			for _, p := range c.Data.Ports.Ports {
				lines = append(lines, "ufw allow "+shell.Quote(strings.ReplaceAll(p, "-", ":")))
			}
		case "runtime", "permanent":
			lines = append(lines, firewallCmds(*c.Data.Ports)...)
		}
		for _, line := range lines {
			if _, err := t.Run(ctx, transport.Command{Line: line}); err != nil {
				return err
			}
		}
	}
	return nil
}

// firewallCmds builds the firewall-cmd calls that add every port and
// protocol: one for the ports, one for the protocols, because firewall-cmd
// refuses --add-protocol beside --add-port in one call.
func firewallCmds(pc portChange) []string {
	base := []string{"firewall-cmd"}
	if pc.Offline {
		base = []string{"firewall-offline-cmd"}
	} else if pc.Permanent {
		base = append(base, "--permanent")
	}
	var lines []string
	for _, group := range []struct {
		flag  string
		items []string
	}{{"--add-port=", pc.Ports}, {"--add-protocol=", pc.Protocols}} {
		if len(group.items) == 0 {
			continue
		}
		args := append([]string(nil), base...)
		for _, item := range group.items {
			args = append(args, group.flag+item)
		}
		lines = append(lines, shell.Join(args...))
	}
	return lines
}
