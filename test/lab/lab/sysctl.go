package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// machineSysctls are machine-wide limits that a few systemd hosts exhaust:
// each host's systemd, journald, dbus and udev-less services take inotify
// instances from root's shared budget (128 by default; past ~18 hosts new
// ones fail with "Too many open files"). Up raises them for the run and
// Down puts back what was there.
var machineSysctls = []struct {
	path string
	min  int
}{
	{"/proc/sys/fs/inotify/max_user_instances", 8192},
	{"/proc/sys/fs/inotify/max_user_watches", 524288},
}

// raiseSysctls raises the machine limits that are below the lab's needs
// and returns what it changed.
func raiseSysctls() ([]sysctlChange, error) {
	var changes []sysctlChange
	for _, s := range machineSysctls {
		b, err := os.ReadFile(s.path)
		if err != nil {
			continue
		}
		orig := strings.TrimSpace(string(b))
		if n, err := strconv.Atoi(orig); err == nil && n >= s.min {
			continue
		}
		set := strconv.Itoa(s.min)
		if err := os.WriteFile(s.path, []byte(set), 0o644); err != nil {
			return changes, fmt.Errorf("raise %s to %s: %w", s.path, set, err)
		}
		changes = append(changes, sysctlChange{Path: s.path, Original: orig, Set: set})
	}
	return changes, nil
}

// restoreSysctls puts back what raiseSysctls changed, unless someone has
// changed it again since.
func restoreSysctls(changes []sysctlChange) error {
	for _, c := range changes {
		b, err := os.ReadFile(c.Path)
		if err != nil || strings.TrimSpace(string(b)) != c.Set {
			continue
		}
		if err := os.WriteFile(c.Path, []byte(c.Original), 0o644); err != nil {
			return fmt.Errorf("restore %s to %s: %w", c.Path, c.Original, err)
		}
	}
	return nil
}
