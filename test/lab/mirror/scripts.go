package mirror

import (
	"fmt"
	"strings"
)

// Maintainer scripts. The rpm ones do what the real packages' %systemd_*
// macros do on EL, written out because Debian's rpm has no systemd macros:
// reload systemd, and on erase disable and stop. They do NOT run
// `systemctl preset`: on EL the default preset disables docker, containerd
// and kubelet, but a Debian-based lab host's preset would enable them, so
// leaving preset out keeps the EL behaviour (installed, not enabled, not
// started) that kprep must handle. The deb ones are what dh_installsystemd
// generates for the real Ubuntu packages: enable and start on install,
// restart on upgrade.

// rpmServiceScripts returns %post, %preun and %postun for units.
func rpmServiceScripts(units []string, restartOnUpgrade bool) map[string]string {
	list := strings.Join(units, " ")
	postun := "systemctl daemon-reload >/dev/null 2>&1 || :\n"
	if restartOnUpgrade {
		postun += fmt.Sprintf("if [ $1 -ge 1 ]; then\n    systemctl try-restart %s >/dev/null 2>&1 || :\nfi\n", units[0])
	}
	return map[string]string{
		"post":   "systemctl daemon-reload >/dev/null 2>&1 || :\n",
		"preun":  fmt.Sprintf("if [ $1 -eq 0 ]; then\n    systemctl --no-reload disable --now %s >/dev/null 2>&1 || :\nfi\n", list),
		"postun": postun,
	}
}

// dockerGroupScript creates the docker group that docker.socket hands the
// API socket to, as docker-ce's own scripts do.
const dockerGroupScript = "if ! getent group docker > /dev/null; then\n    groupadd --system docker\nfi\n"

// debServiceScripts returns postinst, prerm and postrm for units; the
// postinst's configure branch runs configure first (e.g. the group).
func debServiceScripts(units []string, configure string) map[string]string {
	quoted := make([]string, len(units))
	for i, u := range units {
		quoted[i] = "'" + u + "'"
	}
	q := strings.Join(quoted, " ")
	var post strings.Builder
	post.WriteString("#!/bin/sh\nset -e\n")
	if configure != "" {
		post.WriteString("if [ \"$1\" = configure ] && [ -z \"$2\" ]; then\n" + indent(configure) + "fi\n")
	}
	post.WriteString("# Automatically added by dh_installsystemd\n")
	for _, u := range quoted {
		fmt.Fprintf(&post, `if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	# This will only remove masks created by d-s-h on package removal.
	deb-systemd-helper unmask %[1]s >/dev/null || true

	# was-enabled defaults to true, so new installations run enable.
	if deb-systemd-helper --quiet was-enabled %[1]s; then
		deb-systemd-helper enable %[1]s >/dev/null || true
	else
		deb-systemd-helper update-state %[1]s >/dev/null || true
	fi
fi
`, u)
	}
	fmt.Fprintf(&post, `if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			_dh_action=restart
		else
			_dh_action=start
		fi
		deb-systemd-invoke $_dh_action %s >/dev/null || true
	fi
fi
`, q)
	prerm := fmt.Sprintf(`#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop %s >/dev/null || true
fi
`, q)
	var postrm strings.Builder
	postrm.WriteString("#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then\n\tsystemctl --system daemon-reload >/dev/null || true\nfi\n")
	for _, u := range quoted {
		fmt.Fprintf(&postrm, `if [ "$1" = "remove" ] && [ -x "/usr/bin/deb-systemd-helper" ]; then
	deb-systemd-helper mask %[1]s >/dev/null || true
fi
if [ "$1" = "purge" ] && [ -x "/usr/bin/deb-systemd-helper" ]; then
	deb-systemd-helper purge %[1]s >/dev/null || true
	deb-systemd-helper unmask %[1]s >/dev/null || true
fi
`, u)
	}
	return map[string]string{"postinst": post.String(), "prerm": prerm, "postrm": postrm.String()}
}

// indent indents each line of s by four spaces.
func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString("    " + l)
		}
	}
	return b.String()
}
