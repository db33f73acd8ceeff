package starter

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/templates"
)

// Options shape the starter inventory.
type Options struct {
	// Command is how kprep init was called, for the file's header.
	Command string
	// Name is metadata.name; "" means "lab".
	Name string
	// ControlPlanes is how many of the machines, first ones first, run the
	// control plane; 0 means 1.
	ControlPlanes int
	// FileName is the name the file is checked under (relative key paths
	// are resolved against its folder); "" means cluster.yaml here.
	FileName string
	// Check is how the rendered file is validated (environment, files);
	// the zero value looks at the real machine.
	Check inventory.Options
}

// template is the embedded file the inventory is rendered from.
const template = "cluster-starter.yaml"

type sshView struct {
	User, KeyFile              string
	Port                       int
	HostKeyPolicy, HostKeyNote string
}

type hostView struct {
	Name, Address, Roles, SSH string
	Notes                     []string
}

type view struct {
	Command, Source, Name            string
	Header                           []string
	SSH                              sshView
	ControlPlanes                    string
	Hosts                            []hostView
	DockerVersion, KubernetesVersion string
	ControlPlaneEndpoint             string
}

// Render writes the commented starter inventory for the machines found and
// checks it as `kprep validate` would: an inventory that does not pass is
// an error, never output.
func Render(f *Found, o Options) ([]byte, error) {
	machines := f.Machines
	if len(machines) == 0 {
		return nil, fmt.Errorf("no machines to write an inventory for")
	}
	cps := o.ControlPlanes
	if cps == 0 {
		cps = 1
	}
	if cps < 0 || cps > len(machines) {
		return nil, fmt.Errorf("--control-planes %d: there are %d machines; give 1 to %d", cps, len(machines), len(machines))
	}
	names, err := hostNames(machines, cps)
	if err != nil {
		return nil, err
	}
	v := view{
		Command: o.Command, Source: f.Source, Name: orDefault(o.Name, "lab"),
		DockerVersion: DockerVersion, KubernetesVersion: KubernetesVersion,
	}
	if _, ok := inventory.NodeName(v.Name); !ok || strings.ContainsAny(v.Name, " \t#:") {
		return nil, fmt.Errorf("--name %q: use lowercase letters, digits and '-'", v.Name)
	}
	for _, s := range f.Skipped {
		v.Header = append(v.Header, "left out: "+s)
	}
	common := commonLogin(machines)
	v.SSH = sshView{User: scalar(common.User), KeyFile: scalar(common.KeyFile), Port: common.Port,
		HostKeyPolicy: orDefault(f.HostKeyPolicy, "accept-new"), HostKeyNote: f.HostKeyNote}
	v.ControlPlanes = controlPlaneNote(names[:cps])
	for i, m := range machines {
		h := hostView{Name: names[i], Address: scalar(m.Address), Notes: m.Notes, Roles: roles(i, cps, len(machines))}
		h.SSH = hostLogin(m.Login, common)
		v.Hosts = append(v.Hosts, h)
	}
	if cps > 1 {
		v.ControlPlaneEndpoint = scalar(endpointOf(machines[0].Address))
	}
	out, err := templates.Render(template, v)
	if err != nil {
		return nil, err
	}
	file := orDefault(o.FileName, "cluster.yaml")
	if _, err := inventory.Parse(file, out, o.Check); err != nil {
		return nil, fmt.Errorf("the starter inventory does not pass validation:\n%w", err)
	}
	return out, nil
}

// hostNames keeps the names the machines came with and names the others
// by role (cp1, cp2, w1, ...), skipping names already taken.
func hostNames(machines []Machine, cps int) ([]string, error) {
	names := make([]string, len(machines))
	taken := map[string]int{}
	for i, m := range machines {
		if m.Name == "" {
			continue
		}
		if j, dup := taken[m.Name]; dup {
			return nil, fmt.Errorf("two machines would both be named %s (%s and %s); give them names of their own", m.Name, machines[j].Address, m.Address)
		}
		taken[m.Name] = i
		names[i] = m.Name
	}
	next := map[string]int{}
	for i := range machines {
		if names[i] != "" {
			continue
		}
		prefix := "w"
		if i < cps {
			prefix = "cp"
		}
		for {
			next[prefix]++
			name := prefix + strconv.Itoa(next[prefix])
			if _, dup := taken[name]; !dup {
				names[i], taken[name] = name, i
				break
			}
		}
	}
	return names, nil
}

// roles gives the first cps machines the control plane. A cluster whose
// machines all run the control plane runs workloads on them too.
func roles(i, cps, total int) string {
	switch {
	case cps == total:
		return inventory.RoleControlPlane + ", " + inventory.RoleWorker
	case i < cps:
		return inventory.RoleControlPlane
	}
	return inventory.RoleWorker
}

// commonLogin is the login most machines share (user, key, port), for
// the cluster's ssh block; each host's own block says where it differs.
func commonLogin(machines []Machine) Login {
	var c Login
	c.User = mostCommon(machines, func(l Login) string { return l.User })
	c.KeyFile = mostCommon(machines, func(l Login) string { return l.KeyFile })
	port := mostCommon(machines, func(l Login) string { return strconv.Itoa(l.Port) })
	c.Port, _ = strconv.Atoi(port)
	if c.User == "" {
		c.User = "root"
	}
	if c.Port == 22 {
		c.Port = 0
	}
	return c
}

// mostCommon is the value of field most machines have, the first such on a
// tie; a value only one of several machines has is not common, and gives "".
func mostCommon(machines []Machine, field func(Login) string) string {
	count := map[string]int{}
	best := ""
	for _, m := range machines {
		v := field(m.Login)
		count[v]++
		if count[v] > count[best] {
			best = v
		}
	}
	if len(machines) > 1 && count[best] == 1 {
		return ""
	}
	return best
}

// hostLogin is a host's ssh block as a YAML flow mapping: what its login
// has beyond the common one; "" when nothing.
func hostLogin(l, common Login) string {
	var fields []string
	if l.Address != "" {
		fields = append(fields, "address: "+scalar(l.Address))
	}
	if port, commonPort := orPort(l.Port), orPort(common.Port); port != commonPort {
		fields = append(fields, "port: "+strconv.Itoa(l.Port))
	}
	if l.User != "" && l.User != common.User {
		fields = append(fields, "user: "+scalar(l.User))
	}
	if l.KeyFile != "" && l.KeyFile != common.KeyFile {
		fields = append(fields, "privateKeyFile: "+scalar(l.KeyFile))
	}
	if len(fields) == 0 {
		return ""
	}
	return "{" + strings.Join(fields, ", ") + "}"
}

// orPort is port, or SSH's 22 for none.
func orPort(port int) int {
	if port == 0 {
		return 22
	}
	return port
}

// controlPlaneNote says which hosts run the control plane.
func controlPlaneNote(names []string) string {
	if len(names) == 1 {
		return names[0] + " runs the control plane"
	}
	return strings.Join(names, ", ") + " run the control plane"
}

// endpointOf is the API endpoint host:port for an address.
func endpointOf(addr string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]:6443"
	}
	return addr + ":6443"
}

// scalar writes a string as a YAML scalar that reads back as the same
// string: plain when it can be, quoted by the YAML library when not (a
// path with '#' or ': ', a name YAML would take for a number).
func scalar(s string) string {
	if s == "" {
		return ""
	}
	out, err := yaml.Marshal(s)
	if err != nil {
		return strconv.Quote(s)
	}
	text := strings.TrimSuffix(string(out), "\n")
	if strings.Contains(text, "\n") {
		return strconv.Quote(s)
	}
	return text
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
