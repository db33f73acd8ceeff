package facts

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Script runs under dash and bash on this machine, and what it reads with
// shell builtins agrees with the programs it replaced.
func TestScriptAgreesWithThePrograms(t *testing.T) {
	command := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			t.Skipf("%s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	swaps, _ := os.ReadFile("/proc/swaps")
	want := map[string]string{
		"arch":     command("uname", "-m"),
		"kernel":   command("uname", "-r"),
		"pagesize": command("getconf", "PAGESIZE"),
		"hostname": command("cat", "/proc/sys/kernel/hostname"),
		"init":     command("cat", "/proc/1/comm"),
		"swaps":    strconv.Itoa(max(0, strings.Count(string(swaps), "\n")-1)),
	}
	cgroup := command("stat", "-fc", "%T", "/sys/fs/cgroup")
	cpus, _ := strconv.Atoi(command("getconf", "_NPROCESSORS_ONLN"))
	for _, sh := range []string{"sh", "bash"} {
		if _, err := exec.LookPath(sh); err != nil {
			continue
		}
		t.Run(sh, func(t *testing.T) {
			out, err := exec.Command(sh, "-c", Script).Output()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			kv := map[string]string{}
			for line := range strings.Lines(string(out)) {
				k, v, _ := strings.Cut(strings.TrimRight(line, "\n"), "=")
				kv[k] = v
			}
			for k, v := range want {
				if kv[k] != v {
					t.Errorf("%s=%q, want %q", k, kv[k], v)
				}
			}
			if got := onlineCPUs(kv["cpus_online"]); got != cpus {
				t.Errorf("cpus_online=%q is %d CPUs, getconf says %d", kv["cpus_online"], got, cpus)
			}
			if (cgroup == "cgroup2fs") != (kv["cgroupfs"] == "cgroup2fs") {
				t.Errorf("cgroupfs=%q, stat -f says %s", kv["cgroupfs"], cgroup)
			}
			if kb, err := strconv.Atoi(kv["memkb"]); err != nil || kb <= 0 {
				t.Errorf("memkb=%q", kv["memkb"])
			}
			for _, k := range []string{"version_containerd", "version_dockerd", "version_cri-dockerd", "ipvs_missing", "user"} {
				if _, ok := kv[k]; !ok {
					t.Errorf("no %s line", k)
				}
			}
		})
	}
}

// A module counts as there when loaded, built in, or listed in modules.dep;
// a module that is only some other's dependency counts too, and ip_vs_rr
// never stands in for ip_vs.
func TestScriptFindsIPVSModules(t *testing.T) {
	kernel, err := exec.Command("uname", "-r").Output()
	if err != nil {
		t.Skip(err)
	}
	root := t.TempDir()
	mods := root + "/lib/modules/" + strings.TrimSpace(string(kernel))
	for _, d := range []string{root + "/sys/module/ip_vs_wrr", mods} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		mods + "/modules.builtin": "kernel/net/netfilter/ipvs/ip_vs_rr.ko\n",
		mods + "/modules.dep":     "kernel/net/netfilter/ipvs/ip_vs_foo.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko.xz\n",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := strings.NewReplacer("/sys/module/", root+"/sys/module/", "/lib/modules/", root+"/lib/modules/").Replace(Script)
	for _, sh := range []string{"sh", "bash"} {
		out, err := exec.Command(sh, "-c", script).Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", sh, err, out)
		}
		if !strings.Contains(string(out), "\nipvs_missing= ip_vs_sh\n") {
			t.Errorf("%s: want ipvs_missing= ip_vs_sh in\n%s", sh, out)
		}
	}
}

// Under the run lock the snippet records what uname, getconf and the grep
// of modules.dep answered; the next probe answers the same from the record
// without running them, until the boot id changes or depmod rewrites
// modules.dep. A plan's probe (no lock) never writes the record.
func TestScriptRecordsWhatCannotChangeUnseen(t *testing.T) {
	for _, sh := range []string{"sh", "bash"} {
		if _, err := exec.LookPath(sh); err == nil {
			t.Run(sh, func(t *testing.T) { testScriptRecords(t, sh) })
		}
	}
}

