package inventory

import (
	"fmt"
	"strings"
)

// ControlPlanes returns the hosts with the control-plane role, in file order.
func (c *Cluster) ControlPlanes() []*Host {
	var out []*Host
	for i := range c.Hosts {
		if c.Hosts[i].HasRole(RoleControlPlane) {
			out = append(out, &c.Hosts[i])
		}
	}
	return out
}

// FirstControlPlane returns the control plane kubeadm init runs on: the first
// one in the file. It is nil only for a Cluster that fails Validate.
func (c *Cluster) FirstControlPlane() *Host {
	for i := range c.Hosts {
		if c.Hosts[i].HasRole(RoleControlPlane) {
			return &c.Hosts[i]
		}
	}
	return nil
}

// Host returns the host with the given name, or nil.
func (c *Cluster) Host(name string) *Host {
	for i := range c.Hosts {
		if c.Hosts[i].Name == name {
			return &c.Hosts[i]
		}
	}
	return nil
}

// Select returns the hosts that --hosts names, in file order; no names means
// every host. A name that is not in the inventory is an error, so that a typo
// does not quietly work on fewer hosts than meant.
func (c *Cluster) Select(names []string) ([]*Host, error) {
	want := map[string]bool{}
	var unknown []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || want[n] {
			continue
		}
		want[n] = true
		if c.Host(n) == nil {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, c.unknownHosts(unknown)
	}
	var out []*Host
	for i := range c.Hosts {
		if len(want) == 0 || want[c.Hosts[i].Name] {
			out = append(out, &c.Hosts[i])
		}
	}
	return out, nil
}

func (c *Cluster) unknownHosts(unknown []string) error {
	all := make([]string, len(c.Hosts))
	for i := range c.Hosts {
		all[i] = c.Hosts[i].Name
	}
	msgs := make([]string, len(unknown))
	for i, n := range unknown {
		msgs[i] = fmt.Sprintf("%q", n)
		if s := suggest(n, all); s != "" {
			msgs[i] += fmt.Sprintf(" (did you mean %q?)", s)
		}
	}
	where := "the inventory"
	if c.Path != "" {
		where = c.Path
	}
	return fmt.Errorf("no host named %s in %s; its hosts are %s", shortList(msgs, 5), where, shortList(all, 10))
}
