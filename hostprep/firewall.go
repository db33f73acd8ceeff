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

// Independent implements provision.Independent: the probe reads firewalld's
// unit and, with open-ports, its zones: no other step changes them.
func (FirewallStep) Independent() bool { return true }

// Probe reads firewalld's and ufw's state and, for open-ports, the ports
// and protocols they let in now and at boot.
func (FirewallStep) Probe(h *inventory.Host, c *inventory.Cluster) string {
	lines := []string{
		// Asked with the other steps' units in one systemctl call.
		shell.Show("firewalld.service", "LoadState", "ActiveState", "UnitFileState") + `
if [ "$kprep_LoadState" = loaded ]; then echo firewalld_unit=0; else echo firewalld_unit=1; fi
echo "firewalld_active=$kprep_ActiveState"
echo "firewalld_enabled=$kprep_UnitFileState"`,
		shell.Value("ufw", "command -v ufw >/dev/null && ufw status | head -n1"),
	}
	if c.Hostprep.Firewall == "open-ports" {
		lines = append(lines,
			shell.File("opened", openedRecord),
			// The default zone, the one --list-all and --add-port use
			// (--set-default-zone writes it here too); read with the
			// shell's own read, no process.
			`kprep_zone=public
if [ -r `+firewalldConf+` ]; then while IFS='=' read -r kprep_k kprep_v; do [ "$kprep_k" = DefaultZone ] && [ -n "$kprep_v" ] && kprep_zone=$kprep_v; done <`+firewalldConf+`; fi`,
			firewallLists("runtime", "firewall-cmd --list-all-zones"),
			firewallLists("permanent", "firewall-cmd --permanent --list-all-zones || firewall-offline-cmd --list-all-zones"),
			`if command -v ufw >/dev/null; then ufw status | sed -n 's/^\([0-9:]*\/[a-z]*\) .*ALLOW.*/ufw_allow \1/p'; fi`,
		)
	}
	return strings.Join(lines, "\n")
}

// firewalldConf holds firewalld's DefaultZone.
const firewalldConf = "/etc/firewalld/firewalld.conf"

