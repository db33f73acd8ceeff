package lab

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The emulated kernel commands are shell scripts; these tests run them on
// the machine against files in a temporary folder (the LAB_* variables
// point them there), as a host's boot and kprep would call them.

// emulator installs an embedded script under the given command names.
type emulator struct {
	t   *testing.T
	dir string
	env []string
}

func newEmulator(t *testing.T, script string, names ...string) *emulator {
	t.Helper()
	for _, tool := range []string{"bash", "awk", "flock", "readlink"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	data, err := fs.ReadFile(hostFiles, script)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, filepath.Base(script))
	if err := os.WriteFile(target, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.Symlink(target, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return &emulator{t: t, dir: dir, env: []string{"LAB_KERNEL_RUN=" + filepath.Join(dir, "run")}}
}

func (e *emulator) file(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// run runs one emulated command and returns stdout, stderr, exit status.
func (e *emulator) run(name string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(e.dir, name), args...)
	cmd.Env = append(os.Environ(), e.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			e.t.Fatal(err)
		}
	}
	return out.String(), errb.String(), code
}

func (e *emulator) read(name string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

const swapsHeader = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"

func newSwapEmulator(t *testing.T, personality string) *emulator {
	if os.Geteuid() != 0 {
		t.Skip("swapon/swapoff change swap only as root, as the real ones")
	}
	e := newEmulator(t, "files/common/usr/lib/lab-kernel/swap", "swapon", "swapoff")
	fstab, err := fs.ReadFile(hostFiles, "files/"+personality+"/etc/fstab")
	if err != nil {
		t.Fatal(err)
	}
	devices, err := fs.ReadFile(hostFiles, "files/"+personality+"/usr/lib/lab-kernel/swap-devices")
	if err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env,
		"LAB_PROC_SWAPS="+e.file("swaps", swapsHeader),
		"LAB_FSTAB="+e.file("fstab", string(fstab)),
		"LAB_SWAP_DEVICES="+e.file("devices", string(devices)))
	return e
}

func TestSwaponAllTurnsOnOnlyTheActiveFstabSwapLine(t *testing.T) {
	e := newSwapEmulator(t, "centos7")
	if _, stderr, code := e.run("swapon", "-a"); code != 0 {
		t.Fatalf("swapon -a: exit %d: %s", code, stderr)
	}
	// The kernel's exact format: name padded to 40, tabs, KiB sizes.
	want := swapsHeader + "/dev/dm-1                               partition\t2097148\t\t0\t\t-2\n"
	if got := e.read("swaps"); got != want {
		t.Errorf("/proc/swaps after swapon -a:\n%q\nwant\n%q", got, want)
	}
	// A second swapon -a changes nothing and says nothing.
	if out, stderr, code := e.run("swapon", "-a"); code != 0 || out != "" || stderr != "" {
		t.Errorf("second swapon -a: exit %d, %q, %q", code, out, stderr)
	}
	if got := e.read("swaps"); got != want {
		t.Errorf("/proc/swaps after a second swapon -a: %q", got)
	}
}

func TestSwaponShowAndSummary(t *testing.T) {
	e := newSwapEmulator(t, "centos7")
	if out, _, code := e.run("swapon", "--show"); code != 0 || out != "" {
		t.Errorf("swapon --show with no swap: exit %d, %q (want nothing)", code, out)
	}
	e.run("swapon", "-a")
	want := "NAME      TYPE      SIZE USED PRIO\n/dev/dm-1 partition   2G   0B   -2\n"
	for _, args := range [][]string{{"--show"}, {}} {
		if out, _, _ := e.run("swapon", args...); out != want {
			t.Errorf("swapon %v:\n%s\nwant\n%s", args, out, want)
		}
	}
	if out, _, _ := e.run("swapon", "--show=NAME,SIZE", "--noheadings", "--bytes"); out != "/dev/dm-1 2147479552\n" {
		t.Errorf("swapon --show=NAME,SIZE --noheadings --bytes: %q", out)
	}
	if out, _, _ := e.run("swapon", "-s"); out != e.read("swaps") {
		t.Errorf("swapon -s: %q, want /proc/swaps as is", out)
	}
	if _, stderr, code := e.run("swapon", "--show=NAME,BOGUS"); code == 0 || !strings.Contains(stderr, "unknown column: BOGUS") {
		t.Errorf("unknown column: exit %d, %q", code, stderr)
	}
}

func TestSwapoffAllEmptiesTheList(t *testing.T) {
	e := newSwapEmulator(t, "rocky9")
	e.run("swapon", "-a")
	if _, stderr, code := e.run("swapoff", "-a"); code != 0 {
		t.Fatalf("swapoff -a: exit %d: %s", code, stderr)
	}
	if got := e.read("swaps"); got != swapsHeader {
		t.Errorf("/proc/swaps after swapoff -a: %q", got)
	}
	// Turning off what is off fails as swapoff(2) does (EINVAL, exit 4).
	_, stderr, code := e.run("swapoff", "/dev/mapper/rl-swap")
	if code != 4 || !strings.Contains(stderr, "swapoff: /dev/dm-1: swapoff failed: Invalid argument") {
		t.Errorf("swapoff of an inactive area: exit %d, %q", code, stderr)
	}
	// By its fstab name, by its kernel name.
	if _, stderr, code := e.run("swapon", "/dev/mapper/rl-swap"); code != 0 {
		t.Fatalf("swapon /dev/mapper/rl-swap: exit %d: %s", code, stderr)
	}
	if _, stderr, code := e.run("swapoff", "/dev/dm-1"); code != 0 {
		t.Fatalf("swapoff /dev/dm-1: exit %d: %s", code, stderr)
	}
}

func TestSwaponRefusesAreasTheHostDoesNotHave(t *testing.T) {
	e := newSwapEmulator(t, "centos7")
	_, stderr, code := e.run("swapon", "/dev/mapper/centos-swap2")
	if code != 255 || !strings.Contains(stderr, "cannot open /dev/mapper/centos-swap2") {
		t.Errorf("swapon of a missing device: exit %d, %q", code, stderr)
	}
	e.run("swapon", "-a")
	_, stderr, code = e.run("swapon", "/dev/mapper/centos-swap")
	if code != 255 || !strings.Contains(stderr, "Device or resource busy") {
		t.Errorf("swapon of an active area: exit %d, %q", code, stderr)
	}
}

func TestSwaponAllAfterFstabLineIsCommentedOut(t *testing.T) {
	e := newSwapEmulator(t, "ubuntu22")
	fstab := strings.Replace(e.read("fstab"), "/swap.img", "#/swap.img", 1)
	e.file("fstab", fstab)
	e.run("swapon", "-a")
	if got := e.read("swaps"); got != swapsHeader {
		t.Errorf("swapon -a with the swap line commented out turned on: %q", got)
	}
	e.run("swapon", "/swap.img")
	want := swapsHeader + "/swap.img                               file\t\t2097148\t\t0\t\t-2\n"
	if got := e.read("swaps"); got != want {
		t.Errorf("swap file line: %q, want %q", got, want)
	}
}

func TestSwapHumanSizes(t *testing.T) {
	e := newSwapEmulator(t, "centos7")
	// 512 MiB - 4 KiB, as a 512M swap partition shows, rounds to 512M.
	e.file("devices", "/dev/sdb1 /dev/sdb1 partition 524284\n")
	e.run("swapon", "/dev/sdb1")
	if out, _, _ := e.run("swapon", "--show=SIZE", "--noheadings"); out != "512M\n" {
		t.Errorf("size of a 512M partition: %q", out)
	}
}

func newSELinuxEmulator(t *testing.T, config string) *emulator {
	e := newEmulator(t, "files/el/usr/lib/lab-kernel/selinux", "getenforce", "setenforce", "selinuxenabled")
	e.env = append(e.env, "LAB_SELINUX_CONFIG="+e.file("config", config))
	return e
}

func TestSELinuxBootsFromConfigAndSetenforceChangesTheMode(t *testing.T) {
	cfg, err := fs.ReadFile(hostFiles, "files/centos7/etc/selinux/config")
	if err != nil {
		t.Fatal(err)
	}
	e := newSELinuxEmulator(t, string(cfg))
	if _, stderr, code := e.run("selinux", "boot"); code != 0 {
		t.Fatalf("boot: exit %d: %s", code, stderr)
	}
	if out, _, code := e.run("getenforce"); out != "Enforcing\n" || code != 0 {
		t.Errorf("getenforce after boot: %q exit %d", out, code)
	}
	if _, _, code := e.run("selinuxenabled"); code != 0 {
		t.Errorf("selinuxenabled: exit %d, want 0", code)
	}
	if os.Geteuid() == 0 {
		if _, stderr, code := e.run("setenforce", "0"); code != 0 {
			t.Fatalf("setenforce 0: exit %d: %s", code, stderr)
		}
		if out, _, _ := e.run("getenforce"); out != "Permissive\n" {
			t.Errorf("getenforce after setenforce 0: %q", out)
		}
		// Changing the config changes nothing until the next boot.
		e.file("config", "SELINUX=disabled\n")
		if out, _, _ := e.run("getenforce"); out != "Permissive\n" {
			t.Errorf("getenforce after editing the config: %q", out)
		}
	}
	if _, stderr, code := e.run("setenforce"); code != 1 || !strings.HasPrefix(stderr, "usage:  setenforce [ Enforcing | Permissive | 1 | 0 ]") {
		t.Errorf("setenforce without argument: exit %d, %q", code, stderr)
	}
}

func TestSELinuxDisabledAtBoot(t *testing.T) {
	e := newSELinuxEmulator(t, "SELINUX=disabled\nSELINUXTYPE=targeted\n")
	e.run("selinux", "boot")
	if out, _, code := e.run("getenforce"); out != "Disabled\n" || code != 0 {
		t.Errorf("getenforce: %q exit %d", out, code)
	}
	out, stderr, code := e.run("setenforce", "0")
	if code != 1 || out != "" || stderr != "setenforce: SELinux is disabled\n" {
		t.Errorf("setenforce 0 with SELinux disabled: exit %d, %q, %q", code, out, stderr)
	}
	if _, _, code := e.run("selinuxenabled"); code != 1 {
		t.Errorf("selinuxenabled: exit %d, want 1", code)
	}
}
