package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// mountPoints lists the machine's mount points at or under dir, deepest
// first, from mountinfo text.
func mountPoints(mountinfo, dir string) []string {
	dir = filepath.Clean(dir)
	var points []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := unescapeMountPath(f[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	sort.SliceStable(points, func(i, j int) bool {
		return strings.Count(points[i], "/") > strings.Count(points[j], "/")
	})
	return points
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountsUnder reads the machine's mount table and lists mount points at or
// under dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	return mountPoints(string(b), dir)
}

// unmountAll unmounts everything at or under dir, deepest first, detaching
// lazily what is still busy.
func unmountAll(dir string) error {
	var errs []error
	for round := 0; round < 3; round++ {
		points := mountsUnder(dir)
		if len(points) == 0 {
			return nil
		}
		errs = nil
		for _, p := range points {
			if err := syscall.Unmount(p, 0); err == nil || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
				continue
			}
			if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
			}
		}
	}
	if left := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("mounts left under %s: %s (%v)", dir, strings.Join(left, ", "), errors.Join(errs...))
	}
	return nil
}

// removeTree deletes dir after making sure nothing is mounted inside it, so
// that a leftover bind mount can never take the machine's files with it.
func removeTree(dir string) error {
	if left := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("not removing %s: still mounted inside: %s", dir, strings.Join(left, ", "))
	}
	return os.RemoveAll(dir)
}
