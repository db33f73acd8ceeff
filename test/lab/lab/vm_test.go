package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kprep/kprep/test/lab/instance"
)

// A modules.dep as depmod writes it: each module's whole closure.
const testModulesDep = `kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/block/virtio_blk.ko:
kernel/crypto/crc32c_generic.ko:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko kernel/net/802/stp.ko kernel/net/llc/llc.ko
`

func TestModuleLoadOrderPutsDependenciesFirst(t *testing.T) {
	order, err := moduleLoadOrder(testModulesDep, vmInitModules)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range order {
		pos[moduleName(m)] = i
	}
	for mod, deps := range map[string][]string{
		"virtio_pci": {"virtio_pci_legacy_dev", "virtio_pci_modern_dev"},
		"ext4":       {"crc16", "mbcache", "jbd2"},
	} {
		for _, d := range deps {
			if _, ok := pos[d]; !ok || pos[d] > pos[mod] {
				t.Errorf("%s must load before %s: order %v", d, mod, order)
			}
		}
	}
	if _, ok := pos["br_netfilter"]; ok {
		t.Errorf("a module nobody asked for is in the initramfs: %v", order)
	}
	if len(order) != 9 {
		t.Errorf("order has %d modules, want the 9 of the closure: %v", len(order), order)
	}
	if _, err := moduleLoadOrder(testModulesDep, []string{"nvme"}); err == nil || !strings.Contains(err.Error(), "nvme") {
		t.Errorf("a module modules.dep lacks: err = %v, want one naming it", err)
	}
}

// readCpio parses a newc archive back into name -> (mode, data).
func readCpio(t *testing.T, b []byte) map[string]struct {
	mode uint64
	data []byte
} {
	t.Helper()
	out := map[string]struct {
		mode uint64
		data []byte
	}{}
	align := func(n int) int { return (n + 3) &^ 3 }
	for off := 0; ; {
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc magic at %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, nameSize := field(1), field(6), field(11)
		name := string(b[off+110 : off+110+nameSize-1])
		dataStart := align(off + 110 + nameSize)
		if name == "TRAILER!!!" {
			return out
		}
		out[name] = struct {
			mode uint64
			data []byte
		}{uint64(mode), b[dataStart : dataStart+size]}
		off = align(dataStart + size)
	}
}

