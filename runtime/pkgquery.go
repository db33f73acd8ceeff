package runtime

import (
	"strings"

	"github.com/kprep/kprep/provision/facts"
)

// installedPackage is a package the host's package database lists.
type installedPackage struct {
	Name    string
	Version string // as the package manager prints it: 3:24.0.9-1.el9, 5:24.0.9-1~ubuntu.22.04~jammy
}

// parseInstalled reads shell.Packages' lines for the host's family.
// rpm prints "(none)" for a package without an epoch; dpkg lists packages
// it merely knows of (removed, config files left) with a status whose
// second letter is n or c, which are not installed.
func parseInstalled(lines []string, family facts.Family) map[string]installedPackage {
	out := map[string]installedPackage{}
	for _, line := range lines {
		f := strings.Fields(line)
		switch {
		case family == facts.FamilyRHEL && len(f) == 3 && f[0] == "rpm":
			v := strings.TrimPrefix(f[2], "(none):")
			out[f[1]] = installedPackage{Name: f[1], Version: v}
		case family == facts.FamilyDebian && len(f) >= 4 && f[0] == "deb":
			status := f[3]
			if len(status) < 2 || status[1] == 'n' || status[1] == 'c' {
				continue
			}
			out[f[1]] = installedPackage{Name: f[1], Version: f[2]}
		}
	}
	return out
}