func testScriptRecords(t *testing.T, sh string) {
	kernel, err := exec.Command("uname", "-r").Output()
	if err != nil {
		t.Skip(err)
	}
	root := t.TempDir()
	mods := root + "/lib/modules/" + strings.TrimSpace(string(kernel))
	if err := os.MkdirAll(mods, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, c string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(mods+"/modules.builtin", "kernel/net/netfilter/ipvs/ip_vs_rr.ko\n")
	write(mods+"/modules.dep", "kernel/net/netfilter/ipvs/ip_vs.ko.xz:\n")
	// The programs the record stands in for, logged as they are run.
	bin, calls := root+"/bin", root+"/calls"
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, prog := range []string{"uname", "getconf", "grep"} {
		real, err := exec.LookPath(prog)
		if err != nil {
			t.Skip(err)
		}
		write(bin+"/"+prog, "#!/bin/sh\necho "+prog+" >>"+calls+"\nexec "+real+" \"$@\"\n")
		os.Chmod(bin+"/"+prog, 0o755)
	}
	record := root + "/facts"
	script := strings.NewReplacer(Record, record, "/sys/module/", root+"/sys/module/", "/lib/modules/", root+"/lib/modules/").Replace(Script)
	run := func(recording bool) (facts, ran string) {
		t.Helper()
		os.Remove(calls)
		line := script
		if recording {
			line = "kprep_recording=1\n" + script
		}
		cmd := exec.Command(sh, "-c", line)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var keep []string
		for l := range strings.Lines(string(out)) {
			if k, _, _ := strings.Cut(l, "="); k == "arch" || k == "kernel" || k == "pagesize" || k == "ipvs_missing" {
				keep = append(keep, strings.TrimSpace(l))
			}
		}
		b, _ := os.ReadFile(calls)
		return strings.Join(keep, " "), strings.Join(strings.Fields(string(b)), " ")
	}

	first, ran := run(false)
	if ran != "uname getconf grep" {
		t.Errorf("first probe ran %q, want uname getconf grep", ran)
	}
	if !strings.Contains(first, "ipvs_missing= ip_vs_wrr ip_vs_sh") {
		t.Errorf("first probe: %s", first)
	}
	if _, err := os.Stat(record); err == nil {
		t.Fatal("a probe without the lock wrote the record")
	}
	// The record is trusted only once strictly newer than modules.dep.
	old := time.Now().Add(-time.Hour)
	os.Chtimes(mods+"/modules.dep", old, old)
	os.Chtimes(mods+"/modules.builtin", old, old)
	if got, ran := run(true); got != first || ran != "uname getconf grep" {
		t.Errorf("recording probe: %q ran %q, want %q and every program", got, ran, first)
	}
	if got, ran := run(false); got != first || ran != "" {
		t.Errorf("probe with the record: %q ran %q, want %q and no program", got, ran, first)
	}
	// depmod: the grep runs again; the boot line still stands.
	write(mods+"/modules.dep", "kernel/net/netfilter/ipvs/ip_vs.ko.xz:\nkernel/net/netfilter/ipvs/ip_vs_sh.ko.xz:\n")
	if got, ran := run(true); !strings.Contains(got, "ipvs_missing= ip_vs_wrr") || strings.Contains(got, "ip_vs_sh") || ran != "grep" {
		t.Errorf("after depmod: %q ran %q, want ip_vs_sh found by the grep alone", got, ran)
	}
	// Another boot: uname and getconf again.
	b, _ := os.ReadFile(record)
	write(record, strings.Replace(string(b), "boot ", "boot x", 1))
	if _, ran := run(false); !strings.HasPrefix(ran, "uname getconf") {
		t.Errorf("after a reboot the probe ran %q, want uname and getconf", ran)
	}
}
