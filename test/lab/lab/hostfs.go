package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kprep/kprep/test/lab/instance"
)

// sudoUser is the non-root user of the lab's hosts. By position: lab1 is
// the control plane reached as root; lab2 is reached as kprep with
// password-less sudo; lab3 as kprep whose sudo asks for a password; the
// rest as root. VM hosts, wherever they are, as kprep with password-less
// sudo.
const sudoUser = "kprep"

// planHosts decides each host's name, address, personality, roles and SSH
// user.
func planHosts(o Options) []hostState {
	hosts := make([]hostState, o.Hosts+len(o.VMs))
	for i := range hosts {
		osName := ""
		if i < o.Hosts {
			osName = o.OS[i%len(o.OS)]
		} else {
			osName = o.VMs[i-o.Hosts]
		}
		h := hostState{
			Name:    hostName(i),
			Address: o.Instance.HostAddr(i),
			OS:      osName,
			Roles:   []string{"worker"},
			User:    "root",
		}
		switch i {
		case 0:
			h.Roles = []string{"control-plane"}
		case 1:
			h.User = sudoUser
		case 2:
			h.User = sudoUser
			h.SudoPassword = true
		}
		if lookupVM(h.OS) != nil {
			// As the Kunpeng inventory reaches its servers: a sudoer
			// whose sudo needs no password.
			h.VM, h.User, h.SudoPassword = true, sudoUser, false
		}
		hosts[i] = h
	}
	return hosts
}

// hostPaths are a host's folders and files on the machine.
type hostPaths struct {
	Dir, Upper, Work, Root, Docker, Containerd, Kernel, Console string
}

func pathsOf(stateDir, host string) hostPaths {
	d := hostDir(stateDir, host)
	return hostPaths{
		Dir:        d,
		Upper:      filepath.Join(d, "upper"),
		Work:       filepath.Join(d, "work"),
		Root:       filepath.Join(d, "root"),
		Docker:     filepath.Join(d, "docker"),
		Containerd: filepath.Join(d, "containerd"),
		Kernel:     filepath.Join(d, "kernel"),
		Console:    filepath.Join(d, "console.log"),
	}
}

// kernelFiles are the per-host stand-ins for kernel files: /proc/swaps
// (filled at boot by lab-kernel.service) and the /proc/sys values the
// kubelet insists on, which a container cannot set.
var kernelFiles = map[string]string{
	"swaps":             "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
	"overcommit_memory": "1\n",
	"panic":             "10\n",
	"panic_on_oops":     "1\n",
}

// kernelBinds maps each kernel file to where the host sees it.
var kernelBinds = map[string]string{
	"swaps":             "/proc/swaps",
	"overcommit_memory": "/proc/sys/vm/overcommit_memory",
	"panic":             "/proc/sys/kernel/panic",
	"panic_on_oops":     "/proc/sys/kernel/panic_on_oops",
}

// hostSetup is what every host's root file system gets beyond its layers.
type hostSetup struct {
	// ID is the lab instance: the host's gateway and DNS server is its
	// bridge address.
	ID instance.ID
	// Layers are the overlay lower folders, top first.
	Layers []string
	// PubKey is the lab key's authorized_keys line.
	PubKey []byte
	// SudoPassword is the password of the host that asks for one.
	SudoPassword string
	// Crictl is lab-crictl on the machine, copied into every host; "" when
	// the mirror is not built.
	Crictl string
	// Builtin is modules.builtin for the running kernel.
	Builtin []byte
}

