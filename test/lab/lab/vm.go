package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// A VM host is a real machine of another architecture, emulated by QEMU
// (software emulation, TCG: KVM cannot run an aarch64 guest on this x86
// machine). Unlike an nspawn host it has its own kernel, so swap devices,
// loadable modules and every sysctl are real on it; see test/lab/README.md.
// Its image is a Debian arm64 root file system with a personality's files
// (release files, repos, rpm database), a Debian kernel and a small
// initramfs, built once and cached by recipe.

// vmSpec is a kind of VM host `up --os` takes.
type vmSpec struct {
	// Name is what `up --os` takes: openeuler22-arm64.
	Name string
	// Personality is the distribution it looks like (its release files,
	// repos, rpm database), as for nspawn hosts.
	Personality string
	// GOARCH is the architecture in Go's and Debian's naming (arm64);
	// UnameArch in the kernel's and rpm's (aarch64).
	GOARCH, UnameArch string
	// Qemu is the system emulator, QemuCPU the CPU model it emulates.
	Qemu, QemuCPU string
	// Binfmt names the binfmt_misc entry (Debian's qemu-user-static) that
	// runs the image's programs on the machine while it is built.
	Binfmt string
	// MemoryMiB and CPUs size the VM: enough for dockerd and a kubelet.
	MemoryMiB, CPUs int
	// Fstab is the VM's /etc/fstab: the personality's, with its real
	// root and swap devices (/dev/vda, and the LVM volume on /dev/vdb).
	Fstab string
}

// vmSpecs are the VM hosts the lab knows.
var vmSpecs = map[string]*vmSpec{
	"openeuler22-arm64": {
		Name: "openeuler22-arm64", Personality: "openeuler22",
		GOARCH: "arm64", UnameArch: "aarch64",
		Qemu: "qemu-system-aarch64", QemuCPU: "cortex-a72", Binfmt: "qemu-aarch64",
		MemoryMiB: 2048, CPUs: 2,
		Fstab: openeuler22VMFstab,
	},
}

// openeuler22VMFstab is openEuler's installer fstab with the VM's real
// devices: root on the virtio disk (the initramfs mounts it; openEuler's
// own is an LVM volume), swap on the LVM volume openeuler/swap that
// lab-vm-swap.service makes on /dev/vdb at first boot, a commented-out
// swap line and a line that names "swap" only in a path, for kprep's
// fstab editing. The swap line waits up to 15 minutes for its device (90 s
// by default): under emulation on a busy machine, making the volume at
// first boot took longer, systemd gave up on the device, and the VM came
// up "running" with its swap off.
const openeuler22VMFstab = `
#
# /etc/fstab
# Created by anaconda on Wed Mar 30 08:10:41 2022
#
# Accessible filesystems, by reference, are maintained under '/dev/disk/'.
# See man pages fstab(5), findfs(8), mount(8) and/or blkid(8) for more info.
#
# After editing this file, run 'systemctl daemon-reload' to update systemd
# units generated from this file.
#
/dev/vda                   /                       ext4    defaults        1 1
/dev/mapper/openeuler-swap none                    swap    defaults,x-systemd.device-timeout=15min 0 0
#/dev/mapper/openeuler-swap2 none                  swap    defaults        0 0
tmpfs                      /srv/swapfiles          tmpfs   defaults        0 0
`

// vmMachineTools are the programs a VM host needs on the machine, with
// the Debian package that has each.
func vmMachineTools(v *vmSpec) map[string]string {
	tools := map[string]string{
		v.Qemu:      "qemu-system-arm",
		"mkfs.ext4": "e2fsprogs",
		"ssh":       "openssh-client",
	}
	if runtime.GOARCH != v.GOARCH {
		tools["/usr/libexec/qemu-binfmt/"+v.UnameArch+"-binfmt-P"] = "qemu-user-static"
	}
	return tools
}

// lookupVM returns the VM host kind called name, or nil.
func lookupVM(name string) *vmSpec { return vmSpecs[name] }

// vmDebootstrapPackages go in with debootstrap: the nspawn base's, and
// udev, which a machine with real devices needs (disks by label, LVM).
var vmDebootstrapPackages = append(append([]string{}, debootstrapPackages...), "udev")

// vmPackages are installed with apt afterwards: the nspawn base's, the
// kernel, LVM for the swap volume and busybox for the initramfs.
var vmPackages = append(append([]string{}, basePackages...), "linux-image-arm64", "lvm2", "busybox-static")

// vmRecipeVersion changes when the VM image's build steps change.
const vmRecipeVersion = "1"

