package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kprep/kprep/test/lab/instance"
)

// Lab is a running lab.
type Lab struct {
	stateDir string
	st       *state
}

// Host is one of the lab's hosts.
type Host struct {
	// Name is lab1..labN: the inventory name and the host's own hostname.
	Name string
	// Address is the host's address on the lab bridge.
	Address string
	// OS is the host's personality: centos7, rocky9, openeuler22, ubuntu22.
	OS string
	// Roles are the host's inventory roles.
	Roles []string
	// LeaderPID is the host's PID 1 (systemd) as the machine sees it; 0
	// for a VM host, whose processes the machine does not see.
	LeaderPID int
	// VM is set for a VM host: a real machine of its own architecture
	// under QEMU, with its own kernel (Exec goes over SSH there).
	VM bool
	// Arch is the host's architecture as uname -m says it: x86_64 for
	// nspawn hosts, the VM's for a VM host (aarch64).
	Arch string
	// SSHUser is the user the inventory logs in as: root or kprep.
	SSHUser string
	// SudoNeedsPassword is set for the host whose sudo asks for the
	// password in SudoPassword.
	SudoNeedsPassword bool
	// Root is the host's root file system as mounted on the machine, for
	// reading files from outside (write through Exec); "" for a VM host.
	Root string
	// Console is the log of the host's console (boot messages).
	Console string
}

// Open returns the lab running from stateDir; "" means KPREP_LAB_STATE or
// the state folder of the instance KPREP_LAB_ID names. The lab's instance
// is the one its state records.
func Open(stateDir string) (*Lab, error) {
	if stateDir == "" {
		var err error
		if _, stateDir, err = fromEnv(""); err != nil {
			return nil, err
		}
	}
	st, err := loadState(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s in %s); start one with the lab's up", errNoLab, stateFile, stateDir)
	}
	if err != nil {
		return nil, err
	}
	if !st.Ready {
		return nil, fmt.Errorf("the lab in %s did not finish coming up; run the lab's down, then up", stateDir)
	}
	return &Lab{stateDir: stateDir, st: st}, nil
}

// Hosts lists the hosts in order.
func (l *Lab) Hosts() []Host {
	var hosts []Host
	for _, h := range l.st.hosts() {
		p := pathsOf(l.stateDir, h.Name)
		hosts = append(hosts, Host{
			Name: h.Name, Address: h.Address, OS: h.OS, Roles: append([]string(nil), h.Roles...),
			LeaderPID: h.Leader.PID, SSHUser: h.User, SudoNeedsPassword: h.SudoPassword,
			Root: hostRoot(h, p), Console: p.Console, VM: h.VM, Arch: hostArch(h),
		})
	}
	return hosts
}

// Host returns the host called name.
func (l *Lab) Host(name string) (Host, error) {
	for _, h := range l.Hosts() {
		if h.Name == name {
			return h, nil
		}
	}
	return Host{}, l.unknownHost(name)
}

func (l *Lab) host(name string) (hostState, error) {
	for _, h := range l.st.hosts() {
		if h.Name == name {
			return h, nil
		}
	}
	return hostState{}, l.unknownHost(name)
}

func (l *Lab) unknownHost(name string) error {
	var names []string
	for _, h := range l.st.hosts() {
		names = append(names, h.Name)
	}
	return fmt.Errorf("no host %q in the lab (it has %s)", name, strings.Join(names, ", "))
}

// StateDir is the lab's state folder.
func (l *Lab) StateDir() string { return l.stateDir }

// InventoryPath is the inventory file the lab wrote for kprep.
func (l *Lab) InventoryPath() string { return filepath.Join(l.stateDir, inventoryFileName) }

// KeyFile is the lab's private SSH key, accepted for root and kprep on
// every host.
func (l *Lab) KeyFile() string { return filepath.Join(l.stateDir, keyFileName) }

// KnownHostsFile is the known_hosts file the inventory names.
func (l *Lab) KnownHostsFile() string { return filepath.Join(l.stateDir, knownHostsFileName) }

// Instance is the lab instance (KPREP_LAB_ID) this lab is.
func (l *Lab) Instance() instance.ID { return l.st.Instance }

// BridgeAddr is the machine's address on the lab's bridge: the hosts'
// gateway, where the mirror and registry listen.
func (l *Lab) BridgeAddr() string { return l.st.Instance.BridgeAddr() }

// MirrorURL is the package mirror's address as the hosts reach it.
func (l *Lab) MirrorURL() string { return l.st.Instance.MirrorURL() }

// RegistryAddr is the image registry's host:port (plain HTTP).
func (l *Lab) RegistryAddr() string { return l.st.Instance.RegistryAddr() }

// MirrorServed reports whether Up built and serves the mirror and registry
// (not with NoMirror).
func (l *Lab) MirrorServed() bool { return l.st.Mirror != nil }

// MirrorBinDir is the built mirror's folder of kubeadm, kubelet, kubectl
// and lab-crictl; "" without the mirror.
func (l *Lab) MirrorBinDir() string { return l.st.MirrorBin }

// SudoPasswordEnv is the environment variable the inventory names for the
// host whose sudo asks for a password.
func (l *Lab) SudoPasswordEnv() string { return SudoPasswordEnv }

// SudoPasswordFile is where the lab keeps that password.
func (l *Lab) SudoPasswordFile() string { return filepath.Join(l.stateDir, sudoPasswordFileName) }

// SudoPassword returns the password, for tests that set SudoPasswordEnv.
func (l *Lab) SudoPassword() (string, error) {
	b, err := os.ReadFile(l.SudoPasswordFile())
	if err != nil {
		return "", fmt.Errorf("read the lab's sudo password: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// hostArch is uname -m of a host: the machine's for an nspawn host.
func hostArch(h hostState) string {
	if v := lookupVM(h.OS); v != nil {
		return v.UnameArch
	}
	return machineUnameArch()
}

// hostRoot is where the machine sees a host's root file system: nowhere
// for a VM, whose disk only QEMU opens.
func hostRoot(h hostState, p hostPaths) string {
	if h.VM {
		return ""
	}
	return p.Root
}

// machineUnameArch is the machine's uname -m.
func machineUnameArch() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	return utsString(u.Machine[:])
}
