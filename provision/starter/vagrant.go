package starter

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Prober runs a shell command on a machine, logged in as login says (with
// any host key accepted when insecure), and returns its standard output.
// SSHProber is the real one.
type Prober func(ctx context.Context, name string, login Login, insecure bool, command string) (string, error)

// Vagrant reads the machines of a running Vagrant environment.
type Vagrant struct {
	// Dir is the folder with the Vagrantfile; "" means the current one.
	Dir string
	// Run runs vagrant; nil means ExecRunner.
	Run Runner
	// Probe reads each machine's addresses; nil means SSHProber.
	Probe Prober
}

// addressProbe lists a machine's IPv4 addresses and its default routes in
// one round trip: the private network's address is the one on an interface
// that does not carry the default route (eth0 with 10.0.2.15 under
// VirtualBox, Vagrant's NAT).
const addressProbe = "ip -4 -o addr show scope global && ip -4 route show default"

const vagrantMissing = "install Vagrant (https://developer.hashicorp.com/vagrant/install), or list the machines as user@host[:port]"

// Machines runs `vagrant ssh-config`, then logs in to each machine as it
// says to read the machine's private address. The inventory logs in where
// Vagrant says (127.0.0.1 and a forwarded port, the key Vagrant made) and
// gives the cluster the private address, never the NAT one.
func (v Vagrant) Machines(ctx context.Context) (*Found, error) {
	if v.Run == nil {
		v.Run = ExecRunner
	}
	if v.Probe == nil {
		v.Probe = SSHProber
	}
	dir := v.Dir
	if dir == "" {
		dir = "."
	}
	out, err := run(ctx, v.Run, dir, vagrantMissing, "vagrant", "ssh-config")
	if err != nil {
		var te *ToolError
		if errors.As(err, &te) && strings.HasPrefix(te.Problem, "exited") {
			te.Hint = v.notRunningHint(ctx, dir)
		}
		return nil, err
	}
	entries, err := parseSSHConfig(out)
	if err != nil {
		return nil, unreadable("vagrant ssh-config", dir, out, err.Error())
	}
	if len(entries) == 0 {
		return nil, &ToolError{Command: "vagrant ssh-config", Dir: dir, Problem: "printed no machines", Output: strings.TrimSpace(string(out)),
			Hint: "start them with `vagrant up`"}
	}
	for _, e := range entries {
		if e.ProxyCommand != "" {
			return nil, &ToolError{Command: "vagrant ssh-config", Dir: dir, Problem: fmt.Sprintf("reaches %s through a ProxyCommand (%s), which kprep cannot use", e.Host, e.ProxyCommand),
				Hint: "list the machines as user@host[:port] with addresses kprep can reach"}
		}
	}

	found := &Found{Source: "vagrant ssh-config in " + absDir(dir), Machines: make([]Machine, len(entries))}
	insecure := true
	for _, e := range entries {
		insecure = insecure && e.NoHostKeyCheck
	}
	if insecure {
		found.HostKeyPolicy = "insecure"
		found.HostKeyNote = "as `vagrant ssh` does: a machine gets new host keys at every `vagrant up` on the same forwarded port"
	}
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			found.Machines[i], errs[i] = v.machine(ctx, e, insecure)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return found, nil
}

// machine turns one ssh-config entry into a host, reading its private
// address from the machine.
func (v Vagrant) machine(ctx context.Context, e sshEntry, insecure bool) (Machine, error) {
	name, err := nodeName(e.Host)
	if err != nil {
		return Machine{}, fmt.Errorf("vagrant machine %s: %w; rename it in the Vagrantfile", e.Host, err)
	}
	login := Login{Address: e.HostName, Port: e.Port, User: e.User, KeyFile: e.IdentityFile}
	out, err := v.Probe(ctx, e.Host, login, insecure, addressProbe)
	if err != nil {
		return Machine{}, fmt.Errorf("vagrant machine %s: reading its addresses with `%s` over SSH (%s@%s port %d, as vagrant ssh-config says): %w",
			e.Host, addressProbe, e.User, e.HostName, e.Port, err)
	}
	pick, err := privateAddress(out)
	if err != nil {
		return Machine{}, fmt.Errorf("vagrant machine %s: %w", e.Host, err)
	}
	m := Machine{Name: name, Address: pick.addr, Login: login}
	note := fmt.Sprintf("%s: kprep logs in at %s port %d (vagrant ssh-config); the cluster uses %s's %s", e.Host, e.HostName, e.Port, pick.iface, pick.addr)
	if pick.natIface != "" {
		note += fmt.Sprintf(", not %s's %s (the default route's: Vagrant's NAT)", pick.natIface, strings.Join(pick.natAddrs, ", "))
	}
	m.Notes = []string{note}
	return m, nil
}

// notRunningHint asks `vagrant status` which machines are not running, for
// the error of a failed ssh-config; "" when that cannot be told.
func (v Vagrant) notRunningHint(ctx context.Context, dir string) string {
	out, _, err := v.Run(ctx, dir, "vagrant", "status", "--machine-readable")
	if err != nil {
		return "" // no environment here, say: ssh-config's own words say it
	}
	var down []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) >= 4 && f[2] == "state" && f[1] != "" && f[3] != "running" {
			down = append(down, fmt.Sprintf("%s (%s)", f[1], f[3]))
		}
	}
	if len(down) == 0 {
		return "start the machines with `vagrant up`"
	}
	return fmt.Sprintf("not running: %s; start them with `vagrant up`", strings.Join(down, ", "))
}

// addressPick is the private address found on a machine and the NAT
// interface it was told from.
type addressPick struct {
	addr, iface string
	natIface    string
	natAddrs    []string
}

// privateAddress reads addressProbe's output and picks the first address
// on an interface without a default route (with no default route at all,
// the first address).
func privateAddress(out string) (addressPick, error) {
	type ifAddr struct{ iface, addr string }
	var addrs []ifAddr
	routed := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && strings.HasSuffix(f[0], ":") && f[2] == "inet":
			prefix, err := netip.ParsePrefix(f[3])
			if err != nil {
				return addressPick{}, fmt.Errorf("`%s` printed %q, whose address kprep cannot read", addressProbe, line)
			}
			iface, _, _ := strings.Cut(f[1], "@")
			addrs = append(addrs, ifAddr{iface, prefix.Addr().String()})
		case len(f) >= 1 && f[0] == "default":
			for i := 1; i+1 < len(f); i++ {
				if f[i] == "dev" {
					routed[f[i+1]] = true
				}
			}
		}
	}
	if len(addrs) == 0 {
		return addressPick{}, fmt.Errorf("`%s` printed no IPv4 address:\n%s", addressProbe, indent(strings.TrimSpace(out)))
	}
	var pick addressPick
	for _, a := range addrs {
		if routed[a.iface] {
			if pick.natIface == "" || pick.natIface == a.iface {
				pick.natIface = a.iface
				pick.natAddrs = append(pick.natAddrs, a.addr)
			}
			continue
		}
		if pick.addr == "" {
			pick.addr, pick.iface = a.addr, a.iface
		}
	}
	if pick.addr != "" {
		return pick, nil
	}
	var ifaces []string
	for i := range routed {
		ifaces = append(ifaces, i)
	}
	sort.Strings(ifaces)
	return addressPick{}, fmt.Errorf("it has no address besides the default route's %s (%s), Vagrant's NAT, which must not become the node address; "+
		`give it one on a private network in the Vagrantfile: config.vm.network "private_network", ip: "192.168.56.10"`,
		strings.Join(ifaces, ", "), strings.Join(pick.natAddrs, ", "))
}

func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}
