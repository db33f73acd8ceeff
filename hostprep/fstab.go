package hostprep

import (
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

// fstabSwap is an fstab entry that mounts swap.
type fstabSwap struct {
	Line   int    // 1-based line number
	Device string // first field as written: /dev/mapper/centos-swap, UUID=..., /swap.img
}

// activeSwapEntries returns the uncommented fstab lines whose third field
// (the file system type) is "swap". Lines that merely mention swap in a path
// or a comment are not entries.
func activeSwapEntries(fstab string) []fstabSwap {
	var out []fstabSwap
	for i, line := range strings.Split(fstab, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if fields[2] == "swap" {
			out = append(out, fstabSwap{Line: i + 1, Device: fields[0]})
		}
	}
	return out
}

// commentSwapEntries comments out exactly the lines activeSwapEntries finds,
// once each; every other byte of the file stays as it was.
func commentSwapEntries(fstab string) string {
	lines := strings.Split(fstab, "\n")
	for _, e := range activeSwapEntries(fstab) {
		lines[e.Line-1] = "#" + lines[e.Line-1]
	}
	return strings.Join(lines, "\n")
}

// devicePath turns an fstab device spec into the path systemd names the
// swap unit after (UUID=x is /dev/disk/by-uuid/x).
func devicePath(spec string) string {
	for prefix, dir := range map[string]string{
		"UUID=": "/dev/disk/by-uuid/", "LABEL=": "/dev/disk/by-label/",
		"PARTUUID=": "/dev/disk/by-partuuid/", "PARTLABEL=": "/dev/disk/by-partlabel/",
	} {
		if v, ok := strings.CutPrefix(spec, prefix); ok {
			return dir + strings.Trim(v, `"`)
		}
	}
	return spec
}

// swapUnit is the systemd .swap unit for a device path, as
// `systemd-escape -p --suffix=swap` names it.
func swapUnit(path string) string {
	return unit.UnitNamePathEscape(path) + ".swap"
}
