package hostprep

import (
	"fmt"
	"net"
	"strings"

	"github.com/kprep/kprep/provision/inventory"
)

// The block kprep keeps in /etc/hosts, between these two lines.
const (
	hostsBegin = "# BEGIN kprep: cluster hosts (managed by kprep; edits inside are overwritten)"
	hostsEnd   = "# END kprep"
)

// hostEntry is one address and name /etc/hosts must carry.
type hostEntry struct{ Address, Name string }

// hostsEntries lists what h's /etc/hosts carries: h itself and every
// control plane, those whose address is an IP (a host given by DNS name
// resolves already). Not every host: adding a worker to the inventory must
// change nothing on the hosts already there.
func hostsEntries(c *inventory.Cluster, self *inventory.Host) []hostEntry {
	var out []hostEntry
	for i := range c.Hosts {
		h := &c.Hosts[i]
		if (h.Name == self.Name || h.HasRole(inventory.RoleControlPlane)) && net.ParseIP(h.Address) != nil {
			out = append(out, hostEntry{h.Address, h.Name})
		}
	}
	return out
}

// splitHostsBlock separates kprep's block from the rest of the file.
func splitHostsBlock(hosts string) (outside []string, block []string, found bool) {
	inBlock := false
	for _, line := range strings.Split(strings.TrimSuffix(hosts, "\n"), "\n") {
		switch {
		case strings.TrimSpace(line) == hostsBegin:
			inBlock, found = true, true
		case inBlock && strings.TrimSpace(line) == hostsEnd:
			inBlock = false
		case inBlock:
			block = append(block, line)
		default:
			outside = append(outside, line)
		}
	}
	return outside, block, found
}

// carried reports whether lines map name to address.
func carried(lines []string, e hostEntry) bool {
	for _, line := range lines {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != e.Address {
			continue
		}
		for _, n := range f[1:] {
			if n == e.Name {
				return true
			}
		}
	}
	return false
}

// wantHosts returns /etc/hosts with kprep's block holding exactly the
// cluster hosts that the rest of the file does not carry already, and the
// entries that were missing. Lines outside the block stay as they are, and
// the block stays where it is (other lines may follow it: kube/endpoint's);
// a new block goes at the end. No block is written when the file carries
// every host itself.
func wantHosts(current string, entries []hostEntry) (string, []hostEntry) {
	outside, block, found := splitHostsBlock(current)
	var need, missing []hostEntry
	for _, e := range entries {
		if carried(outside, e) {
			continue
		}
		need = append(need, e)
		if !carried(block, e) {
			missing = append(missing, e)
		}
	}
	var newBlock []string
	if len(need) > 0 {
		newBlock = append(newBlock, hostsBegin)
		for _, e := range need {
			newBlock = append(newBlock, fmt.Sprintf("%s %s", e.Address, e.Name))
		}
		newBlock = append(newBlock, hostsEnd)
	}
	var out []string
	placed := false
	inBlock := false
	for _, line := range strings.Split(strings.TrimSuffix(current, "\n"), "\n") {
		switch {
		case strings.TrimSpace(line) == hostsBegin:
			inBlock = true
			if !placed {
				out = append(out, newBlock...)
				placed = true
			}
		case inBlock && strings.TrimSpace(line) == hostsEnd:
			inBlock = false
		case inBlock:
		default:
			out = append(out, line)
		}
	}
	if !found && len(newBlock) > 0 {
		for len(out) > 0 && out[len(out)-1] == "" {
			out = out[:len(out)-1]
		}
		if len(out) > 0 {
			out = append(out, "")
		}
		out = append(out, newBlock...)
	}
	for len(out) > 0 && out[0] == "" {
		out = out[1:]
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	if len(out) == 0 {
		return "", missing
	}
	return strings.Join(out, "\n") + "\n", missing
}
