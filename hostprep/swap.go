package hostprep

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// SwapStep turns swap off now and for good: kubelet refuses to run with
// swap on, and kubeadm's preflight only warns, so init would pass and then
// time out waiting for the kubelet.
type SwapStep struct{}

// swapWork is what one change of SwapStep does: write fstab with the swap
// lines commented, or mask swap units.
type swapWork struct {
	Fstab string
	Units []string
}

// Name implements provision.Step.
func (SwapStep) Name() string { return "hostprep/swap" }

// Independent implements provision.Independent: the probe reads
// /proc/swaps, fstab and the swap units: no other step changes them.
func (SwapStep) Independent() bool { return true }

// Probe reads /etc/fstab, the active swap areas and the masked swap units.
func (SwapStep) Probe(*inventory.Host, *inventory.Cluster) string {
	// Read with the shell's builtins, no process: /proc/swaps after its
	// heading, and a masked unit is a link that resolves to /dev/null.
	return shell.File("fstab", "/etc/fstab") + `
if [ -r /proc/swaps ]; then { read -r kprep_l; while IFS= read -r kprep_l; do echo "active $kprep_l"; done; } </proc/swaps; fi
for f in /etc/systemd/system/*.swap; do
  if [ -L "$f" ] && [ "$f" -ef /dev/null ]; then echo "masked ${f##*/}"; fi
done`
}

// swapState is what the probe found.
type swapState struct {
	fstab  string
	hasFst bool
	active []activeSwap
	masked map[string]bool
}

// activeSwap is one line of /proc/swaps.
type activeSwap struct {
	Device  string
	SizeKiB int64
}

func parseSwap(text string) (swapState, error) {
	st, err := shell.Parse(text)
	if err != nil {
		return swapState{}, err
	}
	fstab, ok := st.File("fstab")
	s := swapState{fstab: string(fstab), hasFst: ok, masked: map[string]bool{}}
	for _, line := range st.Lines {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[0] == "active":
			size, _ := strconv.ParseInt(f[3], 10, 64)
			s.active = append(s.active, activeSwap{Device: f[1], SizeKiB: size})
		case len(f) == 2 && f[0] == "masked":
			s.masked[f[1]] = true
		}
	}
	return s, nil
}

// Diff implements provision.Step.
func (SwapStep) Diff(in provision.Input) ([]provision.Planned[swapWork], error) {
	if in.Cluster.Hostprep.Swap == "keep" {
		return nil, nil
	}
	s, err := parseSwap(in.State)
	if err != nil {
		return nil, err
	}
	var changes []provision.Planned[swapWork]
	if len(s.active) > 0 {
		var on []string
		for _, a := range s.active {
			on = append(on, fmt.Sprintf("%s, %s", a.Device, humanKiB(a.SizeKiB)))
		}
		changes = append(changes, provision.Planned[swapWork]{Key: "swapoff",
			Summary: "swap is on: " + strings.Join(on, "; "), Action: "swapoff -a"})
	}
	entries := activeSwapEntries(s.fstab)
	if len(entries) > 0 {
		var where []string
		for _, e := range entries {
			where = append(where, fmt.Sprintf("line %d (%s)", e.Line, e.Device))
		}
		changes = append(changes, provision.Planned[swapWork]{Key: "fstab",
			Summary: "/etc/fstab turns swap on at boot: " + strings.Join(where, ", "),
			Action:  "comment those lines out (backup in /etc/fstab.kprep-orig), systemctl daemon-reload",
			Data:    swapWork{Fstab: commentSwapEntries(s.fstab)}})
	}
	var unmasked []string
	for _, path := range swapDevices(s, entries) {
		if u := swapUnit(path); !s.masked[u] && !slices.Contains(unmasked, u) {
			unmasked = append(unmasked, u)
		}
	}
	if len(unmasked) > 0 {
		changes = append(changes, provision.Planned[swapWork]{Key: "mask",
			Summary: "swap units that systemd could start again are not masked: " + strings.Join(unmasked, ", "),
			Action:  "systemctl mask " + strings.Join(unmasked, " "), Data: swapWork{Units: unmasked}})
	}
	return changes, nil
}

// swapDevices lists the device paths of active swaps and fstab entries.
func swapDevices(s swapState, entries []fstabSwap) []string {
	var out []string
	for _, a := range s.active {
		out = append(out, a.Device)
	}
	for _, e := range entries {
		out = append(out, devicePath(e.Device))
	}
	return out
}

// Apply implements provision.Step. fstab goes first, so a reboot in the
// middle cannot bring swap back.
func (SwapStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[swapWork]) error {
	for _, c := range changes {
		switch c.Key {
		case "fstab":
			if err := t.WriteFile(ctx, "/etc/fstab", []byte(c.Data.Fstab), transport.WriteOptions{}); err != nil {
				return err
			}
			if _, err := t.Run(ctx, transport.Command{Line: "systemctl daemon-reload"}); err != nil {
				return err
			}
		case "mask":
			if _, err := t.Run(ctx, transport.Command{Line: shell.Join(append([]string{"systemctl", "mask"}, c.Data.Units...)...)}); err != nil {
				return err
			}
		}
	}
	for _, c := range changes {
		if c.Key == "swapoff" {
			if _, err := t.Run(ctx, transport.Command{Line: "swapoff -a"}); err != nil {
				return err
			}
		}
	}
	return nil
}

// humanKiB prints a size from /proc/swaps (KiB) the way free -h does.
func humanKiB(kib int64) string {
	switch {
	case kib >= 1<<20:
		return fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
	case kib >= 1<<10:
		return fmt.Sprintf("%.1f MiB", float64(kib)/(1<<10))
	}
	return fmt.Sprintf("%d KiB", kib)
}
