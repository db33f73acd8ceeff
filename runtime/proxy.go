package runtime

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// ProxyStep gives docker.service and containerd.service the inventory's
// HTTP(S) proxy in a systemd drop-in, with NO_PROXY completed so that
// traffic inside the cluster never goes to the proxy; containerd needs it
// too, since it is what pulls images for the kubelet. When the inventory
// drops the proxy, kprep's drop-ins go. ServiceStep restarts what runs
// with another environment.
type ProxyStep struct{}

// proxyUnits are the services that pull images.
var proxyUnits = []string{"docker", "containerd"}

// proxyDropinPath is the drop-in Docker's documentation names, so that a
// hand-made one from those instructions is replaced rather than doubled.
func proxyDropinPath(unitName string) string {
	return "/etc/systemd/system/" + unitName + ".service.d/http-proxy.conf"
}

// Name implements provision.Step.
func (ProxyStep) Name() string { return "runtime/proxy" }

// Independent implements provision.Independent: the probe reads its own
// drop-ins: the packages install none.
func (ProxyStep) Independent() bool { return true }

// Probe reads both drop-ins.
func (ProxyStep) Probe(*inventory.Host, *inventory.Cluster) string {
	var lines []string
	for _, u := range proxyUnits {
		lines = append(lines, shell.File(u, proxyDropinPath(u)))
	}
	return strings.Join(lines, "\n")
}

// proxyDropin is a drop-in to write (Content) or remove (nil).
type proxyDropin struct {
	Path    string
	Content []byte
}

// Diff implements provision.Step.
func (ProxyStep) Diff(in provision.Input) ([]provision.Planned[proxyDropin], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	env := proxyEnv(in.Cluster)
	var want []byte
	if env != nil {
		want = proxyDropinContent(env)
	}
	var changes []provision.Planned[proxyDropin]
	for _, u := range proxyUnits {
		path := proxyDropinPath(u)
		have, exists := st.File(u)
		switch {
		case want != nil && string(have) != string(want):
			summary := u + ".service has no proxy drop-in"
			if exists {
				summary = path + " differs from the inventory's proxy"
			}
			changes = append(changes, provision.Planned[proxyDropin]{Key: u, Summary: summary,
				Action: fmt.Sprintf("write %s (%s); systemctl daemon-reload", path, describeProxy(env)),
				Data:   proxyDropin{Path: path, Content: want}})
		case want == nil && exists && hostfile.Owned(have):
			changes = append(changes, provision.Planned[proxyDropin]{Key: u,
				Summary: "the inventory has no proxy, but " + u + ".service still has kprep's proxy drop-in",
				Action:  "remove " + path + "; systemctl daemon-reload", Data: proxyDropin{Path: path}})
		}
	}
	return changes, nil
}

// proxyDropinContent is the drop-in for env, encoded by go-systemd's unit
// package. Each assignment is quoted for systemd, and % (a specifier to
// systemd) doubled, so a proxy password with % in it survives.
func proxyDropinContent(env [][2]string) []byte {
	var opts []*unit.UnitOption
	for _, kv := range env {
		opts = append(opts, unit.NewUnitOption("Service", "Environment", quoteEnvironment(kv[0]+"="+kv[1])))
	}
	body, err := io.ReadAll(unit.Serialize(opts))
	if err != nil {
		panic("proxy drop-in: " + err.Error()) // Serialize reads from memory
	}
	header := hostfile.Header("the proxy this service pulls images through. Edits are",
		"overwritten; set docker.proxy in the inventory instead.")
	return append([]byte(header), body...)
}

// quoteEnvironment quotes one VAR=value for an Environment= line.
func quoteEnvironment(assignment string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%")
	return `"` + r.Replace(assignment) + `"`
}

// describeProxy says what a drop-in sets, with any password in a proxy
// URL hidden.
func describeProxy(env [][2]string) string {
	var parts []string
	for _, kv := range env {
		if kv[0] == "NO_PROXY" {
			parts = append(parts, fmt.Sprintf("NO_PROXY with %d entries", len(strings.Split(kv[1], ","))))
			continue
		}
		parts = append(parts, kv[0]+"="+redactURL(kv[1]))
	}
	return strings.Join(parts, ", ")
}

// redactURL hides the password of a URL's user info.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<not a URL>"
	}
	return u.Redacted()
}

// Apply implements provision.Step.
func (ProxyStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[proxyDropin]) error {
	for _, c := range changes {
		d := c.Data
		if d.Content == nil {
			if _, err := t.Run(ctx, transport.Command{Line: "rm -f " + shell.Quote(d.Path)}); err != nil {
				return err
			}
			continue
		}
		// 0644 like the unit files: the proxy's credentials, if any, are
		// readable by `systemctl show` for every user anyway.
		if err := t.WriteFile(ctx, d.Path, d.Content, transport.WriteOptions{Mode: 0o644}); err != nil {
			return err
		}
	}
	_, err := t.Run(ctx, transport.Command{Line: "systemctl daemon-reload"})
	return err
}
