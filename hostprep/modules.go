package hostprep

import (
	"context"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// ModulesStep loads overlay and br_netfilter now and at every boot: the
// container runtime needs overlay, and the net.bridge.* sysctls do not
// exist until br_netfilter is loaded.
type ModulesStep struct{}

const modulesFile = "/etc/modules-load.d/k8s.conf"

// kernelModules are the modules Kubernetes needs, in load order.
var kernelModules = []string{"overlay", "br_netfilter"}

// modulesWork is what one change of ModulesStep does: write the boot-time
// list, or load modules now.
type modulesWork struct {
	Conf string
	Load []string
}

// Name implements provision.Step.
func (ModulesStep) Name() string { return "hostprep/modules" }

// Independent implements provision.Independent: the probe reads its modules
// file and what is loaded: no earlier step changes them.
func (ModulesStep) Independent() bool { return true }

// Probe reads the modules-load.d file and whether each module is there.
// A module counts as loaded by what it provides (overlay in
// /proc/filesystems, the bridge sysctls), which also holds for built-in
// modules, where lsmod shows nothing.
func (ModulesStep) Probe(*inventory.Host, *inventory.Cluster) string {
	// Read with the shell's builtins, no process.
	return shell.File("conf", modulesFile) + `
kprep_o=1
if [ -r /proc/filesystems ]; then while read -r kprep_a kprep_b; do [ "$kprep_a" != overlay ] && [ "$kprep_b" != overlay ] || kprep_o=0; done </proc/filesystems; fi
echo "overlay=$kprep_o"
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; echo "br_netfilter=$?"`
}

// modulesConfWith returns conf with the modules it lacks appended; a file
// that already lists them (with or without more) is left as it is.
func modulesConfWith(conf string, exists bool) (string, []string) {
	listed := map[string]bool{}
	for _, line := range strings.Split(conf, "\n") {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			listed[f[0]] = true
		}
	}
	var missing []string
	for _, m := range kernelModules {
		if !listed[m] {
			missing = append(missing, m)
		}
	}
	if !exists {
		conf = hostfile.Header("kernel modules Kubernetes needs, loaded at boot.")
	}
	if len(missing) > 0 && conf != "" && !strings.HasSuffix(conf, "\n") {
		conf += "\n"
	}
	for _, m := range missing {
		conf += m + "\n"
	}
	return conf, missing
}

// Diff implements provision.Step.
func (ModulesStep) Diff(in provision.Input) ([]provision.Planned[modulesWork], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	var changes []provision.Planned[modulesWork]
	conf, exists := st.File("conf")
	if content, lacking := modulesConfWith(string(conf), exists); len(lacking) > 0 {
		summary := modulesFile + " is missing"
		if exists {
			summary = modulesFile + " does not load " + strings.Join(lacking, ", ") + " at boot"
		}
		changes = append(changes, provision.Planned[modulesWork]{Key: "conf", Summary: summary, Action: "write " + modulesFile, Data: modulesWork{Conf: content}})
	}
	var missing []string
	for _, m := range kernelModules {
		if st.Values[m] != "0" {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		changes = append(changes, provision.Planned[modulesWork]{Key: "load", Summary: "not loaded: " + strings.Join(missing, ", "),
			Action: "modprobe " + strings.Join(missing, " "), Data: modulesWork{Load: missing}})
	}
	return changes, nil
}

// Apply implements provision.Step.
func (ModulesStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[modulesWork]) error {
	for _, c := range changes {
		switch c.Key {
		case "conf":
			if err := t.WriteFile(ctx, modulesFile, []byte(c.Data.Conf), transport.WriteOptions{Mode: 0o644}); err != nil {
				return err
			}
		case "load":
			for _, m := range c.Data.Load {
				if _, err := t.Run(ctx, transport.Command{Line: "modprobe " + shell.Quote(m)}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
