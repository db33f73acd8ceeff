package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kprep/kprep/test/lab/instance"
)

// vmBootTimeout bounds a VM host's boot, from QEMU's start to sshd
// answering and systemd "running". Under software emulation on two busy
// cores a boot takes one to a few minutes.
const vmBootTimeout = 12 * time.Minute

// vmSwapSize is the VM's swap disk: 2 GiB, as the nspawn hosts' emulated
// swap; a sparse file, so it costs nothing until the VM swaps.
const vmSwapSize = 2 << 30

// vmPaths are a VM host's files on the machine, beside the host folder's
// console.log.
type vmPaths struct {
	// Seed is the folder whose root/ tree becomes the seed disk SeedImg.
	Seed, SeedImg string
	// Swap is the VM's second disk, the swap volume's.
	Swap string
	// Tmp holds QEMU's overlay of the root disk (snapshot=on writes there).
	Tmp string
	// PIDFile names the QEMU process (and, being under the state folder,
	// marks it as this lab's for down).
	PIDFile string
	// KnownHosts is the VM's host key as ssh reads it, for Exec.
	KnownHosts string
	// QemuLog is QEMU's own output (its errors; the console is Console).
	QemuLog string
}

func vmPathsOf(stateDir, host string) vmPaths {
	d := hostDir(stateDir, host)
	return vmPaths{
		Seed: filepath.Join(d, "seed"), SeedImg: filepath.Join(d, "seed.img"),
		Swap: filepath.Join(d, "swap.img"), Tmp: filepath.Join(d, "tmp"),
		PIDFile: filepath.Join(d, "qemu.pid"), KnownHosts: filepath.Join(d, "known_hosts"),
		QemuLog: filepath.Join(d, "qemu.log"),
	}
}

// prepareVM makes a VM host's own disks: the seed disk with its identity
// (the same files an nspawn host gets in its root) and an empty swap disk.
// The root disk is the cached image, which QEMU never writes.
func prepareVM(ctx context.Context, stateDir string, h hostState, s hostSetup) error {
	vp := vmPathsOf(stateDir, h.Name)
	root := filepath.Join(vp.Seed, "root")
	for _, d := range []string{vp.Tmp, filepath.Join(root, "etc", "ssh")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
	}
	im, err := openImage(root)
	if err != nil {
		return err
	}
	defer im.Close()
	for _, f := range hostIdentityFiles(h, s) {
		if f.path == "/etc/machine-id" {
			continue // systemd makes one at first boot
		}
		if err := im.writeFile(f.path, f.data, f.mode); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
	}
	if err := writeCrictl(im, s.Crictl); err != nil {
		return err
	}
	if _, err := runCmd(ctx, nil, "ssh-keygen", "-q", "-A", "-f", root); err != nil {
		return fmt.Errorf("host %s: make SSH host keys: %w", h.Name, err)
	}
	if err := writeVMKnownHosts(root, h.Address, vp.KnownHosts); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	if _, err := runCmd(ctx, nil, "mkfs.ext4", "-q", "-F", "-L", "labseed", "-d", vp.Seed, vp.SeedImg, "16M"); err != nil {
		return fmt.Errorf("host %s: make the seed disk (Debian package e2fsprogs): %w", h.Name, err)
	}
	f, err := os.OpenFile(vp.Swap, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("host %s: swap disk: %w", h.Name, err)
	}
	defer f.Close()
	if err := f.Truncate(vmSwapSize); err != nil {
		return fmt.Errorf("host %s: swap disk: %w", h.Name, err)
	}
	return nil
}

// writeVMKnownHosts writes the known_hosts line of the VM's ed25519 host
// key, which the lab made: Exec checks the VM strictly against it.
func writeVMKnownHosts(seedRoot, addr, path string) error {
	pub, err := os.ReadFile(filepath.Join(seedRoot, "etc", "ssh", "ssh_host_ed25519_key.pub"))
	if err != nil {
		return err
	}
	f := strings.Fields(string(pub))
	if len(f) < 2 {
		return fmt.Errorf("host key %q: not a public key line", pub)
	}
	return os.WriteFile(path, []byte(addr+" "+f[0]+" "+f[1]+"\n"), 0o644)
}

// vmMAC is a VM's fixed MAC address: QEMU's prefix 52:54:00, then the
// instance and the address's last octet, unique on the machine.
func vmMAC(id instance.ID, addr string) string {
	octet := addr[strings.LastIndexByte(addr, '.')+1:]
	n, _ := strconv.Atoi(octet)
	return fmt.Sprintf("52:54:00:6b:%02x:%02x", int(id), n)
}

