package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kprep/kprep/test/lab/instance"
)

// Each instance's hosts live under its cgroup root (id.CgroupRoot()) in
// every cgroup hierarchy, one subtree each. A host in its own subtree in
// every v1 hierarchy is what lets systemd, dockerd and the kubelet inside
// it manage cgroups without touching another host's.

// cgroupHierarchies lists the machine's cgroup mount points (v1 and v2).
func cgroupHierarchies() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, line := range strings.Split(string(b), "\n") {
		// Fields after " - " are fstype, source, options.
		i := strings.Index(line, " - ")
		if i < 0 {
			continue
		}
		f, rest := strings.Fields(line[:i]), strings.Fields(line[i+3:])
		if len(f) < 5 || len(rest) < 1 || (rest[0] != "cgroup" && rest[0] != "cgroup2") {
			continue
		}
		dirs = append(dirs, unescapeMountPath(f[4]))
	}
	if len(dirs) == 0 {
		return nil, errors.New("no cgroup hierarchy is mounted on this machine")
	}
	return dirs, nil
}

// createHostCgroups makes the host's cgroup in every hierarchy and returns
// their cgroup.procs files, into which the host's launcher moves itself.
func createHostCgroups(id instance.ID, host string) ([]string, error) {
	hier, err := cgroupHierarchies()
	if err != nil {
		return nil, err
	}
	var procs []string
	for _, h := range hier {
		parent := filepath.Join(h, id.CgroupRoot())
		dir := filepath.Join(parent, host)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("host %s: create cgroup %s: %w", host, dir, err)
		}
		// A new cpuset cgroup has no CPUs and no memory nodes, and takes
		// no process until it gets its parent's.
		if _, err := os.Stat(filepath.Join(h, "cpuset.cpus")); err == nil {
			for _, d := range []string{parent, dir} {
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					v, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
					if err != nil {
						return nil, fmt.Errorf("host %s: read %s: %w", host, f, err)
					}
					if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
						return nil, fmt.Errorf("host %s: set %s of %s: %w", host, f, d, err)
					}
				}
			}
		}
		procs = append(procs, filepath.Join(dir, "cgroup.procs"))
	}
	return procs, nil
}

// removeLabCgroups removes the instance's cgroup subtrees, deepest first; a
// cgroup whose last process is still exiting gets a few more tries.
func removeLabCgroups(id instance.ID) error {
	hier, err := cgroupHierarchies()
	if err != nil {
		return nil
	}
	var left []string
	for try := 0; try < 20; try++ {
		left = nil
		for _, h := range hier {
			root := filepath.Join(h, id.CgroupRoot())
			var dirs []string
			_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
					left = append(left, dirs[i])
				}
			}
		}
		if len(left) == 0 {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("cgroups still in use: %s", strings.Join(left, ", "))
}