// firewallLists prints ports_WHEN and protocols_WHEN of the default zone
// ($kprep_zone) and sources_WHEN of the trusted zone from one
// `--list-all-zones`: each firewall-cmd is a Python program's start,
// about 0.1-0.2 s of a host's CPU (20 s on the lab's emulated aarch64
// VM), and one listing answers for both zones. A zone's block starts with
// its name at the line's start ("public (default, active)"); its fields
// are indented. The "ports:" line is matched whole, not "source-ports:".
func firewallLists(when, listAll string) string {
	return fmt.Sprintf(`kprep_ports=; kprep_protocols=; kprep_sources=; kprep_in=
kprep_all=$( { %[2]s ; } 2>/dev/null )
while IFS= read -r kprep_l; do
  case $kprep_l in
    [![:space:]]*) kprep_in=${kprep_l%%%% *}; continue ;;
  esac
  kprep_l=${kprep_l#"${kprep_l%%%%[![:space:]]*}"}
  if [ "$kprep_in" = "$kprep_zone" ]; then
    case $kprep_l in
      ports:*) kprep_ports=${kprep_l#ports:} ;;
      protocols:*) kprep_protocols=${kprep_l#protocols:} ;;
    esac
  fi
  if [ "$kprep_in" = trusted ]; then
    case $kprep_l in sources:*) kprep_sources=${kprep_l#sources:} ;; esac
  fi
done <<KPREP_FW
$kprep_all
KPREP_FW
set -f
set -- $kprep_ports; echo "ports_%[1]s=$*"
set -- $kprep_protocols; echo "protocols_%[1]s=$*"
set -- $kprep_sources; echo "sources_%[1]s=$*"
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
	// Sources are the pod network's ranges, bound to the trusted zone.
	Sources []string
	UFW     bool
}

func (pc portChange) withoutSources() portChange {
	pc.Sources = nil
	return pc
}

func (pc portChange) sourcesOnly() portChange {
	pc.Ports, pc.Protocols = nil, nil
	return pc
}

// openedRecord is kprep's record of the ports, protocols and trusted
// sources it opened itself, so that a later run closes those no longer
// needed (a role or a CNI dropped, the pod network moved) and never one
// the user opened. One item per line: "firewalld port 6443/tcp",
// "firewalld protocol ipip", "firewalld source 10.244.0.0/16",
// "ufw port 8472/udp".
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

// firewalldKinds are what open-ports manages in firewalld, as the record
// and the probe's keys name them ("port" is recorded as "firewalld port
// 6443/tcp" and probed as ports_runtime), and where each lives in a
// portChange.
var firewalldKinds = []struct {
	kind  string
	field func(*portChange) *[]string
	want  func(firewallRules) []string
}{
	{"port", func(p *portChange) *[]string { return &p.Ports }, func(r firewallRules) []string { return r.Ports }},
	{"protocol", func(p *portChange) *[]string { return &p.Protocols }, func(r firewallRules) []string { return r.Protocols }},
	{"source", func(p *portChange) *[]string { return &p.Sources }, func(r firewallRules) []string { return r.Sources }},
}

func openPortChanges(h *inventory.Host, c *inventory.Cluster, st shell.State, active, enabled, ufwActive bool) []provision.Planned[firewallWork] {
	rules := rulesFor(h, c.Kubernetes.CNI, c.Kubernetes.PodRanges())
	recorded := openedItems(st)
	// What kprep will own after this run: what it opened before and still
	// needs, and what it opens now.
	owned := map[string]bool{}
	for item := range recorded {
		f := strings.Fields(item)
		for _, k := range firewalldKinds {
			if f[1] == k.kind && slices.Contains(k.want(rules), f[2]) {
				owned[item] = true
			}
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
	firewalld := func(view, where string, base portChange) {
		add, remove := base, base
		remove.Remove = true
		for _, k := range firewalldKinds {
			have := strings.Fields(st.Values[k.kind+"s_"+view])
			missing := missingItems(k.want(rules), have)
			for _, x := range missing {
				owned["firewalld "+k.kind+" "+x] = true
			}
			*k.field(&add) = missing
			*k.field(&remove) = stale("firewalld", k.kind, have)
		}
		// Ports and protocols go to the default zone, sources to trusted:
		// separate changes, so the plan says which is which.
		plan := func(pc portChange, summary, action string) {
			changes = append(changes, provision.Planned[firewallWork]{Key: view, Summary: summary, Action: action, Data: firewallWork{Ports: &pc}})
		}
		if opened := slices.Concat(add.Ports, add.Protocols); len(opened) > 0 {
			plan(add.withoutSources(), "firewalld does not let in "+where+": "+strings.Join(opened, " "),
				"firewall-cmd --add-port/--add-protocol (no --reload: it would flush Docker's chains)")
		}
		if len(add.Sources) > 0 {
			plan(add.sourcesOnly(), "firewalld does not trust the pod network "+where+": "+strings.Join(add.Sources, " ")+" (forwarded pod traffic is rejected)",
				"firewall-cmd --zone=trusted --add-source")
		}
		if closed := slices.Concat(remove.Ports, remove.Protocols); len(closed) > 0 {
			plan(remove.withoutSources(), "firewalld lets in "+where+": "+strings.Join(closed, " ")+", which kprep opened and the host no longer needs",
				"firewall-cmd --remove-port/--remove-protocol")
		}
		if len(remove.Sources) > 0 {
			plan(remove.sourcesOnly(), "firewalld trusts "+strings.Join(remove.Sources, " ")+" "+where+", a pod network kprep trusted and the cluster no longer uses",
				"firewall-cmd --zone=trusted --remove-source")
		}
	}
	if active {
		firewalld("runtime", "now", portChange{})
	}
	if active || enabled {
		firewalld("permanent", "at boot", portChange{Permanent: true, Offline: !active})
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
// port, protocol and trusted source: one call for each kind, because
// firewall-cmd refuses --add-protocol beside --add-port in one call, and
// the sources go to another zone.
func firewallCmds(pc portChange) []string {
	base := []string{"firewall-cmd"}
	if pc.Offline {
		base = []string{"firewall-offline-cmd"}
	} else if pc.Permanent {
		base = append(base, "--permanent")
	}
	var lines []string
	for _, group := range []struct {
		zone, flag string
		items      []string
	}{{"", "--add-port=", pc.Ports}, {"", "--add-protocol=", pc.Protocols}, {"--zone=trusted", "--add-source=", pc.Sources}} {
		if pc.Remove {
			group.flag = strings.Replace(group.flag, "--add-", "--remove-", 1)
		}
		if len(group.items) == 0 {
			continue
		}
		args := append([]string(nil), base...)
		if group.zone != "" {
			args = append(args, group.zone)
		}
		for _, item := range group.items {
			args = append(args, group.flag+item)
		}
		lines = append(lines, shell.Join(args...))
	}
	return lines
}