// prepareHost makes the host's root file system: an overlay over the
// shared layers with the host's identity, network, keys and sudo rules.
func prepareHost(ctx context.Context, stateDir string, h hostState, s hostSetup) error {
	p := pathsOf(stateDir, h.Name)
	for _, d := range []string{p.Upper, p.Work, p.Root, p.Docker, p.Containerd, p.Kernel} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
	}
	for name, content := range kernelFiles {
		if err := os.WriteFile(filepath.Join(p.Kernel, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
	}
	if err := mountOverlay(ctx, s.Layers, p.Upper, p.Work, p.Root); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	im, err := openImage(p.Root)
	if err != nil {
		return err
	}
	defer im.Close()
	if err := writeHostFiles(im, h, s); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	if _, err := runCmd(ctx, nil, "ssh-keygen", "-q", "-A", "-f", p.Root); err != nil {
		return fmt.Errorf("host %s: make SSH host keys: %w", h.Name, err)
	}
	var stdin []byte
	script := hostScript
	if h.SudoPassword {
		// The secret goes through stdin only, never through arguments.
		stdin = []byte(sudoUser + ":" + s.SudoPassword + "\n")
		script = "LAB_SET_PASSWORD=1\n" + script
	}
	if _, err := runInImage(ctx, p.Root, false, stdin, script); err != nil {
		return fmt.Errorf("host %s: set up users: %w", h.Name, err)
	}
	return nil
}

// hostScript runs inside the host's image before it boots.
const hostScript = `
chmod 700 /root/.ssh /home/kprep/.ssh
chown -R kprep:kprep /home/kprep/.ssh
if [ -n "${LAB_SET_PASSWORD:-}" ]; then chpasswd; else usermod -p '*' kprep; fi
depmod "$(uname -r)"
`

// hostFile is one of a host's own files.
type hostFile struct {
	path string
	data []byte
	mode os.FileMode
}

// hostIdentityFiles are the files that make a host itself: name, address,
// machine id, DNS, the lab key and sudo rules. nspawn hosts get them in
// their root, VM hosts on their seed disk.
func hostIdentityFiles(h hostState, s hostSetup) []hostFile {
	machineID := make([]byte, 16)
	_, _ = rand.Read(machineID) // never fails (crypto/rand)
	network := fmt.Sprintf("# kprep lab: this host's address on the lab bridge %s.\n[Match]\nName=%s\n\n[Network]\nAddress=%s/%d\nGateway=%s\n",
		s.ID.Bridge(), hostIface, h.Address, instance.BridgePrefix, s.ID.BridgeAddr())
	// Nothing answers DNS on the bridge address: lookups fail at once
	// instead of after a time-out (hosts have no internet).
	resolvConf := "# kprep lab: hosts have no DNS; names they need are in /etc/hosts.\nnameserver " + s.ID.BridgeAddr() + "\n"
	return []hostFile{
		{"/etc/hostname", []byte(h.Name + "\n"), 0o644},
		// sudo resolves its own host name; without this line each sudo
		// waits for a DNS time-out.
		{"/etc/hosts", []byte(fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n", h.Name)), 0o644},
		{"/etc/machine-id", []byte(hex.EncodeToString(machineID) + "\n"), 0o444},
		{"/etc/resolv.conf", []byte(resolvConf), 0o644},
		{"/etc/systemd/network/10-lab-" + hostIface + ".network", []byte(network), 0o644},
		{"/root/.ssh/authorized_keys", s.PubKey, 0o600},
		{"/home/" + sudoUser + "/.ssh/authorized_keys", s.PubKey, 0o600},
		{"/etc/sudoers.d/90-kprep-lab", []byte(sudoersFor(h)), 0o440},
	}
}

// writeHostFiles writes the host's own files into its image.
func writeHostFiles(im *imageFS, h hostState, s hostSetup) error {
	files := hostIdentityFiles(h, s)
	kver, err := kernelRelease()
	if err != nil {
		return err
	}
	files = append(files, hostFile{"/lib/modules/" + kver + "/modules.builtin", s.Builtin, 0o644})
	for _, f := range files {
		if err := im.writeFile(f.path, f.data, f.mode); err != nil {
			return err
		}
	}
	return writeCrictl(im, s.Crictl)
}

// writeCrictl copies lab-crictl from the machine into the image, if the
// mirror built one ("" otherwise).
func writeCrictl(im *imageFS, crictl string) error {
	if crictl == "" {
		return nil
	}
	data, err := os.ReadFile(crictl)
	if err != nil {
		return fmt.Errorf("read lab-crictl: %w", err)
	}
	return im.writeFile("/usr/local/bin/lab-crictl", data, 0o755)
}

// sudoersFor is the host's sudo rule for the kprep user.
func sudoersFor(h hostState) string {
	switch {
	case h.User != sudoUser:
		return "# kprep lab: this host is reached as root; kprep has no sudo here.\n"
	case h.SudoPassword:
		return "# kprep lab: sudo asks for kprep's password (in the lab's state folder).\nkprep ALL=(ALL:ALL) ALL\n"
	default:
		return "# kprep lab: password-less sudo, as on most cloud images.\nkprep ALL=(ALL:ALL) NOPASSWD: ALL\n"
	}
}

// kernelRelease is the running kernel's release (uname -r), which every
// nspawn host shares.
func kernelRelease() (string, error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "", err
	}
	return utsString(u.Release[:]), nil
}

// utsString reads one NUL-terminated field of syscall.Utsname.
func utsString[T int8 | uint8](field []T) string {
	var b strings.Builder
	for _, c := range field {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}