// qemuArgs is the QEMU command line of a VM host.
func qemuArgs(v *vmSpec, img vmImage, id instance.ID, h hostState, stateDir string) []string {
	p, vp := pathsOf(stateDir, h.Name), vmPathsOf(stateDir, h.Name)
	tap, _ := id.Veth(h.Name)
	cmdline := strings.Join([]string{
		"root=/dev/vda", "rw", "console=ttyAMA0", "net.ifnames=0", "systemd.hostname=" + h.Name,
	}, " ")
	return []string{
		v.Qemu, "-name", h.Name, "-M", "virt", "-cpu", v.QemuCPU,
		"-smp", strconv.Itoa(v.CPUs), "-m", strconv.Itoa(v.MemoryMiB),
		"-display", "none", "-monitor", "none", "-serial", "file:" + p.Console,
		"-pidfile", vp.PIDFile,
		"-kernel", img.Kernel, "-initrd", img.Initrd, "-append", cmdline,
		// The cached image is read only; the VM's writes go to an overlay
		// in TMPDIR (the host's folder), gone with the VM.
		"-drive", "file=" + img.Root + ",if=none,id=root,format=raw,snapshot=on",
		"-device", "virtio-blk-pci,drive=root",
		"-drive", "file=" + vp.Swap + ",if=none,id=swap,format=raw",
		"-device", "virtio-blk-pci,drive=swap",
		"-drive", "file=" + vp.SeedImg + ",if=none,id=seed,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=seed",
		"-netdev", "tap,id=net0,ifname=" + tap + ",script=no,downscript=no",
		// No option ROM (ipxe-qemu's): the kernel boots directly.
		"-device", "virtio-net-pci,netdev=net0,romfile=,mac=" + vmMAC(id, h.Address),
	}
}

// bootVM plugs a tap into the instance's bridge and starts QEMU on it,
// detached. The tap takes the name a veth of the host would (package
// instance), so down removes it like the veths.
func bootVM(ctx context.Context, id instance.ID, stateDir string, img vmImage, h *hostState) error {
	v := lookupVM(h.OS)
	tap, err := id.Veth(h.Name)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	if _, err := runCmd(ctx, nil, "ip", "tuntap", "add", "dev", tap, "mode", "tap"); err != nil {
		return fmt.Errorf("host %s: create tap %s: %w", h.Name, tap, err)
	}
	if _, err := runCmd(ctx, nil, "ip", "link", "set", tap, "master", id.Bridge(), "up"); err != nil {
		return fmt.Errorf("host %s: put tap %s on bridge %s: %w", h.Name, tap, id.Bridge(), err)
	}
	vp := vmPathsOf(stateDir, h.Name)
	qemu, err := startDetached(qemuArgs(v, img, id, *h, stateDir), []string{"TMPDIR=" + vp.Tmp}, vp.QemuLog)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	h.Nspawn = qemu
	return nil
}

// sshArgs is the ssh command that runs a remote command as root on a VM
// host with the lab key, checking the host key the lab made.
func (l *Lab) sshArgs(h hostState, remote string) []string {
	return []string{"ssh", "-i", l.KeyFile(), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + vmPathsOf(l.stateDir, h.Name).KnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "root@" + h.Address, "--", remote}
}

// execVM is Exec for a VM host: a VM has no namespaces to enter, so the
// command runs over SSH as root with the lab key (the system's ssh client,
// never kprep's), in the same clean environment nsenter gives. An exit
// status of 255 is ssh's own failure.
func (l *Lab) execVM(ctx context.Context, h hostState, stdin []byte, argv []string) ([]byte, []byte, error) {
	if !h.Nspawn.Alive() {
		return nil, nil, fmt.Errorf("host %s is not running (its QEMU, %d, is gone); run the lab's down and up", h.Name, h.Nspawn.PID)
	}
	quoted := make([]string, 0, len(hostEnv)+len(argv)+2)
	quoted = append(quoted, "cd", "/", "&&", "exec", "env", "-i")
	for _, a := range append(append([]string{}, hostEnv...), argv...) {
		quoted = append(quoted, shellQuote(a))
	}
	return runInHost(ctx, h.Name, stdin, argv, l.sshArgs(h, strings.Join(quoted, " ")))
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// stopVM stops a VM host as a real machine is stopped: the pods and
// runtimes first (as for nspawn hosts), then `systemctl poweroff`; QEMU
// exits when the guest powers off. A VM that does not is ended with
// SIGTERM (QEMU's quit), then SIGKILL.
func (l *Lab) stopVM(ctx context.Context, h hostState, log *logger) error {
	start := time.Now()
	how := "powered off"
	qemu := h.Nspawn
	if qemu.Alive() {
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, _, _ = l.execVM(sctx, h, nil, []string{"/bin/sh", "-c", stopPodsScript})
		_, _, _ = l.execVM(sctx, h, nil, []string{"systemctl", "poweroff", "--no-block"})
		cancel()
		if !qemu.waitGone(ctx, 90*time.Second) {
			how = "QEMU ended: the VM did not power off within 90 s"
		}
	} else {
		how = "its QEMU was gone already"
	}
	if err := qemu.stop(ctx, syscall.SIGTERM, 15*time.Second); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	log.printf("%s stopped in %s (%s)", h.Name, time.Since(start).Round(100*time.Millisecond), how)
	return nil
}
