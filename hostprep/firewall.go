package hostprep

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/hostfile"
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
	// Record is the new content of kprep's record of what it opened.
	Record *string
}

// Name implements provision.Step.
func (FirewallStep) Name() string { return "hostprep/firewall" }

// Probe reads firewalld's and ufw's state and, for open-ports, the ports
// and protocols they let in now and at boot.
func (FirewallStep) Probe(h *inventory.Host, c *inventory.Cluster) string {
	lines := []string{
		// One systemctl for the three facts (each systemctl call costs a
		// few milliseconds of the host's CPU).
		`kprep_fw=$(systemctl show -p LoadState -p ActiveState -p UnitFileState firewalld.service 2>/dev/null)
case "$kprep_fw" in *LoadState=loaded*) echo firewalld_unit=0 ;; *) echo firewalld_unit=1 ;; esac
for kprep_l in $kprep_fw; do case $kprep_l in ActiveState=*) echo "firewalld_active=${kprep_l#*=}" ;; UnitFileState=*) echo "firewalld_enabled=${kprep_l#*=}" ;; esac; done`,
		shell.Value("ufw", "command -v ufw >/dev/null && ufw status | head -n1"),
	}
	if c.Hostprep.Firewall == "open-ports" {
		lines = append(lines,
			shell.File("opened", openedRecord),
			firewallLists("runtime", "firewall-cmd --list-all"),
			firewallLists("permanent", "firewall-cmd --permanent --list-all || firewall-offline-cmd --list-all"),
			`if command -v ufw >/dev/null; then ufw status | sed -n 's/^\([0-9:]*\/[a-z]*\) .*ALLOW.*/ufw_allow \1/p'; fi`,
		)
	}
	return strings.Join(lines, "\n")
}

// firewallLists prints ports_WHEN and protocols_WHEN from one
// `--list-all` of the default zone (the zone --list-ports reads): each
// firewall-cmd is a Python program's start, about 0.1-0.2 s of a host's
// CPU (20 s on the lab's emulated aarch64 VM), and --list-all answers
// for ports and protocols at once. The "ports:" line is matched whole,
// not "source-ports:".
func firewallLists(when, listAll string) string {
	return fmt.Sprintf(`kprep_ports=; kprep_protocols=
kprep_all=$( { %[2]s ; } 2>/dev/null )
while IFS= read -r kprep_l; do
  kprep_l=${kprep_l#"${kprep_l%%%%[![:space:]]*}"}
  case $kprep_l in
    ports:*) kprep_ports=${kprep_l#ports:} ;;
    protocols:*) kprep_protocols=${kprep_l#protocols:} ;;
  esac
done <<KPREP_FW
$kprep_all
KPREP_FW
set -f
set -- $kprep_ports; echo "ports_%[1]s=$*"
set -- $kprep_protocols; echo "protocols_%[1]s=$*"
set +f`, when, listAll)
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

// portChange is what open-ports adds or removes in one place.
type portChange struct {
	Permanent bool
	Offline   bool // firewalld is stopped: use firewall-offline-cmd
	Remove    bool // close these: kprep opened them and they are no longer needed
	Ports     []string
	Protocols []string
	UFW       bool
}

// openedRecord is kprep's record of the ports and protocols it opened
// itself, so that a later run closes those no longer needed (a role or a
// CNI dropped) and never one the user opened. One item per line:
// "firewalld port 6443/tcp", "firewalld protocol ipip", "ufw port 8472/udp".
const openedRecord = provision.StateDir + "/firewall-opened"

// openedItems reads the record into a set of items.
func openedItems(st shell.State) map[string]bool {
	raw, _ := st.File("opened")
	out := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			out[strings.Join(f, " ")] = true
		}
	}
	return out
}

func encodeOpened(items map[string]bool) string {
	b := hostfile.Header("the ports and protocols kprep opened in the host firewall, so that",
		"it closes them when no longer needed and never closes one you opened.")
	for _, item := range slices.Sorted(maps.Keys(items)) {
		b += item + "\n"
	}
	return b
}