func TestMakeInitramfs(t *testing.T) {
	rootfs := t.TempDir()
	kver := "6.1.0-99-arm64"
	modDir := filepath.Join(rootfs, "lib", "modules", kver)
	for _, line := range strings.Split(strings.TrimSpace(testModulesDep), "\n") {
		file, _, _ := strings.Cut(line, ":")
		if err := os.MkdirAll(filepath.Join(modDir, filepath.Dir(file)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(modDir, file), []byte("module "+file), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(modDir, "modules.dep"), []byte(testModulesDep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), []byte("\x7fELF busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "initrd.img")
	if err := makeInitramfs(rootfs, kver, dst); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	files := readCpio(t, b)
	if f := files["init"]; f.mode != 0o100755 || !bytes.Contains(f.data, []byte("switch_root /newroot /sbin/init")) {
		t.Errorf("/init: mode %o, %q", f.mode, f.data)
	}
	if f := files["bin/busybox"]; string(f.data) != "\x7fELF busybox" {
		t.Errorf("bin/busybox = %q", f.data)
	}
	if f := files["lib/modules/kernel/fs/ext4"]; f.mode != 0o040755 {
		t.Errorf("module folder mode %o, want a directory", f.mode)
	}
	list := strings.Fields(string(files["etc/lab-modules"].data))
	for _, m := range list {
		if string(files["lib/modules/"+m].data) != "module "+m {
			t.Errorf("module %s missing from the archive", m)
		}
	}
	if !slices.Contains(list, "kernel/fs/ext4/ext4.ko") || slices.Contains(list, "kernel/net/bridge/br_netfilter.ko") {
		t.Errorf("etc/lab-modules = %v", list)
	}
}

func TestVMHostsArePlannedAfterTheOthersAsAKunpengSudoer(t *testing.T) {
	id := instance.ID(6)
	o, err := Options{Instance: &id, OS: []string{"centos7"}, Hosts: 1, VMs: []string{"openeuler22-arm64"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	hosts := planHosts(o)
	if len(hosts) != 2 {
		t.Fatalf("%d hosts, want 2", len(hosts))
	}
	vm := hosts[1]
	if !vm.VM || vm.OS != "openeuler22-arm64" || vm.Name != "lab2" || vm.Address != "192.168.83.12" {
		t.Errorf("VM host = %+v", vm)
	}
	if vm.User != sudoUser || vm.SudoPassword || hosts[0].VM {
		t.Errorf("VM host user %s (password %t), first host VM %t", vm.User, vm.SudoPassword, hosts[0].VM)
	}
	if arch := hostArch(vm); arch != "aarch64" {
		t.Errorf("VM arch = %s", arch)
	}
	if _, err := (Options{Instance: &id, VMs: []string{"openeuler22-riscv"}}).withDefaults(); err == nil ||
		!strings.Contains(err.Error(), "openeuler22-arm64") {
		t.Errorf("unknown VM kind: err = %v, want one listing the known kinds", err)
	}
	if err := checkOS("openeuler22-arm64"); err != nil {
		t.Errorf("--os openeuler22-arm64: %v", err)
	}
}

func TestQemuArgsBootTheImageOnTheInstancesBridge(t *testing.T) {
	id := instance.ID(6)
	h := hostState{Name: "lab4", Address: id.HostAddr(3), OS: "openeuler22-arm64", VM: true}
	img := vmImage{Root: "/cache/vm/root.img", Kernel: "/cache/vm/vmlinuz", Initrd: "/cache/vm/initrd.img"}
	argv := qemuArgs(lookupVM(h.OS), img, id, h, "/var/lib/kprep-lab-6")
	line := strings.Join(argv, " ")
	for _, want := range []string{
		"qemu-system-aarch64 ", "-M virt -cpu cortex-a72 ",
		"-kernel /cache/vm/vmlinuz -initrd /cache/vm/initrd.img ",
		"root=/dev/vda rw console=ttyAMA0 net.ifnames=0 systemd.hostname=lab4",
		"file=/cache/vm/root.img,if=none,id=root,format=raw,snapshot=on",
		"file=/var/lib/kprep-lab-6/hosts/lab4/seed.img,if=none,id=seed,format=raw,readonly=on",
		"tap,id=net0,ifname=kprep-h6-lab4,script=no",
		"mac=52:54:00:6b:06:0e",
		"-pidfile /var/lib/kprep-lab-6/hosts/lab4/qemu.pid",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("qemu command lacks %q:\n%s", want, line)
		}
	}
	// Down finds a VM it lost track of by its arguments, and only its own.
	if !isLabProcess(argv, "/var/lib/kprep-lab-6") || isLabProcess(argv, "/var/lib/kprep-lab-5") {
		t.Errorf("isLabProcess does not tell this lab's QEMU from another's")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"systemctl":              "systemctl",
		"PATH=/usr/bin:/bin":     "PATH=/usr/bin:/bin",
		"":                       "''",
		"a b":                    "'a b'",
		"it's":                   `'it'\''s'`,
		"$(reboot)":              "'$(reboot)'",
		"grep -c ^swap /proc/x;": "'grep -c ^swap /proc/x;'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestVMRPMDBIsForTheVMsArch(t *testing.T) {
	p, _ := lookupPersonality("openeuler22")
	table := vmRPMDB(p, lookupVM("openeuler22-arm64"))
	stubs, err := parseRPMDB(table)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stubs {
		if s.Arch != "aarch64" && s.Arch != "noarch" {
			t.Errorf("%s is %s on the aarch64 VM", s.Name, s.Arch)
		}
	}
	if spec := specOf(stubs[1], "aarch64"); strings.Contains(spec, "BuildArch") {
		t.Errorf("an aarch64 record names BuildArch (rpmbuild refuses a foreign one):\n%s", spec)
	}
}

func TestVMFstabNamesOnlyDevicesTheVMHas(t *testing.T) {
	v := lookupVM("openeuler22-arm64")
	var active []string
	for _, l := range strings.Split(v.Fstab, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && !strings.HasPrefix(f[0], "#") {
			active = append(active, f[0]+" "+f[2])
		}
	}
	want := []string{"/dev/vda ext4", "/dev/mapper/openeuler-swap swap", "tmpfs tmpfs"}
	if !slices.Equal(active, want) {
		t.Errorf("fstab's active lines = %q, want %q (systemd waits for any other device and fails the boot)", active, want)
	}
	seed, err := hostFiles.ReadFile("files/vm/etc/systemd/system/lab-vm-swap.service")
	if err != nil || !strings.Contains(string(seed), `dev-mapper-openeuler\x2dswap.swap`) {
		t.Errorf("lab-vm-swap.service must run before fstab's swap unit: %v\n%s", err, seed)
	}
}
