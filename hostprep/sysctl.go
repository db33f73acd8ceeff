package hostprep

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// SysctlStep sets the kernel parameters Kubernetes needs (and the user's
// extra ones) in one drop-in, applies them and reads the live values back.
// kubeadm's preflight fails when ip_forward is not 1, and bridged pod
// traffic skips iptables without bridge-nf-call-iptables.
type SysctlStep struct{}

const sysctlFile = "/etc/sysctl.d/k8s.conf"

// requiredSysctls are the keys kprep always sets.
var requiredSysctls = map[string]string{
	"net.bridge.bridge-nf-call-iptables":  "1",
	"net.bridge.bridge-nf-call-ip6tables": "1",
	"net.ipv4.ip_forward":                 "1",
}

// sysctlSearchDirs are the folders `sysctl --system` reads, in the order
// that decides which of two same-named files counts (the first).
var sysctlSearchDirs = []string{"/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d"}

// Name implements provision.Step.
func (SysctlStep) Name() string { return "hostprep/sysctl" }

// Independent implements provision.Independent. Of what earlier steps
// change the probe reads only the bridge keys, which exist once the
// modules step has loaded br_netfilter: probed before that, they read as
// missing, a change Apply makes (after the module is loaded) and the
// verify then reads back.
func (SysctlStep) Independent() bool { return true }

// wantedSysctls merges the required keys with the inventory's extras; the
// inventory may not lower a required key.
func wantedSysctls(c *inventory.Cluster) map[string]string {
	want := map[string]string{}
	for k, v := range c.Hostprep.Sysctl {
		want[normalizeKey(k)] = normalizeValue(v)
	}
	for k, v := range requiredSysctls {
		want[k] = v
	}
	return want
}

func normalizeKey(k string) string { return strings.ReplaceAll(strings.TrimSpace(k), "/", ".") }

// normalizeValue folds white space, as sysctl prints "32768\t60999" for a
// value written "32768 60999".
func normalizeValue(v string) string { return strings.Join(strings.Fields(v), " ") }

// Probe reads the drop-in, the live values, and every line of every file
// `sysctl --system` reads that sets one of the keys.
func (SysctlStep) Probe(h *inventory.Host, c *inventory.Cluster) string {
	want := wantedSysctls(c)
	var b strings.Builder
	b.WriteString(shell.File("dropin", sysctlFile) + "\n")
	keys := slices.Sorted(maps.Keys(want))
	var patterns []string
	for _, k := range keys {
		patterns = append(patterns, strings.ReplaceAll(k, ".", "[./]"))
	}
	// The live values from one sysctl for every key ("KEY = VALUE"; a key
	// the kernel does not have is left out). The shell's own read cannot
	// stand in: dash reads /proc/sys a byte at a time, and the kernel ends
	// a multi-value key's file after its first byte when read that way.
	fmt.Fprintf(&b, "sysctl %s 2>/dev/null\n", shell.Join(keys...))
	var files []string
	for _, d := range sysctlSearchDirs {
		files = append(files, d+"/*.conf")
	}
	files = append(files, "/etc/sysctl.conf")
	// One grep over every file, in the order sysctl reads them (-H names
	// the file even when only one exists): its lines start with the
	// file's absolute path, which no other line of this probe does.
	fmt.Fprintf(&b, `set --; for f in %s; do [ -f "$f" ] && set -- "$@" "$f"; done
[ $# -eq 0 ] || grep -HnE '^[[:space:]]*-?(%s)[[:space:]]*=' "$@" 2>/dev/null
true`, strings.Join(files, " "), strings.Join(patterns, "|"))
	return b.String()
}

// sysctlSetting is one key set in one file.
type sysctlSetting struct {
	File  string
	Line  string
	Key   string
	Value string
}

// parseSysctlState reads the probe: live values and settings in files.
// A wanted key the kernel does not have is live as "<missing>".
func parseSysctlState(text string, wanted []string) (dropin string, live map[string]string, sets []sysctlSetting, err error) {
	st, err := shell.Parse(text)
	if err != nil {
		return "", nil, nil, err
	}
	b, _ := st.File("dropin")
	live = map[string]string{}
	for _, line := range st.Lines {
		if k, v, ok := strings.Cut(line, " = "); ok && !strings.HasPrefix(line, "/") {
			live[normalizeKey(k)] = normalizeValue(v)
		}
		if strings.HasPrefix(line, "/") {
			// FILE:LINE:key = value
			file, rest, _ := strings.Cut(line, ":")
			lineNo, assignment, _ := strings.Cut(rest, ":")
			k, v, _ := strings.Cut(assignment, "=")
			sets = append(sets, sysctlSetting{File: file, Line: lineNo,
				Key: normalizeKey(strings.TrimPrefix(strings.TrimSpace(k), "-")), Value: normalizeValue(v)})
		}
	}
	for _, k := range wanted {
		if _, ok := live[k]; !ok {
			live[k] = "<missing>"
		}
	}
	return string(b), live, sets, nil
}