// vmRootSize is the root disk's size: a sparse file, so only what the
// image holds takes space; the VM's writes go to a per-host overlay.
const vmRootSize = "8G"

// vmSetupScript installs the packages inside the arm64 root file system
// (under qemu-user). The kernel package's initramfs hook is diverted for
// the install only: the lab makes its own initramfs (initramfs.go), and
// the image keeps the real update-initramfs.
const vmSetupScript = `
export DEBIAN_FRONTEND=noninteractive
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
echo "deb $LAB_DEBIAN_MIRROR ` + baseSuite + ` main" >/etc/apt/sources.list
apt-get update -q
dpkg-divert --local --rename --divert /usr/sbin/update-initramfs.lab-build --add /usr/sbin/update-initramfs
ln -sf /bin/true /usr/sbin/update-initramfs
apt-get install -y -q --no-install-recommends $LAB_PACKAGES
rm -f /usr/sbin/update-initramfs
dpkg-divert --local --rename --remove /usr/sbin/update-initramfs
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
: >/etc/apt/sources.list
rm -f /etc/apt/sources.list.d/*
`

// vmFinishScript runs last in the image: each VM gets its own host keys
// (from its seed disk) and machine id (systemd makes one at first boot).
const vmFinishScript = `
rm -f /etc/ssh/ssh_host_*
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
rm -f /usr/lib/lab-kernel/swap-devices
systemctl enable systemd-networkd.service lab-vm-seed.service lab-vm-swap.service lab-selinux.service
systemctl set-default multi-user.target
`

// vmImage is a built VM image in the cache.
type vmImage struct {
	// Dir is the cache entry; Root the root disk (raw ext4, never written:
	// each VM writes to its own overlay), Kernel and Initrd what QEMU boots.
	Dir, Root, Kernel, Initrd string
	// KernelRelease is the kernel's uname -r.
	KernelRelease string
}

// vmLayerTrees are the embedded folders laid into a VM's image, in order:
// the EL family's and the personality's files, then the VM's own (seed and
// swap units, fstab), which replace the nspawn hosts' kernel emulation.
func vmLayerTrees(p *Personality) []string {
	trees := []string{}
	if p.Family == "el" {
		trees = append(trees, "files/el")
	}
	return append(trees, "files/"+p.Name, "files/vm")
}

// vmBaseKey identifies the slow part of a VM image's recipe: the arm64
// root file system with its packages, before any personality.
func vmBaseKey(v *vmSpec) string {
	return recipeKey("vm-base", vmRecipeVersion, baseSuite, v.GOARCH,
		strings.Join(vmDebootstrapPackages, ","), strings.Join(vmPackages, ","), vmSetupScript)
}

// vmImageKey identifies a VM image's recipe: its base's and the rest.
func vmImageKey(v *vmSpec, p *Personality) string {
	return recipeKey("vm", vmRecipeVersion, vmBaseKey(v), v.Name, v.Fstab, vmFinishScript,
		layerScript, filesDigestOf(vmLayerTrees(p)), fmt.Sprint(vmLinks(p)), vmRPMDB(p, v),
		strings.Join(vmInitModules, ","), vmInitScript, vmRootSize)
}

// vmLinks are the links laid into the VM image: the personality's (yum ->
// dnf, getenforce -> the SELinux emulation...), not the nspawn hosts'
// swap emulation and masks.
func vmLinks(p *Personality) map[string]string {
	links := map[string]string{}
	for k, v := range p.Symlinks {
		links[k] = v
	}
	return links
}

// vmRPMDB is the personality's rpm database table for the VM's
// architecture: the x86_64 records become aarch64 ones; noarch stays.
func vmRPMDB(p *Personality, v *vmSpec) string {
	if p.RPMDB == "" {
		return ""
	}
	return strings.ReplaceAll(p.RPMDB, " x86_64", " "+v.UnameArch)
}

