package hostprep

import (
	"encoding/base64"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func swapProbe(fstab string, lines ...string) string {
	out := "file fstab " + base64.StdEncoding.EncodeToString([]byte(fstab)) + "\n"
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}

func TestSwapDiff(t *testing.T) {
	c := labCluster()
	fstab := readFile(t, "fstab-centos7")
	tests := []struct {
		name  string
		state string
		want  []string
	}{
		{"fresh CentOS 7", swapProbe(fstab, "active /dev/dm-1                               partition\t2097148\t0\t-2"), []string{
			"swap is on: /dev/dm-1, 2.0 GiB",
			"/etc/fstab turns swap on at boot: line 11 (/dev/mapper/centos-swap), line 14 (UUID=77d3a2a4-1111-2222-3333-444455556666)",
			`swap units that systemd could start again are not masked: dev-dm\x2d1.swap, dev-mapper-centos\x2dswap.swap, dev-disk-by\x2duuid-77d3a2a4\x2d1111\x2d2222\x2d3333\x2d444455556666.swap`,
		}},
		{"converged", swapProbe(commentSwapEntries(fstab)), nil},
		{"swapon again by hand", swapProbe(commentSwapEntries(fstab), "active /swapfile file 524284 0 -3", `masked dev-mapper-centos\x2dswap.swap`), []string{
			"swap is on: /swapfile, 512.0 MiB",
			"swap units that systemd could start again are not masked: swapfile.swap",
		}},
		{"fstab uncommented, unit still masked", swapProbe(fstab, `masked dev-mapper-centos\x2dswap.swap`, `masked dev-disk-by\x2duuid-77d3a2a4\x2d1111\x2d2222\x2d3333\x2d444455556666.swap`), []string{
			"/etc/fstab turns swap on at boot: line 11 (/dev/mapper/centos-swap), line 14 (UUID=77d3a2a4-1111-2222-3333-444455556666)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, err := SwapStep{}.Diff(input(c, centos7, tt.state))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summariesOf(changes)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSwapKeep(t *testing.T) {
	c := labCluster()
	c.Hostprep.Swap = "keep"
	changes, err := SwapStep{}.Diff(input(c, centos7, swapProbe("/swap.img none swap sw 0 0\n", "active /swap.img file 100 0 -2")))
	if err != nil || len(changes) != 0 {
		t.Errorf("swap: keep changed %v, %v", summariesOf(changes), err)
	}
}
