package starter

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kprep/kprep/provision/inventory"
)

// Endpoints makes hosts of user@host[:port] strings (user and port
// optional; IPv6 in brackets, [fd00::1]:2222). Each host is named after
// its host name's first label; hosts given by IP address are named by
// role when the inventory is rendered. defaults fills what a string leaves
// out (the user, the key).
func Endpoints(specs []string, defaults Login) (*Found, error) {
	found := &Found{Source: "the machines given on the command line"}
	for _, s := range specs {
		m, err := endpoint(s, defaults)
		if err != nil {
			return nil, err
		}
		found.Machines = append(found.Machines, m)
	}
	if len(found.Machines) == 0 {
		return nil, fmt.Errorf("no machines given")
	}
	return found, nil
}

// ReadEndpoints reads user@host[:port] lines, as k0sctl init does; blank
// lines and # comments are skipped. Errors name the line.
func ReadEndpoints(r io.Reader, defaults Login) (*Found, error) {
	var specs []string
	err := eachLine(r, func(line int, text string) error {
		if _, err := endpoint(text, defaults); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		specs = append(specs, text)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("standard input, %w", err)
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("standard input held no user@host[:port] lines")
	}
	found, err := Endpoints(specs, defaults)
	if err != nil {
		return nil, err
	}
	found.Source = "the machines given on standard input"
	return found, nil
}

// endpoint parses one user@host[:port].
func endpoint(s string, defaults Login) (Machine, error) {
	const form = "want user@host[:port], like root@192.168.56.10 or vagrant@node1:2222"
	login := defaults
	rest := s
	if user, host, ok := strings.Cut(s, "@"); ok {
		if user == "" || strings.ContainsAny(user, " \t:/") {
			return Machine{}, fmt.Errorf("%q: the user %q is not a user name; %s", s, user, form)
		}
		login.User, rest = user, host
	}
	host := rest
	if h, port, err := net.SplitHostPort(rest); err == nil {
		p, perr := strconv.Atoi(port)
		if perr != nil || p < 1 || p > 65535 {
			return Machine{}, fmt.Errorf("%q: %q is not a port; use 1 to 65535", s, port)
		}
		host, login.Port = h, p
	} else if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
		host = rest[1 : len(rest)-1]
	}
	m := Machine{Address: host, Login: login}
	if ip, err := netip.ParseAddr(host); err == nil {
		m.Address = ip.String()
		return m, nil
	}
	first, _, _ := strings.Cut(strings.TrimSuffix(host, "."), ".")
	name, ok := inventory.NodeName(first)
	if !ok || !inventory.IsAddress(host) {
		return Machine{}, fmt.Errorf("%q: %q is not an IP address or host name; %s", s, host, form)
	}
	m.Name = name
	return m, nil
}
