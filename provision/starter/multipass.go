package starter

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// Multipass reads the running instances of multipass.
type Multipass struct {
	// Run runs multipass; nil means ExecRunner.
	Run Runner
	// Login is how kprep logs in to every instance (the user the shipped
	// cloud-init user-data creates, the operator's key); Address and Port
	// stay empty: kprep connects to the instance's address on port 22.
	Login Login
}

// multipassList is `multipass list --format json` as multipass's JSON
// formatter writes it: {"list": [{"name", "state", "ipv4": [...], "release"}]}.
type multipassList struct {
	List *[]struct {
		Name    string   `json:"name"`
		State   string   `json:"state"`
		IPv4    []string `json:"ipv4"`
		Release string   `json:"release"`
	} `json:"list"`
}

const multipassMissing = "install multipass (https://multipass.run), or list the machines as user@host[:port]"

// Machines runs `multipass list --format json` and makes a host of every
// running instance, at the first IPv4 address multipass lists (its own
// network's, which the machine running kprep reaches). Instances that are
// not running, or have no address yet, are reported in Skipped.
func (mp Multipass) Machines(ctx context.Context) (*Found, error) {
	if mp.Run == nil {
		mp.Run = ExecRunner
	}
	const command = "multipass list --format json"
	out, err := run(ctx, mp.Run, "", multipassMissing, "multipass", "list", "--format", "json")
	if err != nil {
		return nil, err
	}
	var list multipassList
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, unreadable(command, "", out, "not JSON: "+err.Error())
	}
	if list.List == nil {
		return nil, unreadable(command, "", out, `no "list" in it`)
	}
	found := &Found{Source: command}
	for _, inst := range *list.List {
		if inst.Name == "" {
			return nil, unreadable(command, "", out, "an instance without a name")
		}
		if !strings.EqualFold(inst.State, "Running") {
			found.Skipped = append(found.Skipped, fmt.Sprintf("%s: %s (start it with `multipass start %s`)", inst.Name, inst.State, inst.Name))
			continue
		}
		if len(inst.IPv4) == 0 {
			found.Skipped = append(found.Skipped, fmt.Sprintf("%s: running but without an IPv4 address yet", inst.Name))
			continue
		}
		for _, a := range inst.IPv4 {
			if _, err := netip.ParseAddr(a); err != nil {
				return nil, unreadable(command, "", out, fmt.Sprintf("%s's address %q is not an IP address", inst.Name, a))
			}
		}
		name, err := nodeName(inst.Name)
		if err != nil {
			return nil, fmt.Errorf("multipass instance %s: %w", inst.Name, err)
		}
		m := Machine{Name: name, Address: inst.IPv4[0], Login: mp.Login}
		if len(inst.IPv4) > 1 {
			m.Notes = append(m.Notes, fmt.Sprintf("%s also has %s; kprep uses the first address multipass lists, on multipass's own network",
				inst.Name, strings.Join(inst.IPv4[1:], ", ")))
		}
		found.Machines = append(found.Machines, m)
	}
	if len(found.Machines) == 0 {
		hint := "launch some with `multipass launch 22.04 --name cp1 --cloud-init user-data` (see inventories/multipass)"
		if len(found.Skipped) > 0 {
			hint = "none is running: " + strings.Join(found.Skipped, "; ")
		}
		return nil, &ToolError{Command: command, Problem: "listed no running instance", Output: strings.TrimSpace(string(out)), Hint: hint}
	}
	return found, nil
}
