package hostprep

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestActiveSwapEntries(t *testing.T) {
	got := activeSwapEntries(readFile(t, "fstab-centos7"))
	want := []fstabSwap{{Line: 11, Device: "/dev/mapper/centos-swap"}, {Line: 14, Device: "UUID=77d3a2a4-1111-2222-3333-444455556666"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCommentSwapEntriesOnceAndOnlyThem(t *testing.T) {
	in := readFile(t, "fstab-centos7")
	once := commentSwapEntries(in)
	inLines, outLines := strings.Split(in, "\n"), strings.Split(once, "\n")
	if len(inLines) != len(outLines) {
		t.Fatalf("line count changed: %d -> %d", len(inLines), len(outLines))
	}
	for i := range inLines {
		changed := inLines[i] != outLines[i]
		wantChanged := i+1 == 11 || i+1 == 14
		if changed != wantChanged {
			t.Errorf("line %d: changed=%v, want %v: %q -> %q", i+1, changed, wantChanged, inLines[i], outLines[i])
		}
		if changed && outLines[i] != "#"+inLines[i] {
			t.Errorf("line %d: %q, want it commented with one #", i+1, outLines[i])
		}
	}
	if twice := commentSwapEntries(once); twice != once {
		t.Errorf("a second pass changed the file again:\n%s", twice)
	}
}

func TestUbuntuSwapFile(t *testing.T) {
	in := "UUID=abc / ext4 errors=remount-ro 0 1\n/swap.img\tnone\tswap\tsw\t0\t0\n"
	if got := commentSwapEntries(in); got != "UUID=abc / ext4 errors=remount-ro 0 1\n#/swap.img\tnone\tswap\tsw\t0\t0\n" {
		t.Errorf("got %q", got)
	}
}

func TestSwapUnitNames(t *testing.T) {
	// Names as `systemd-escape -p --suffix=swap` prints them.
	for spec, want := range map[string]string{
		"/dev/mapper/centos-swap": `dev-mapper-centos\x2dswap.swap`,
		"/swap.img":               "swap.img.swap",
		"UUID=77d3a2a4-1111":      `dev-disk-by\x2duuid-77d3a2a4\x2d1111.swap`,
		"/dev/dm-1":               `dev-dm\x2d1.swap`,
	} {
		if got := swapUnit(devicePath(spec)); got != want {
			t.Errorf("swapUnit(%s) = %s, want %s", spec, got, want)
		}
	}
}
