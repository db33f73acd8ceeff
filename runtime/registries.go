package runtime

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/templates"
)

// RegistriesStep gives containerd's CRI the registry settings dockerd gets
// from daemon.json: docker.registryMirrors for Docker Hub images and
// docker.insecureRegistries, as one hosts.toml per registry under
// /etc/containerd/certs.d. Without it the kubelet's pulls ignore both (a
// mirror set for Docker does nothing for Kubernetes), and an image
// repository on a plain-HTTP registry cannot be pulled at all. containerd
// reads these files at every pull: no restart.
type RegistriesStep struct{}

// Name implements provision.Step.
func (RegistriesStep) Name() string { return "runtime/registries" }

// Independent implements provision.Independent: the probe reads the
// hosts.toml files under certs.d: no other step writes them (the containerd
// step points config.toml at the folder).
func (RegistriesStep) Independent() bool { return true }

// AppliesTo implements provision.HostFilter: cri-dockerd pulls through
// dockerd, which has daemon.json.
func (RegistriesStep) AppliesTo(_ *inventory.Host, c *inventory.Cluster) bool {
	return c.Kubernetes.CRI == "containerd"
}

// dockerHub is the registry name containerd files Docker Hub images under.
const dockerHub = "docker.io"

// Probe prints every hosts.toml under the certs folder, labelled by its
// registry.
func (RegistriesStep) Probe(_ *inventory.Host, c *inventory.Cluster) string {
	return registriesProbe(containerdCertsDir, managedRegistries(c))
}

// registriesProbe reads the hosts.toml of each registry kprep manages with
// the probe's batched files (no process of its own on a converged host),
// then any other hosts.toml in dir, one by one: those are rare, a registry
// the inventory no longer names or one the user wrote.
func registriesProbe(dir string, registries []string) string {
	var b strings.Builder
	for _, r := range registries {
		b.WriteString(shell.File("hosts:"+r, dir+"/"+r+"/hosts.toml") + "\n")
	}
	fmt.Fprintf(&b, `for f in %s/*/hosts.toml; do
  [ -f "$f" ] || continue
  d=${f%%/hosts.toml}; d=${d##*/}
  case ' %s ' in *" $d "*) continue ;; esac
  printf 'file hosts:%%s %%s\n' "$d" "$(base64 -w0 < "$f")"
done`, shell.Quote(dir), strings.Join(registries, " "))
	return b.String()
}

// managedRegistries names the registries kprep writes a hosts.toml for,
// sorted: Docker Hub when there are mirrors (an insecure Docker Hub alone
// gets none), and every other insecure registry.
func managedRegistries(c *inventory.Cluster) []string {
	names := map[string]bool{}
	if len(c.Docker.RegistryMirrors) > 0 {
		names[dockerHub] = true
	}
	for _, r := range c.Docker.InsecureRegistries {
		if name := registryName(r); name != dockerHub {
			names[name] = true
		}
	}
	return slices.Sorted(maps.Keys(names))
}

// registryHost is one [host."URL"] table of a hosts.toml.
type registryHost struct {
	URL        string
	SkipVerify bool
}

// wantRegistryFiles renders the hosts.toml each registry needs: Docker Hub
// through the mirrors, then Docker Hub itself; an insecure registry over
// HTTPS without verifying its certificate, then over plain HTTP (dockerd's
// order for insecure registries). containerd tries hosts as written.
func wantRegistryFiles(c *inventory.Cluster) (map[string]string, error) {
	insecure := map[string]bool{}
	for _, r := range c.Docker.InsecureRegistries {
		insecure[registryName(r)] = true
	}
	out := map[string]string{}
	render := func(registry, server string, hosts []registryHost) error {
		text, err := templates.Render("containerd-hosts.toml", map[string]any{"Registry": registry, "Server": server, "Hosts": hosts})
		if err != nil {
			return err
		}
		var check map[string]any
		if err := toml.Unmarshal(text, &check); err != nil {
			return fmt.Errorf("hosts.toml for %s does not parse as TOML: %v", registry, err)
		}
		out[registry] = string(text)
		return nil
	}
	for _, name := range managedRegistries(c) {
		var err error
		if name == dockerHub {
			var hosts []registryHost
			for _, m := range c.Docker.RegistryMirrors {
				hosts = append(hosts, registryHost{URL: strings.TrimRight(m, "/"), SkipVerify: insecure[registryName(m)]})
			}
			err = render(dockerHub, "https://registry-1.docker.io", hosts)
		} else {
			err = render(name, "https://"+name, []registryHost{{URL: "https://" + name, SkipVerify: true}, {URL: "http://" + name}})
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// registryName is the host[:port] of a registry given as a URL or a name.
func registryName(r string) string {
	if u, err := url.Parse(r); err == nil && u.Host != "" {
		return u.Host
	}
	return strings.TrimRight(r, "/")
}

// registryFile is one hosts.toml to write or remove.
type registryFile struct {
	Registry string
	Content  string // empty: remove
}

func hostsPath(registry string) string { return containerdCertsDir + "/" + registry + "/hosts.toml" }

// Diff implements provision.Step.
func (RegistriesStep) Diff(in provision.Input) ([]provision.Planned[registryFile], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	want, err := wantRegistryFiles(in.Cluster)
	if err != nil {
		return nil, err
	}
	var changes []provision.Planned[registryFile]
	for _, registry := range slices.Sorted(maps.Keys(want)) {
		cur, exists := st.File("hosts:" + registry)
		summary := hostfile.Compare(hostsPath(registry), cur, exists, []byte(want[registry]))
		if summary == "" {
			continue
		}
		changes = append(changes, provision.Planned[registryFile]{Key: "write", Summary: summary, Action: "write " + hostsPath(registry),
			Data: registryFile{Registry: registry, Content: want[registry]}})
	}
	var stale []string
	for _, label := range st.FileLabels() {
		registry, ok := strings.CutPrefix(label, "hosts:")
		if !ok || want[registry] != "" {
			continue
		}
		if cur, _ := st.File(label); hostfile.Owned(cur) {
			stale = append(stale, registry)
		}
	}
	sort.Strings(stale)
	for _, registry := range stale {
		changes = append(changes, provision.Planned[registryFile]{Key: "remove",
			Summary: fmt.Sprintf("%s is kprep's, but the inventory no longer names %s", hostsPath(registry), registry),
			Action:  "remove it", Data: registryFile{Registry: registry}})
	}
	return changes, nil
}

// Apply implements provision.Step.
func (RegistriesStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[registryFile]) error {
	for _, c := range changes {
		f := c.Data
		var err error
		if c.Key == "write" {
			err = t.WriteFile(ctx, hostsPath(f.Registry), []byte(f.Content), transport.WriteOptions{Mode: 0o644})
		} else {
			dir := containerdCertsDir + "/" + f.Registry
			// A backup of a file kprep once replaced stays, and with it the
			// folder: it is the user's.
			_, err = t.Run(ctx, transport.Command{Line: fmt.Sprintf("rm -f %s && { rmdir %s 2>/dev/null; true; }",
				shell.Quote(hostsPath(f.Registry)), shell.Quote(dir))})
		}
		if err != nil {
			return err
		}
	}
	return nil
}
