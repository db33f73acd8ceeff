package inventory

import (
	"fmt"
	"strings"
)

// validator runs the semantic checks, each reported at the value at fault.
type validator struct {
	c    *Cluster
	opts Options
	sink *errorSink
}

func validate(c *Cluster, opts Options, sink *errorSink) {
	v := &validator{c: c, opts: opts.complete(), sink: sink}
	v.header()
	v.sshBlock("ssh", &c.SSH, false)
	v.hosts()
	v.hostprep()
	v.docker()
	v.kubernetes()
	v.localFiles()
}

// errorf reports a problem with path, unless decoding already reported one
// there: a value of the wrong type was left empty, and "required" on top of
// "expected a string" would only confuse.
func (v *validator) errorf(path, format string, args ...any) {
	if v.sink.full {
		return
	}
	if v.c.src != nil {
		for _, f := range v.c.src.failed {
			if related(path, f) {
				return
			}
		}
	}
	v.sink.add(v.c.src.at(path), path, format, args...)
}

// oneOf checks an enumerated field, naming the allowed values.
func (v *validator) oneOf(path, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	v.errorf(path, "%q is not one of %s%s", clip(value), strings.Join(allowed, ", "), didYouMean(value, allowed))
}

func (v *validator) header() {
	c := v.c
	v.fixed("apiVersion", c.APIVersion, APIVersion, "this kprep reads "+APIVersion)
	v.fixed("kind", c.Kind, KindCluster, "the only kind is "+KindCluster)
	if c.Metadata.Name == "" {
		v.errorf("metadata.name", "required; give the cluster a name")
	}
	if c.Concurrency < 1 {
		v.errorf("concurrency", "%d is too small; it must be at least 1", c.Concurrency)
	}
}

// fixed checks a field that has exactly one right value.
func (v *validator) fixed(path, got, want, only string) {
	switch got {
	case want:
	case "":
		v.errorf(path, "required; write %s: %s", path, want)
	default:
		v.errorf(path, "%q is not supported; %s", clip(got), only)
	}
}

// sshBlock checks the cluster's ssh block or, with override, a host's,
// where an absent field means "as the cluster says".
func (v *validator) sshBlock(path string, s *SSH, override bool) {
	given := func(field string, zero bool) bool { return !override || !zero || v.c.src.isSet(path+"."+field) }
	switch {
	case !override && s.Address != "":
		v.errorf(path+".address", "only a host's own ssh block may give the address kprep connects to; move it under that host's ssh:")
	case s.Address != "" && !isAddress(s.Address):
		hint := ""
		if isEndpoint(s.Address) {
			hint = "; give the port as ssh.port"
		}
		v.errorf(path+".address", "%q is not an IP address or host name%s", clip(s.Address), hint)
	}
	if given("port", s.Port == 0) {
		v.port(path+".port", s.Port)
	}
	if s.Sudo != "" || !override {
		v.oneOf(path+".sudo", s.Sudo, "auto", "true", "false")
	}
	if s.HostKeyPolicy != "" || !override {
		v.oneOf(path+".hostKeyPolicy", s.HostKeyPolicy, "strict", "accept-new", "insecure")
	}
	if given("connectTimeout", s.ConnectTimeout == 0) && s.ConnectTimeout <= 0 {
		v.errorf(path+".connectTimeout", "%s is too short; it must be more than 0s", s.ConnectTimeout)
	}
	v.envName(path+".passwordEnv", s.PasswordEnv)
	v.envName(path+".sudoPasswordEnv", s.SudoPasswordEnv)
	if b := s.Bastion; b != nil {
		bp := path + ".bastion"
		v.address(bp+".address", b.Address)
		v.port(bp+".port", b.Port)
		v.envName(bp+".passwordEnv", b.PasswordEnv)
	}
}

func (v *validator) port(path string, port int) {
	if port < 1 || port > 65535 {
		v.errorf(path, "%d is not a port; use 1 to 65535", port)
	}
}

// envName checks that a *Env field holds a variable's name. The value is not
// quoted back: someone who put the secret itself there should not see it in
// a log.
func (v *validator) envName(path, name string) {
	if name != "" && !envName.MatchString(name) {
		v.errorf(path, "is not an environment variable name; give the NAME of a variable that holds the password, never the password itself")
	}
}

// address checks a required address field.
func (v *validator) address(path, addr string) {
	switch {
	case addr == "":
		v.errorf(path, "required; give an IP address or host name")
	case !isAddress(addr):
		hint := ""
		if isEndpoint(addr) {
			hint = "; give the port as ssh.port"
		}
		v.errorf(path, "%q is not an IP address or host name%s", clip(addr), hint)
	}
}

