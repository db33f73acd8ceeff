package facts

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
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
