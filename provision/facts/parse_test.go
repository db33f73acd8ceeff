package facts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		file string
		want Facts
	}{
		{"centos7.txt", Facts{OSID: "centos", OSVersion: "7", OSName: "CentOS Linux 7 (Core)", Family: FamilyRHEL, Major: 7,
			Release: "7.9.2009", Arch: "x86_64", Kernel: "3.10.0-1160.el7.x86_64", CgroupV: 1, Init: "systemd",
			PkgManager: "yum", Hostname: "localhost.localdomain", PageSize: 4096, CPUs: 2, MemoryMiB: 3789, User: "root", Swaps: 1}},
		{"kunpeng-openeuler2203.txt", Facts{OSID: "openEuler", OSVersion: "22.03", OSName: "openEuler 22.03 (LTS-SP3)",
			Family: FamilyRHEL, Major: 8, Arch: "aarch64", Kernel: "5.10.0-182.0.0.95.oe2203sp3.aarch64", CgroupV: 1,
			Init: "systemd", PkgManager: "dnf", Hostname: "kunpeng-01", PageSize: 65536, CPUs: 96, MemoryMiB: 257379, User: "kprep", SudoNeeded: true,
			Conntrack: true, Socat: true, ContainerdVersion: "1.6.33", DockerVersion: "26.1.4"}},
		{"rocky9.txt", Facts{OSID: "rocky", OSVersion: "9.4", OSName: "Rocky Linux 9.4 (Blue Onyx)", Family: FamilyRHEL, Major: 9,
			Release: "9.4", Arch: "x86_64", Kernel: "5.14.0-427.13.1.el9_4.x86_64", CgroupV: 2, Init: "systemd", PkgManager: "dnf",
			Hostname: "rocky9", PageSize: 4096, CPUs: 4, MemoryMiB: 7684, User: "root", Swaps: 1}},
		{"ubuntu2204.txt", Facts{OSID: "ubuntu", OSVersion: "22.04", OSName: "Ubuntu 22.04.4 LTS", Codename: "jammy",
			Family: FamilyDebian, Major: 22, Arch: "x86_64", Kernel: "5.15.0-105-generic", CgroupV: 2, Init: "systemd",
			PkgManager: "apt", Hostname: "ubuntu", PageSize: 4096, CPUs: 2, MemoryMiB: 3914, User: "ubuntu",
			Conntrack: true, Swaps: 1, ContainerdVersion: "1.7.25", DockerVersion: "27.5.1", CRIDockerdVersion: "0.3.16"}},
		{"kylin-v10.txt", Facts{OSID: "kylin", OSVersion: "V10", OSName: "Kylin Linux Advanced Server V10 (Lance)",
			Family: FamilyRHEL, Major: 8, Arch: "aarch64", Kernel: "4.19.90-52.22.v2207.ky10.aarch64", CgroupV: 1,
			Init: "systemd", PkgManager: "dnf", Hostname: "ky10", PageSize: 65536, CPUs: 8, MemoryMiB: 15625, User: "root",
			Conntrack: true, Socat: true}},
		// Recorded by running Script on the machine the lab runs on: a
		// Debian 12 container whose PID 1 is not systemd, without the ip_vs
		// modules, with Debian's own containerd and docker.io.
		{"debian12-no-systemd.txt", Facts{OSID: "debian", OSVersion: "12", OSName: "Debian GNU/Linux 12 (bookworm)", Codename: "bookworm",
			Family: FamilyDebian, Major: 12, Arch: "x86_64", Kernel: "6.18.44-fc-v782", CgroupV: 1, Init: "process_api",
			PkgManager: "apt", Hostname: "vm", PageSize: 4096, CPUs: 2, MemoryMiB: 24105, User: "root",
			IPVSMissing: []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh"}, ContainerdVersion: "1.6.20", DockerVersion: "20.10.24"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Parse(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%s) mismatch (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		file, wantErr string
	}{
		{"alpine.txt", `unsupported operating system "Alpine Linux v3.20" (ID=alpine, VERSION_ID=3.20.0)`},
		{"centos6.txt", "unsupported version 6 of centos (kprep supports versions [7 8 9 10])"},
		{"no-osrelease.txt", "cannot tell the operating system: /etc/os-release is missing or has no ID"},
		{"ppc64le.txt", `unsupported CPU architecture "ppc64le" (kprep supports x86_64 and aarch64)`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Parse(readTestdata(t, tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse(%s) error = %v, want it to contain %q", tt.file, err, tt.wantErr)
			}
		})
	}
}

func TestVersionWord(t *testing.T) {
	for line, want := range map[string]string{
		"containerd containerd.io 1.6.33 d2d58213f83a351ca8f528a95fbd145f5654e957":                       "1.6.33",
		"containerd github.com/containerd/containerd v1.7.24 88bf19b2105c8b17560993bee28a01ddc2f97182":   "1.7.24",
		"containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376": "2.1.4",
		"containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3":                    "1.6.20",
		"": "",
	} {
		if got := versionWord(line, 2); got != want {
			t.Errorf("versionWord(%q) = %q, want %q", line, got, want)
		}
	}
	if got := versionWord("Docker version 20.10.24+dfsg1, build 5d6db84", 2); got != "20.10.24" {
		t.Errorf("dockerd: %q", got)
	}
}

func TestGoArch(t *testing.T) {
	for arch, want := range map[string]string{"x86_64": "amd64", "aarch64": "arm64"} {
		if got := (Facts{Arch: arch}).GoArch(); got != want {
			t.Errorf("GoArch(%s) = %s, want %s", arch, got, want)
		}
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOnlineCPUs(t *testing.T) {
	for list, want := range map[string]int{"0": 1, "0-1": 2, "0-3,6,8-9": 7, "": 0, "x": 0, "3-1": 0} {
		if got := onlineCPUs(list); got != want {
			t.Errorf("onlineCPUs(%q) = %d, want %d", list, got, want)
		}
	}
}