func (v *validator) hosts() {
	c := v.c
	if len(c.Hosts) == 0 {
		v.errorf("hosts", "required; list at least one host")
		return
	}
	names := map[string]int{}
	addrs := map[string]int{}
	logins := map[string]int{}
	for i := range c.Hosts {
		h := &c.Hosts[i]
		p := indexPath("hosts", i)
		switch {
		case h.Name == "":
			v.errorf(p+".name", "required; it becomes the hostname and the Kubernetes node name")
		case !isNodeName(h.Name):
			hint := ""
			if fixed := nodeNameFor(h.Name); fixed != "" {
				hint = fmt.Sprintf("; did you mean %q?", fixed)
			}
			v.errorf(p+".name", "%q is not a valid host name: it becomes the hostname and the Kubernetes node name, so use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit%s", clip(h.Name), hint)
		default:
			if j, dup := names[h.Name]; dup {
				v.errorf(p+".name", "%q is already the name of hosts[%d]", h.Name, j)
			} else {
				names[h.Name] = i
			}
		}
		v.address(p+".address", h.Address)
		if key, ok := addressKey(h.Address); ok {
			if j, dup := addrs[key]; dup {
				v.errorf(p+".address", "%s is already the address of hosts[%d] (%s)", h.Address, j, c.Hosts[j].Name)
			} else {
				addrs[key] = i
			}
		}
		v.roles(p+".roles", h.Roles)
		v.nodeLabels(p+".labels", h.Labels)
		v.taints(p, h)
		if h.SSH != nil {
			v.sshBlock(p+".ssh", h.SSH, true)
			v.uniqueLogin(logins, i)
		}
	}
	if len(c.ControlPlanes()) == 0 {
		v.errorf("hosts", "no host has the %s role; give at least one host roles: [%s]", RoleControlPlane, RoleControlPlane)
	}
}

// uniqueLogin reports a host whose ssh.address and port are where kprep
// already logs in to another host that sets ssh.address: two Vagrant
// machines on one forwarded port would be one machine prepared twice.
func (v *validator) uniqueLogin(seen map[string]int, i int) {
	h := &v.c.Hosts[i]
	key, ok := addressKey(h.SSH.Address)
	if !ok {
		return // none given, or already reported
	}
	endpoint := fmt.Sprintf("%s port %d", key, h.Connection.Port)
	if j, dup := seen[endpoint]; dup {
		v.errorf(indexPath("hosts", i)+".ssh.address", "%s is already where kprep logs in to hosts[%d] (%s); each host needs its own address or port",
			endpoint, j, v.c.Hosts[j].Name)
		return
	}
	seen[endpoint] = i
}

func (v *validator) roles(path string, roles []string) {
	if len(roles) == 0 {
		v.errorf(path, "required; give %s, %s or both", RoleControlPlane, RoleWorker)
		return
	}
	allowed := []string{RoleControlPlane, RoleWorker}
	seen := map[string]bool{}
	for j, r := range roles {
		rp := indexPath(path, j)
		switch {
		case r == "master":
			v.errorf(rp, "%q is not one of %s, %s; Kubernetes calls it %s now", r, RoleControlPlane, RoleWorker, RoleControlPlane)
		case r != RoleControlPlane && r != RoleWorker:
			v.oneOf(rp, r, allowed...)
		case seen[r]:
			v.errorf(rp, "%q is listed twice", r)
		}
		seen[r] = true
	}
}

// localFiles checks what each host's connection needs from this machine:
// key files, known_hosts under the strict policy, and the environment
// variables it names. Each problem is reported once, where the value was
// written (the cluster's ssh block or the host's), however many hosts use it.
func (v *validator) localFiles() {
	checked := map[string]bool{}
	once := func(path string, bad bool, format string, args ...any) {
		if bad && !checked[path] {
			checked[path] = true
			v.errorf(path, format, args...)
		}
	}
	for i := range v.c.Hosts {
		h := &v.c.Hosts[i]
		conn := h.Connection
		from := func(field string, inHost func(*SSH) string) string {
			if h.SSH != nil && inHost(h.SSH) != "" {
				return indexPath("hosts", i) + ".ssh." + field
			}
			return "ssh." + field
		}
		key := conn.PrivateKeyFile
		once(from("privateKeyFile", func(s *SSH) string { return s.PrivateKeyFile }),
			key != "" && !v.opts.FileExists(key), "key file %s does not exist", key)
		v.env(once, from("passwordEnv", func(s *SSH) string { return s.PasswordEnv }), conn.PasswordEnv)
		if usesSudo(conn) {
			v.env(once, from("sudoPasswordEnv", func(s *SSH) string { return s.SudoPasswordEnv }), conn.SudoPasswordEnv)
		}
		if kh := conn.KnownHostsFile; conn.HostKeyPolicy == "strict" {
			once(from("knownHostsFile", func(s *SSH) string { return s.KnownHostsFile }), !v.opts.FileExists(kh),
				"%s does not exist, and hostKeyPolicy strict connects only to hosts listed there; add their keys to it or use accept-new", kh)
		}
		if b := conn.Bastion; b != nil {
			bp := "ssh.bastion"
			if h.SSH != nil && h.SSH.Bastion != nil {
				bp = indexPath("hosts", i) + ".ssh.bastion"
			}
			once(bp+".privateKeyFile", b.PrivateKeyFile != "" && !v.opts.FileExists(b.PrivateKeyFile),
				"key file %s does not exist", b.PrivateKeyFile)
			v.env(once, bp+".passwordEnv", b.PasswordEnv)
		}
	}
}

func (v *validator) env(once func(string, bool, string, ...any), path, name string) {
	if name == "" || !envName.MatchString(name) {
		return // none asked for, or already reported as no variable name
	}
	_, set := v.opts.LookupEnv(name)
	once(path, !set, "environment variable %s is not set; export it before running kprep", name)
}

// usesSudo reports whether commands on the connection go through sudo.
func usesSudo(s SSH) bool {
	return s.Sudo == "true" || s.Sudo == "auto" && s.User != "root"
}
