package hostprep

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// SELinuxStep makes SELinux permissive (or disabled) at runtime and at boot,
// so that containers can read their volumes and kubelet its files.
type SELinuxStep struct{}

const (
	selinuxConfig    = "/etc/selinux/config"
	selinuxSysconfig = "/etc/sysconfig/selinux"
	// selinuxLinkTarget is where /etc/sysconfig/selinux points on EL.
	selinuxLinkTarget = "../selinux/config"
)

// Name implements provision.Step.
func (SELinuxStep) Name() string { return "hostprep/selinux" }

// Independent implements provision.Independent: the probe reads SELinux's
// mode and its config: no other step changes them.
func (SELinuxStep) Independent() bool { return true }

// Probe reads the runtime mode, the config file and what
// /etc/sysconfig/selinux is. Where a link points does not matter (EL
// ships a relative one; a user's absolute one is as good): only a regular
// file there is a fault, so the probe asks no readlink.
func (SELinuxStep) Probe(*inventory.Host, *inventory.Cluster) string {
	// getenforce alone: it prints Disabled where selinuxenabled would
	// fail, one process fewer on every EL host.
	return shell.Value("getenforce", "getenforce") + "\n" +
		shell.File("config", selinuxConfig) + `
if [ -L ` + selinuxSysconfig + ` ]; then echo sysconfig=link
elif [ -e ` + selinuxSysconfig + ` ]; then echo sysconfig=file
else echo sysconfig=missing; fi`
}

var selinuxLine = regexp.MustCompile(`(?m)^[ \t]*SELINUX[ \t]*=[ \t]*([A-Za-z]*)[ \t]*$`)

// configuredMode returns the SELINUX= value of a config file ("" if none).
func configuredMode(config string) string {
	m := selinuxLine.FindAllStringSubmatch(config, -1)
	if len(m) == 0 {
		return ""
	}
	return strings.ToLower(m[len(m)-1][1]) // the last assignment wins
}

// setConfiguredMode rewrites every SELINUX= line to mode (appending one if
// there is none) and leaves the rest, SELINUXTYPE included, as it was.
func setConfiguredMode(config, mode string) string {
	if !selinuxLine.MatchString(config) {
		if config != "" && !strings.HasSuffix(config, "\n") {
			config += "\n"
		}
		return config + "SELINUX=" + mode + "\n"
	}
	return selinuxLine.ReplaceAllString(config, "SELINUX="+mode)
}

// Diff implements provision.Step.
func (SELinuxStep) Diff(in provision.Input) ([]provision.Planned[string], error) {
	want := in.Cluster.Hostprep.SELinux
	if want == "keep" || in.Facts.Family != facts.FamilyRHEL {
		return nil, nil
	}
	if want == "disabled" && in.Facts.Major >= 9 {
		return nil, fmt.Errorf("selinux: disabled is refused on %s: since EL9, SELINUX=disabled in %s no longer "+
			"turns SELinux off (that needs the kernel argument selinux=0) and only leaves a config that lies; "+
			"set hostprep.selinux: permissive, which is what Kubernetes needs", in.Facts.OSName, selinuxConfig)
	}
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	config, hasConfig := st.File("config")
	mode := st.Values["getenforce"]
	if enabled := mode == "Enforcing" || mode == "Permissive"; !hasConfig && !enabled {
		return nil, nil // SELinux is not installed here
	}
	var changes []provision.Planned[string]
	if mode == "Enforcing" {
		changes = append(changes, provision.Planned[string]{Key: "runtime",
			Summary: "SELinux is enforcing now", Action: "setenforce 0"})
	}
	// permissive is satisfied by disabled: turning a disabled SELinux back
	// on (even permissive) would relabel the whole disk at the next boot.
	if got := configuredMode(string(config)); hasConfig && got != want && !(want == "permissive" && got == "disabled") {
		action := fmt.Sprintf("set SELINUX=%s in %s", want, selinuxConfig)
		if want == "disabled" {
			action += " (takes effect at the next reboot; permissive until then)"
		}
		changes = append(changes, provision.Planned[string]{Key: "config",
			Summary: fmt.Sprintf("SELinux is %s at boot (%s: SELINUX=%s)", orUnset(got), selinuxConfig, got),
			Action:  action, Data: setConfiguredMode(string(config), want)})
	}
	if st.Values["sysconfig"] == "file" && hasConfig {
		changes = append(changes, provision.Planned[string]{Key: "symlink",
			Summary: selinuxSysconfig + " is a regular file, not the link to " + selinuxLinkTarget + " that EL ships (an earlier sed -i replaced it)",
			Action:  "back it up and restore the link"})
	}
	return changes, nil
}

func orUnset(mode string) string {
	if mode == "" {
		return "unset"
	}
	return mode
}

// Apply implements provision.Step.
func (SELinuxStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[string]) error {
	for _, c := range changes {
		var err error
		switch c.Key {
		case "runtime":
			_, err = t.Run(ctx, transport.Command{Line: "setenforce 0"})
		case "config":
			// The real file, never the /etc/sysconfig/selinux link: writing
			// through the link would replace it with a copy.
			err = t.WriteFile(ctx, selinuxConfig, []byte(c.Data), transport.WriteOptions{})
		case "symlink":
			_, err = t.Run(ctx, transport.Command{Line: fmt.Sprintf(
				"[ -e %[1]s%[2]s ] || cp -p %[1]s %[1]s%[2]s; ln -sfn %[3]s %[1]s",
				selinuxSysconfig, transport.BackupSuffix, selinuxLinkTarget)})
		}
		if err != nil {
			return err
		}
	}
	return nil
}