func openPortChanges(h *inventory.Host, c *inventory.Cluster, st shell.State, active, enabled, ufwActive bool) []provision.Planned[firewallWork] {
	rules := rulesFor(h, c.Kubernetes.CNI)
	recorded := openedItems(st)
	// What kprep will own after this run: what it opened before and still
	// needs, and what it opens now.
	owned := map[string]bool{}
	for item := range recorded {
		f := strings.Fields(item)
		if (f[1] == "port" && slices.Contains(rules.Ports, f[2])) || (f[1] == "protocol" && slices.Contains(rules.Protocols, f[2])) {
			owned[item] = true
		}
	}
	stale := func(tool, kind string, have []string) []string {
		var out []string
		for _, x := range have {
			if recorded[tool+" "+kind+" "+x] && !owned[tool+" "+kind+" "+x] {
				out = append(out, x)
			}
		}
		return out
	}
	var changes []provision.Planned[firewallWork]
	firewalld := func(key, where, portsKey, protosKey string, pc portChange) {
		openPorts, openProtos := strings.Fields(st.Values[portsKey]), strings.Fields(st.Values[protosKey])
		add := pc
		add.Ports = missingItems(rules.Ports, openPorts)
		add.Protocols = missingItems(rules.Protocols, openProtos)
		if len(add.Ports)+len(add.Protocols) > 0 {
			for _, p := range add.Ports {
				owned["firewalld port "+p] = true
			}
			for _, p := range add.Protocols {
				owned["firewalld protocol "+p] = true
			}
			changes = append(changes, provision.Planned[firewallWork]{Key: key,
				Summary: fmt.Sprintf("firewalld does not let in %s", where+strings.Join(append(add.Ports, add.Protocols...), " ")),
				Action:  "firewall-cmd --add-port/--add-protocol (no --reload: it would flush Docker's chains)", Data: firewallWork{Ports: &add}})
		}
		remove := pc
		remove.Remove = true
		remove.Ports = stale("firewalld", "port", openPorts)
		remove.Protocols = stale("firewalld", "protocol", openProtos)
		if len(remove.Ports)+len(remove.Protocols) > 0 {
			changes = append(changes, provision.Planned[firewallWork]{Key: key,
				Summary: fmt.Sprintf("firewalld lets in %s, which kprep opened and the host no longer needs", where+strings.Join(append(remove.Ports, remove.Protocols...), " ")),
				Action:  "firewall-cmd --remove-port/--remove-protocol", Data: firewallWork{Ports: &remove}})
		}
	}
	if active {
		firewalld("runtime", "now: ", "ports_runtime", "protocols_runtime", portChange{})
	}
	if active || enabled {
		firewalld("permanent", "at boot: ", "ports_permanent", "protocols_permanent", portChange{Permanent: true, Offline: !active})
	}
	if ufwActive {
		var allowed []string
		for _, l := range st.Lines {
			if p, ok := strings.CutPrefix(l, "ufw_allow "); ok {
				allowed = append(allowed, strings.ReplaceAll(p, ":", "-"))
			}
		}
		if missing := missingItems(rules.Ports, allowed); len(missing) > 0 {
			for _, p := range missing {
				owned["ufw port "+p] = true
			}
			changes = append(changes, provision.Planned[firewallWork]{Key: "ufw", Summary: "ufw does not allow " + strings.Join(missing, " "),
				Action: "ufw allow", Data: firewallWork{Ports: &portChange{UFW: true, Ports: missing}}})
		}
		if old := stale("ufw", "port", allowed); len(old) > 0 {
			changes = append(changes, provision.Planned[firewallWork]{Key: "ufw",
				Summary: "ufw allows " + strings.Join(old, " ") + ", which kprep opened and the host no longer needs",
				Action:  "ufw delete allow", Data: firewallWork{Ports: &portChange{UFW: true, Remove: true, Ports: old}}})
		}
	}
	if !maps.Equal(owned, recorded) {
		content := encodeOpened(owned)
		changes = append(changes, provision.Planned[firewallWork]{Key: "record",
			Summary: openedRecord + " does not list what kprep opened",
			Action:  "write " + openedRecord, Data: firewallWork{Record: &content}})
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
			verb := "ufw allow "
			if c.Data.Ports.Remove {
				verb = "ufw delete allow "
			}
			for _, p := range c.Data.Ports.Ports {
				lines = append(lines, verb+shell.Quote(strings.ReplaceAll(p, "-", ":")))
			}
		case "runtime", "permanent":
			lines = append(lines, firewallCmds(*c.Data.Ports)...)
		case "record":
			if err := t.WriteFile(ctx, openedRecord, []byte(*c.Data.Record), transport.WriteOptions{Mode: 0o644, NoBackup: true}); err != nil {
				return err
			}
		}
		for _, line := range lines {
			if _, err := t.Run(ctx, transport.Command{Line: line}); err != nil {
				return err
			}
		}
	}
	return nil
}

// firewallCmds builds the firewall-cmd calls that add (or remove) every
// port and protocol: one for the ports, one for the protocols, because
// firewall-cmd refuses --add-protocol beside --add-port in one call.
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
		if pc.Remove {
			group.flag = strings.Replace(group.flag, "--add-", "--remove-", 1)
		}
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