// effectiveOrder sorts files the way `sysctl --system` applies them: by
// base name, a name in an earlier folder hiding the same name in later
// ones, and /etc/sysctl.conf last. The last file to set a key wins.
func effectiveOrder(files []string) []string {
	byBase := map[string]string{}
	rank := func(f string) int { return slices.Index(sysctlSearchDirs, path.Dir(f)) }
	var tail []string
	for _, f := range files {
		if f == "/etc/sysctl.conf" {
			tail = []string{f}
			continue
		}
		base := path.Base(f)
		if cur, ok := byBase[base]; !ok || rank(f) < rank(cur) {
			byBase[base] = f
		}
	}
	var bases []string
	for b := range byBase {
		bases = append(bases, b)
	}
	sort.Strings(bases)
	var out []string
	for _, b := range bases {
		out = append(out, byBase[b])
	}
	return append(out, tail...)
}

// overrides finds settings in other files that `sysctl --system` applies
// after kprep's drop-in with a value other than the one wanted.
func overrides(sets []sysctlSetting, want map[string]string) []sysctlSetting {
	var files []string
	for _, s := range sets {
		if !slices.Contains(files, s.File) {
			files = append(files, s.File)
		}
	}
	if !slices.Contains(files, sysctlFile) {
		files = append(files, sysctlFile)
	}
	order := effectiveOrder(files)
	pos := func(f string) int { return slices.Index(order, f) }
	last := map[string]sysctlSetting{}
	for _, s := range sets {
		if pos(s.File) < 0 || pos(s.File) < pos(sysctlFile) {
			continue // hidden by a same-named file, or applied before ours
		}
		if cur, ok := last[s.Key]; !ok || pos(s.File) >= pos(cur.File) {
			last[s.Key] = s
		}
	}
	var out []sysctlSetting
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if s, ok := last[k]; ok && s.File != sysctlFile && s.Value != want[k] {
			out = append(out, s)
		}
	}
	return out
}

// sysctlDropin is the content of kprep's drop-in.
func sysctlDropin(want map[string]string) string {
	var b strings.Builder
	b.WriteString(hostfile.Header("kernel parameters Kubernetes needs. Edits are overwritten;",
		"set extra keys under hostprep.sysctl in the inventory instead."))
	for _, k := range slices.Sorted(maps.Keys(want)) {
		fmt.Fprintf(&b, "%s = %s\n", k, want[k])
	}
	return b.String()
}

// Diff implements provision.Step. A file that `sysctl --system` reads after
// kprep's drop-in and sets a key otherwise is an error naming that file:
// kprep does not edit files it does not own, and a value that flips back
// at the next boot is worse than a failed run.
func (SysctlStep) Diff(in provision.Input) ([]provision.Planned[string], error) {
	want := wantedSysctls(in.Cluster)
	dropin, live, sets, err := parseSysctlState(in.State, slices.Collect(maps.Keys(want)))
	if err != nil {
		return nil, err
	}
	if bad := overrides(sets, want); len(bad) > 0 {
		var msgs []string
		for _, s := range bad {
			msgs = append(msgs, fmt.Sprintf("%s:%s sets %s = %s, which overrides %s (want %s); remove that line or set it to %s",
				s.File, s.Line, s.Key, s.Value, sysctlFile, want[s.Key], want[s.Key]))
		}
		return nil, fmt.Errorf("%s", strings.Join(msgs, "\n"))
	}
	var changes []provision.Planned[string]
	content := sysctlDropin(want)
	if dropin != content {
		summary := sysctlFile + " is missing"
		if dropin != "" {
			summary = sysctlFile + " differs from what the inventory asks"
		}
		changes = append(changes, provision.Planned[string]{Key: "dropin", Summary: summary, Action: "write " + sysctlFile, Data: content})
	}
	var wrong []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got := live[k]; got != want[k] {
			wrong = append(wrong, fmt.Sprintf("%s is %s, want %s", k, got, want[k]))
		}
	}
	if len(wrong) > 0 {
		changes = append(changes, provision.Planned[string]{Key: "live", Summary: strings.Join(wrong, "; "), Action: "sysctl --system"})
	}
	return changes, nil
}

// Apply implements provision.Step.
func (SysctlStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[string]) error {
	for _, c := range changes {
		if c.Key == "dropin" {
			if err := t.WriteFile(ctx, sysctlFile, []byte(c.Data), transport.WriteOptions{Mode: 0o644}); err != nil {
				return err
			}
		}
	}
	// sysctl --system also applies every other file, and exits non-zero when
	// any key anywhere is read-only (common in containers); then apply our
	// file alone, which fails only if our own keys cannot be set. The
	// re-probe afterwards checks the live values either way.
	_, err := t.Run(ctx, transport.Command{Line: "sysctl --system >/dev/null 2>&1 || sysctl -p " + sysctlFile})
	return err
}
