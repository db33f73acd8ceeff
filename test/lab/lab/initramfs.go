package lab

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The VM hosts' initramfs: the smallest one that mounts the root disk, made
// on the machine in Go. Debian's initramfs-tools would build one inside the
// image, but under qemu-user that takes many minutes for a job that here is
// four modules and a page of shell. The root file system itself keeps the
// full kernel package (every module, modules.dep), so what kprep meets on
// the VM is a normal Debian kernel with loadable modules.

// vmInitModules are the modules the initramfs loads, with what modules.dep
// says they need: the virtio PCI transport and disk, and ext4 with the
// crc32c it checks metadata with (a soft dependency modules.dep omits).
var vmInitModules = []string{"virtio_pci", "virtio_blk", "crc32c_generic", "ext4"}

// vmInitScript is the initramfs's /init, run by busybox sh: load the
// modules, wait for the root disk named by root= and hand over to systemd.
const vmInitScript = `#!/bin/busybox sh
# kprep lab VM initramfs: mount root= and start its /sbin/init.
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/lab-modules); do
	insmod "/lib/modules/$m" || echo "lab initramfs: insmod $m failed"
done
root=
for arg in $(cat /proc/cmdline); do
	case $arg in root=*) root=${arg#root=} ;; esac
done
i=0
while [ ! -b "$root" ] && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
if ! mount -t ext4 -o rw "$root" /newroot; then
	echo "lab initramfs: cannot mount root=$root; a shell for a look"
	exec sh
fi
umount /sys /proc
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
`

// moduleLoadOrder returns the module files (paths under the kernel's
// module folder) to load for wanted, each after the modules it depends on,
// from the text of modules.dep.
func moduleLoadOrder(modulesDep string, wanted []string) ([]string, error) {
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(modulesDep, "\n") {
		file, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[file] = strings.Fields(rest)
		byName[moduleName(file)] = file
	}
	var order []string
	seen := map[string]bool{}
	var visit func(file string, depth int) error
	visit = func(file string, depth int) error {
		if seen[file] {
			return nil
		}
		if depth > 64 {
			return fmt.Errorf("modules.dep: dependency loop at %s", file)
		}
		// modules.dep lists a module's whole closure; each one's own
		// dependencies still go first.
		for _, d := range slices.Backward(deps[file]) {
			if err := visit(d, depth+1); err != nil {
				return err
			}
		}
		seen[file] = true
		order = append(order, file)
		return nil
	}
	for _, name := range wanted {
		file, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("modules.dep has no module %s (is it built in? then drop it from the list)", name)
		}
		if err := visit(file, 0); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// moduleName is a module's name from its file: kernel/fs/ext4/ext4.ko ->
// ext4 (with - and _ the same, as the kernel treats them).
func moduleName(file string) string {
	base := filepath.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// makeInitramfs writes the initramfs for the kernel whose modules are in
// rootfs/lib/modules/kver to dst: busybox from the root file system, the
// modules and /init, as an uncompressed newc cpio archive (the kernel
// unpacks it as it is).
func makeInitramfs(rootfs, kver, dst string) error {
	modDir := filepath.Join(rootfs, "lib", "modules", kver)
	dep, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return fmt.Errorf("initramfs: %w (did depmod run when the kernel was installed?)", err)
	}
	order, err := moduleLoadOrder(string(dep), vmInitModules)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	busybox, err := os.ReadFile(filepath.Join(rootfs, "bin", "busybox"))
	if err != nil {
		return fmt.Errorf("initramfs: busybox (Debian package busybox-static in the image): %w", err)
	}
	var w cpioWriter
	for _, d := range []string{"bin", "dev", "etc", "lib", "lib/modules", "newroot", "proc", "sys"} {
		w.dir(d)
	}
	w.file("bin/busybox", busybox, 0o755)
	w.file("init", []byte(vmInitScript), 0o755)
	w.file("etc/lab-modules", []byte(strings.Join(order, "\n")+"\n"), 0o644)
	made := map[string]bool{}
	for _, m := range order {
		for d := filepath.Dir(m); d != "." && !made[d]; d = filepath.Dir(d) {
			made[d] = true
		}
	}
	dirs := make([]string, 0, len(made))
	for d := range made {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs) // parents sort before their children
	for _, d := range dirs {
		w.dir("lib/modules/" + d)
	}
	for _, m := range order {
		data, err := os.ReadFile(filepath.Join(modDir, m))
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		w.file("lib/modules/"+m, data, 0o644)
	}
	return os.WriteFile(dst, w.finish(), 0o644)
}

// cpioWriter builds a newc ("070701") cpio archive in memory: the format
// the kernel reads an initramfs in.
type cpioWriter struct {
	buf bytes.Buffer
	ino int
}

func (w *cpioWriter) dir(name string) { w.entry(name, nil, fs.ModeDir|0o755) }

func (w *cpioWriter) file(name string, data []byte, perm fs.FileMode) { w.entry(name, data, perm) }

// entry writes one header, name and body, each padded to 4 bytes.
func (w *cpioWriter) entry(name string, data []byte, mode fs.FileMode) {
	w.ino++
	m := uint32(mode.Perm())
	switch {
	case mode.IsDir():
		m |= 0o040000
	case name == "TRAILER!!!":
	default:
		m |= 0o100000
	}
	nlink := 1
	if mode.IsDir() {
		nlink = 2
	}
	fmt.Fprintf(&w.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, m, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	w.buf.WriteString(name)
	w.buf.WriteByte(0)
	w.pad()
	w.buf.Write(data)
	w.pad()
}

func (w *cpioWriter) pad() {
	for w.buf.Len()%4 != 0 {
		w.buf.WriteByte(0)
	}
}

// finish adds the trailer and returns the archive.
func (w *cpioWriter) finish() []byte {
	w.entry("TRAILER!!!", nil, 0)
	return w.buf.Bytes()
}