// buildVMBase returns the arm64 root file system with the VM's packages
// and kernel, building it on a cache miss: debootstrap and apt under
// qemu-user, the slow part of a VM image (many minutes). It is cached on
// its own so that a change to the personality or the initramfs redoes
// only the rest (seconds).
func buildVMBase(ctx context.Context, o Options, v *vmSpec, log *logger) (string, error) {
	key := vmBaseKey(v)
	final := filepath.Join(o.CacheDir, "vm-base-"+v.GOARCH+"-"+key)
	if exists(filepath.Join(final, "done")) {
		return filepath.Join(final, "rootfs"), nil
	}
	start := time.Now()
	release, err := ensureBinfmt(v)
	if err != nil {
		return "", err
	}
	defer release()
	tmp := filepath.Join(vmBuildDir(o.CacheDir), "vm-base-"+v.GOARCH+"-"+key)
	if err := unmountAll(tmp); err != nil {
		return "", err
	}
	if err := removeTree(tmp); err != nil {
		return "", err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	rootfs := filepath.Join(tmp, "rootfs")
	log.printf("VM image %s: debootstrap --arch=%s %s (under qemu-user: many minutes)", v.Name, v.GOARCH, baseSuite)
	if _, err := runCmd(ctx, nil, "debootstrap", "--arch="+v.GOARCH, "--variant=minbase",
		"--include="+strings.Join(vmDebootstrapPackages, ","), baseSuite, rootfs, o.DebianMirror); err != nil {
		return "", fmt.Errorf("VM image %s: debootstrap (needs Debian's mirror %s): %w", v.Name, o.DebianMirror, err)
	}
	log.printf("VM image %s: debootstrap done in %s; apt-get install %d packages and the kernel", v.Name, time.Since(start).Round(time.Second), len(vmPackages))
	script := "LAB_DEBIAN_MIRROR='" + o.DebianMirror + "'\nLAB_PACKAGES='" + strings.Join(vmPackages, " ") + "'\n" + vmSetupScript
	if _, err := runInImage(ctx, rootfs, true, nil, script); err != nil {
		return "", fmt.Errorf("VM image %s: install packages: %w", v.Name, err)
	}
	recipe := fmt.Sprintf("debootstrap --arch=%s --variant=minbase %s\ndebootstrap packages: %s\napt packages: %s\n",
		v.GOARCH, baseSuite, strings.Join(vmDebootstrapPackages, " "), strings.Join(vmPackages, " "))
	if err := os.WriteFile(filepath.Join(tmp, "recipe.txt"), []byte(recipe), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "done"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("move the VM base into the cache: %w", err)
	}
	log.printf("VM image %s: base built in %s (%s)", v.Name, time.Since(start).Round(time.Second), final)
	return filepath.Join(final, "rootfs"), nil
}

// buildVMImage returns the VM image of v, building it on a cache miss:
// the base (buildVMBase), then over it the personality's files, the
// initramfs and the root disk.
func buildVMImage(ctx context.Context, o Options, v *vmSpec, log *logger) (vmImage, error) {
	p, err := lookupPersonality(v.Personality)
	if err != nil {
		return vmImage{}, err
	}
	key := vmImageKey(v, p)
	final := filepath.Join(o.CacheDir, "vm-"+v.Name+"-"+key)
	if exists(filepath.Join(final, "done")) {
		log.printf("VM image %s: cached (%s)", v.Name, final)
		return openVMImage(final)
	}
	base, err := buildVMBase(ctx, o, v, log)
	if err != nil {
		return vmImage{}, err
	}
	start := time.Now()
	release, err := ensureBinfmt(v)
	if err != nil {
		return vmImage{}, err
	}
	defer release()
	tmp := filepath.Join(vmBuildDir(o.CacheDir), "vm-"+v.Name+"-"+key)
	if err := unmountAll(tmp); err != nil {
		return vmImage{}, err
	}
	if err := removeTree(tmp); err != nil {
		return vmImage{}, err
	}
	upper, work, merged := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return vmImage{}, err
		}
	}
	if err := mountOverlay(ctx, []string{base}, upper, work, merged); err != nil {
		return vmImage{}, fmt.Errorf("VM image %s: %w", v.Name, err)
	}
	kver, buildErr := finishVMImage(ctx, v, p, merged, tmp)
	if err := unmountAll(merged); err != nil && buildErr == nil {
		buildErr = err
	}
	if buildErr != nil {
		return vmImage{}, fmt.Errorf("VM image %s: %w", v.Name, buildErr)
	}
	for _, d := range []string{upper, work, merged} {
		if err := removeTree(d); err != nil {
			return vmImage{}, err
		}
	}
	recipe := fmt.Sprintf("VM %s: personality %s, kernel %s, over %s\n", v.Name, p.Name, kver, base)
	for name, data := range map[string]string{"recipe.txt": recipe, "kernel-release": kver + "\n", "done": ""} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(data), 0o644); err != nil {
			return vmImage{}, err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return vmImage{}, fmt.Errorf("move the VM image into the cache: %w", err)
	}
	log.printf("VM image %s: built in %s (%s)", v.Name, time.Since(start).Round(time.Second), final)
	return openVMImage(final)
}

// finishVMImage lays the personality into the mounted root file system
// merged, and writes the kernel, the initramfs and the root disk into
// out. It returns the kernel's release.
func finishVMImage(ctx context.Context, v *vmSpec, p *Personality, merged, out string) (string, error) {
	if err := fillImage(ctx, merged, p, vmLayerTrees(p), vmLinks(p), vmRPMDB(p, v), v.UnameArch); err != nil {
		return "", err
	}
	if err := writeVMFstab(merged, v); err != nil {
		return "", err
	}
	if _, err := runInImage(ctx, merged, false, nil, vmFinishScript); err != nil {
		return "", err
	}
	kver, err := onlyKernel(merged)
	if err != nil {
		return "", err
	}
	if err := copyPlain(filepath.Join(merged, "boot", "vmlinuz-"+kver), filepath.Join(out, "vmlinuz")); err != nil {
		return "", err
	}
	if err := makeInitramfs(merged, kver, filepath.Join(out, "initrd.img")); err != nil {
		return "", err
	}
	if _, err := runCmd(ctx, nil, "mkfs.ext4", "-q", "-F", "-L", "labroot", "-d", merged,
		filepath.Join(out, "root.img"), vmRootSize); err != nil {
		return "", fmt.Errorf("make the root disk (Debian package e2fsprogs): %w", err)
	}
	return kver, nil
}

// openVMImage reads a built image's entry.
func openVMImage(dir string) (vmImage, error) {
	kver, err := os.ReadFile(filepath.Join(dir, "kernel-release"))
	if err != nil {
		return vmImage{}, fmt.Errorf("VM image %s: %w", dir, err)
	}
	return vmImage{
		Dir: dir, Root: filepath.Join(dir, "root.img"),
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
		KernelRelease: strings.TrimSpace(string(kver)),
	}, nil
}

// writeVMFstab replaces the personality's fstab with the VM's.
func writeVMFstab(rootfs string, v *vmSpec) error {
	im, err := openImage(rootfs)
	if err != nil {
		return err
	}
	defer im.Close()
	return im.writeFile("/etc/fstab", []byte(strings.TrimLeft(v.Fstab, "\n")), 0o644)
}

// onlyKernel returns the release of the one kernel in the image.
func onlyKernel(rootfs string) (string, error) {
	entries, err := os.ReadDir(filepath.Join(rootfs, "lib", "modules"))
	if err != nil {
		return "", fmt.Errorf("the image has no kernel modules: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) != 1 {
		return "", fmt.Errorf("the image has %d kernels (%s), want one", len(names), strings.Join(names, ", "))
	}
	return names[0], nil
}

// copyPlain copies a file (the kernel) out of the image.
func copyPlain(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// binfmtDir is where the kernel's binfmt_misc interface is mounted.
const binfmtDir = "/proc/sys/fs/binfmt_misc"

// ensureBinfmt makes the machine run v's programs through qemu-user while
// the image is built, as Debian's qemu-user-static registers it (flag F:
// the interpreter is opened now, so it works inside the image's chroot).
// The returned function undoes what it did: an entry it registered is
// removed, a mount it made is unmounted; what was there stays.
func ensureBinfmt(v *vmSpec) (func(), error) {
	if runtime.GOARCH == v.GOARCH {
		return func() {}, nil
	}
	mounted := false
	if !exists(filepath.Join(binfmtDir, "register")) {
		if _, err := runCmd(context.Background(), nil, "mount", "-t", "binfmt_misc", "binfmt_misc", binfmtDir); err != nil {
			return nil, fmt.Errorf("mount binfmt_misc to run %s programs while the VM image is built: %w", v.GOARCH, err)
		}
		mounted = true
	}
	undo := func() {
		if mounted {
			_, _ = runCmd(context.Background(), nil, "umount", binfmtDir)
		}
	}
	entry := filepath.Join(binfmtDir, v.Binfmt)
	if exists(entry) {
		return undo, nil
	}
	conf := filepath.Join("/usr/lib/binfmt.d", v.Binfmt+".conf")
	data, err := os.ReadFile(conf)
	if err != nil {
		undo()
		return nil, fmt.Errorf("building the %s VM image runs its programs with qemu-user: %w (Debian package qemu-user-static)", v.GOARCH, err)
	}
	var line string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			line = l
		}
	}
	if err := os.WriteFile(filepath.Join(binfmtDir, "register"), []byte(line), 0o200); err != nil {
		undo()
		return nil, fmt.Errorf("register %s with binfmt_misc (%s): %w", v.Binfmt, conf, err)
	}
	return func() {
		_ = os.WriteFile(entry, []byte("-1"), 0o200)
		undo()
	}, nil
}

// VMNames lists the VM host kinds `up --vm` takes, sorted.
func VMNames() []string {
	var names []string
	for n := range vmSpecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
