package e2e

// The Kunpeng suite: kprep on a real aarch64 machine, the lab's VM host
// (qemu-system-aarch64 booting a Debian arm64 kernel under openEuler 22.03's
// personality), driven with inventories/kunpeng-arm64.yaml's settings and
// reached, as that inventory says, through a jump host (the lab's x86 lab1).
// Opt-in: the VM image's first build takes many minutes (test/lab/README.md);
// `make e2e-kunpeng` runs it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kprep/kprep/test/lab/lab"
)

// kunpengVM is the lab's VM kind the suite runs on.
const kunpengVM = "openeuler22-arm64"

func skipUnlessKunpeng(t *testing.T) {
	t.Helper()
	skipUnlessE2E(t)
	if os.Getenv("KPREP_KUNPENG") != "1" {
		t.Skip("set KPREP_KUNPENG=1 (make e2e-kunpeng) for the aarch64 VM suite: its first build takes many minutes")
	}
}

// bootKunpengLab boots lab1 (CentOS 7, x86: the control plane and jump
// host) and lab2, the aarch64 VM, and takes them down when the test ends.
func bootKunpengLab(t *testing.T) *lab.Lab {
	t.Helper()
	skipUnlessKunpeng(t)
	return bootLabWith(t, lab.Options{OS: []string{"centos7"}, Hosts: 1, VMs: []string{kunpengVM}}, 75*time.Minute)
}

// kunpengInventory is inventories/kunpeng-arm64.yaml with the lab's
// addresses: its ssh, hostprep, docker and kubernetes settings as they are,
// except the hosts (lab1 as the control plane, reached as root; the VM as a
// worker, as the inventory's kprep sudoer), the jump host (lab1), the key,
// and the repos and registry (the lab's mirror stands in for Huawei's and
// Aliyun's). edit may change the document further.
func kunpengInventory(t *testing.T, l *lab.Lab, edit func(doc map[string]any)) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "inventories", "kunpeng-arm64.yaml")
	lab1, vm := kunpengHosts(t, l)
	return editInventoryFile(t, src, func(doc map[string]any) {
		ssh := doc["ssh"].(map[string]any)
		ssh["privateKeyFile"] = l.KeyFile()
		ssh["knownHostsFile"] = l.KnownHostsFile()
		ssh["bastion"] = map[string]any{"address": lab1.Address, "port": 22, "user": "root", "privateKeyFile": l.KeyFile()}
		doc["hosts"] = []any{
			map[string]any{"name": lab1.Name, "address": lab1.Address, "roles": []any{"control-plane"},
				"ssh": map[string]any{"user": "root"}},
			map[string]any{"name": vm.Name, "address": vm.Address, "roles": []any{"worker"}},
		}
		docker := doc["docker"].(map[string]any)
		// The lab's mirror serves the Docker CE version its own inventory
		// pins (26.1.5), not the Kunpeng inventory's 26.1.4.
		docker["version"] = readYAML(t, l.InventoryPath())["docker"].(map[string]any)["version"]
		docker["repo"] = l.MirrorURL() + "/docker-ce"
		docker["registryMirrors"] = []any{"http://" + l.RegistryAddr()}
		docker["insecureRegistries"] = []any{l.RegistryAddr()}
		docker["centos7Vault"] = map[string]any{"url": l.MirrorURL() + "/centos-vault"}
		kube := doc["kubernetes"].(map[string]any)
		kube["repo"] = l.MirrorURL() + "/kubernetes-new/core/stable"
		kube["imageRepository"] = l.RegistryAddr() + "/google_containers"
		if edit != nil {
			edit(doc)
		}
	})
}

// kunpengHosts returns lab1 and the VM.
func kunpengHosts(t *testing.T, l *lab.Lab) (lab.Host, lab.Host) {
	t.Helper()
	lab1, err := l.Host("lab1")
	if err != nil {
		t.Fatal(err)
	}
	vm, err := l.Host("lab2")
	if err != nil {
		t.Fatal(err)
	}
	if !vm.VM || vm.Arch != "aarch64" {
		t.Fatalf("lab2 is not the aarch64 VM: %+v", vm)
	}
	return lab1, vm
}

// kprepFacts runs `kprep facts -o json` and returns each host's facts.
func kprepFacts(t *testing.T, l *lab.Lab, inv string) map[string]map[string]any {
	t.Helper()
	cmd := exec.Command(kprepBinary(t), "facts", "-i", inv, "-o", "json", "--no-color")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kprep facts: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	var rep struct {
		Hosts []struct {
			Name  string
			Error string
			Facts map[string]any
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("kprep facts -o json: %v\n%s", err, stdout.String())
	}
	out := map[string]map[string]any{}
	for _, h := range rep.Hosts {
		if h.Error != "" {
			t.Fatalf("kprep facts: %s: %s", h.Name, h.Error)
		}
		out[h.Name] = h.Facts
	}
	return out
}

// TestKunpeng runs the suite on one lab (the VM's boot is minutes):
// hostprep and runtime on the aarch64 kernel, the image check against a
// registry that lacks arm64, then the VM joining lab1's cluster.
func TestKunpeng(t *testing.T) {
	l := bootKunpengLab(t)
	for _, part := range []struct {
		name string
		run  func(*testing.T, *lab.Lab)
	}{
		{"HostprepAndRuntimeOnARealAarch64Kernel", kunpengHostprepAndRuntime},
		{"ImagesWithoutArm64AreNamedBeforeAnyPull", kunpengImagesWithoutArm64},
		{"JoinsTheX86ControlPlane", kunpengJoinsTheX86ControlPlane},
	} {
		if !t.Run(part.name, func(t *testing.T) { part.run(t, l) }) {
			// Each part starts from where the one before left the hosts.
			t.Fatalf("%s failed; the later parts need its hosts", part.name)
		}
	}
}

// kunpengHostprepAndRuntime: on the aarch64 VM, with the Kunpeng
// inventory's settings and nothing set for the architecture, kprep's facts
// say aarch64 and openEuler, hostprep and runtime converge on the VM's own
// kernel (a real swap device swapped off, real modules loaded) and a rerun
// changes nothing; an arm64 image runs.
func kunpengHostprepAndRuntime(t *testing.T, l *lab.Lab) {
	lab1, vm := kunpengHosts(t, l)
	inv := kunpengInventory(t, l, nil)

	facts := kprepFacts(t, l, inv)
	f := facts[vm.Name]
	if f["arch"] != "aarch64" || f["osID"] != "openEuler" || f["osVersion"] != "22.03" || f["pkgManager"] != "dnf" {
		t.Errorf("%s facts: arch %v, os %v %v, package manager %v; want aarch64, openEuler 22.03, dnf", vm.Name, f["arch"], f["osID"], f["osVersion"], f["pkgManager"])
	}
	if facts[lab1.Name]["arch"] != "x86_64" {
		t.Errorf("%s facts: arch %v, want x86_64", lab1.Name, facts[lab1.Name]["arch"])
	}
	if n, _ := f["swaps"].(float64); n != 1 {
		t.Errorf("%s facts: %v active swap areas, want the VM's one", vm.Name, f["swaps"])
	}
	t.Logf("%s facts: %v", vm.Name, f)

	// Before: the VM's own kernel has the swap volume on and neither
	// module loaded (they are loadable, not built in).
	if out := hostSh(t, l, vm.Name, "uname -m; swapon --show=NAME --noheadings; cat /proc/sys/vm/swappiness"); !strings.HasPrefix(out, "aarch64\n/dev/dm-0") {
		t.Fatalf("%s before apply: %q, want aarch64 and the swap volume on", vm.Name, out)
	}
	for _, m := range []string{"br_netfilter", "overlay"} {
		if out, err := hostShErr(l, vm.Name, "grep -w ^"+m+" /proc/modules"); err == nil {
			t.Fatalf("%s: %s is loaded before kprep ran: %s", vm.Name, m, out)
		}
		if out := hostSh(t, l, vm.Name, "modinfo -F filename "+m); !strings.HasSuffix(out, "/"+m+".ko") {
			t.Fatalf("%s: %s is not a loadable module: %s", vm.Name, m, out)
		}
	}

	start := time.Now()
	rep := runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep", "--phase", "runtime")
	t.Logf("apply hostprep+runtime on lab1 and the VM: %s", time.Since(start).Round(time.Second))
	rep.requireNoFailures(t)
	for _, step := range []string{"hostprep/swap", "hostprep/modules", "runtime/packages"} {
		if s := rep.step(t, vm.Name, step); s.Status != "changed" {
			t.Errorf("%s %s: %s, want changed", vm.Name, step, s.Status)
		}
	}

	// The kernel's own state, read from the VM, not from kprep.
	if out := hostSh(t, l, vm.Name, "cat /proc/swaps | wc -l; swapon --show --noheadings | wc -l"); out != "1\n0" {
		t.Errorf("%s: swap still on after apply:\n%s", vm.Name, out)
	}
	if out := hostSh(t, l, vm.Name, "grep -c '^/dev/mapper/openeuler-swap' /etc/fstab || true"); out != "0" {
		t.Errorf("%s: fstab's swap line is still active", vm.Name)
	}
	for _, m := range []string{"br_netfilter", "overlay"} {
		hostSh(t, l, vm.Name, "grep -w ^"+m+" /proc/modules")
	}
	if out := hostSh(t, l, vm.Name, "sysctl -n net.bridge.bridge-nf-call-iptables net.ipv4.ip_forward"); out != "1\n1" {
		t.Errorf("%s sysctls: %q", vm.Name, out)
	}
	if out := hostSh(t, l, vm.Name, "rpm -q --qf '%{ARCH}\n' docker-ce containerd.io | sort -u"); out != "aarch64" {
		t.Errorf("%s: docker-ce and containerd.io arch %q, want aarch64", vm.Name, out)
	}
	if out := hostSh(t, l, vm.Name, "grep -h '^baseurl' /etc/yum.repos.d/docker-ce.repo"); !strings.Contains(out, "/docker-ce/linux/centos/8/aarch64/stable") &&
		!strings.Contains(out, "/docker-ce/linux/centos/8/$basearch/stable") {
		t.Errorf("%s: docker-ce repo %q", vm.Name, out)
	}
	info := readDockerInfo(t, l, vm.Name)
	if info.CgroupDriver != "systemd" {
		t.Errorf("%s: docker cgroup driver %s", vm.Name, info.CgroupDriver)
	}

	// A rerun finds nothing to do.
	start = time.Now()
	again := runKprep(t, l, 0, "apply", "-i", inv, "--phase", "hostprep", "--phase", "runtime")
	t.Logf("rerun: %s", time.Since(start).Round(time.Second))
	again.requireNoFailures(t)
	again.requireUnchanged(t, "hostprep/")
	again.requireUnchanged(t, "runtime/")

	// An arm64 image runs under the VM's dockerd, pulled from the lab
	// registry's multi-platform index of the same tag the x86 hosts pull.
	ref := l.RegistryAddr() + "/lab/hello:1"
	out := hostSh(t, l, vm.Name, fmt.Sprintf("docker run --rm %s sh -c 'echo hello from $(uname -m)'", ref))
	if !strings.Contains(out, "hello from aarch64") {
		t.Errorf("docker run on %s: %q", vm.Name, out)
	}
	if arch := hostSh(t, l, vm.Name, "docker image inspect --format '{{.Architecture}}' "+ref); arch != "arm64" {
		t.Errorf("the image docker ran on %s is %s, want arm64", vm.Name, arch)
	}
}

// kunpengKubeInventory is the Kunpeng inventory for the kube phase in the
// lab: its kubernetes settings, with flannel (the lab's CNI images) in
// place of Calico and the lab's settings for hosts that share the
// machine's kernel and disk (lab1 is an nspawn host; see test/lab's
// README), taken from the lab's own inventory. flannelRegistry "" is the
// lab registry.
func kunpengKubeInventory(t *testing.T, l *lab.Lab, flannelRegistry string) string {
	t.Helper()
	labKube := readYAML(t, l.InventoryPath())["kubernetes"].(map[string]any)
	if flannelRegistry == "" {
		flannelRegistry = l.RegistryAddr()
	}
	return kunpengInventory(t, l, func(doc map[string]any) {
		kube := doc["kubernetes"].(map[string]any)
		for _, k := range []string{"containerd", "kubeProxy", "kubelet"} {
			if v, ok := labKube[k]; ok {
				kube[k] = v
			}
		}
		kube["cni"] = "flannel"
		kube["flannel"] = map[string]any{"imageRegistry": flannelRegistry}
		// Under emulation the VM's kubelet takes minutes to unpack and
		// start each image (the API server proxy took over 5 in a run).
		kube["readyTimeout"] = "40m"
	})
}

// kunpengImagesWithoutArm64: flannel's image taken from a path of the lab
// registry where its index holds linux/amd64 only. A plan of the kube
// phase names that image and the aarch64 host, and only that host; the VM
// fetched manifests only, no layer, and holds no image.
func kunpengImagesWithoutArm64(t *testing.T, l *lab.Lab) {
	lab1, vm := kunpengHosts(t, l)
	reg := l.RegistryAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	amdOnly := pushSinglePlatformFlannel(ctx, t, l, "/amd64only", "amd64")
	inv := kunpengKubeInventory(t, l, reg+"/amd64only")
	before := len(registryGets(t, l, vm))

	start := time.Now()
	plan := runKprep(t, l, 1, "plan", "-i", inv, "--phase", "kube")
	t.Logf("plan of the kube phase: %s", time.Since(start).Round(time.Millisecond))
	s := plan.step(t, vm.Name, "kube/images")
	for _, want := range []string{
		vm.Name + " (aarch64, linux/arm64) cannot pull 1 of the images it needs",
		"- " + amdOnly + " (flannel (CNI)): its index has no linux/arm64 image, only linux/amd64",
	} {
		if s.Status != "failed" || !strings.Contains(s.Error, want) {
			t.Errorf("%s kube/images: %s %q, want it failed with %q", vm.Name, s.Status, s.Error, want)
		}
	}
	if strings.Count(s.Error, "\n- ") != 1 {
		t.Errorf("more than the amd64-only image named:\n%s", s.Error)
	}
	if s := plan.step(t, lab1.Name, "kube/images"); s.Status == "failed" {
		t.Errorf("%s (x86_64) kube/images failed: %s", lab1.Name, s.Error)
	}
	for _, g := range registryGets(t, l, vm)[before:] {
		if strings.Contains(g, "/blobs/") {
			t.Errorf("%s fetched a blob: %s", vm.Name, g)
		}
	}
	if out := hostSh(t, l, vm.Name, "ctr -n k8s.io images ls -q"); out != "" {
		t.Errorf("%s: containerd holds images after a plan: %s", vm.Name, out)
	}
}

// kunpengJoinsTheX86ControlPlane: the whole inventory applied, lab1
// (x86_64) the control plane and the VM a worker: the VM joins, becomes
// Ready as an arm64 node, a pod pinned to it runs the arm64 image and is
// reached from a pod on lab1 across nodes and through a Service; a rerun
// changes nothing.
func kunpengJoinsTheX86ControlPlane(t *testing.T, l *lab.Lab) {
	lab1, vm := kunpengHosts(t, l)
	inv := kunpengKubeInventory(t, l, "")

	start := time.Now()
	rep := runKprep(t, l, 0, "apply", "-i", inv)
	t.Logf("apply of the whole inventory (the kube phase: init on lab1, the VM's join): %s", time.Since(start).Round(time.Second))
	rep.requireNoFailures(t)
	for _, step := range []string{"kube/packages", "kube/join-worker"} {
		if s := rep.step(t, vm.Name, step); s.Status != "changed" {
			t.Errorf("%s %s: %s, want changed", vm.Name, step, s.Status)
		}
	}
	nodesReady(t, l, lab1.Name, lab1.Name, vm.Name)
	if arch := kubectlOn(t, l, lab1.Name, "get node "+vm.Name+" -o jsonpath={.status.nodeInfo.architecture}"); arch != "arm64" {
		t.Errorf("node %s architecture %q, want arm64", vm.Name, arch)
	}
	if out := hostSh(t, l, vm.Name, "rpm -q --qf '%{ARCH}\n' kubeadm kubelet kubectl | sort -u"); out != "aarch64" {
		t.Errorf("%s: the kube packages' arch %q, want aarch64", vm.Name, out)
	}
	checkPodNetworkWithin(t, l, lab1.Name, vm.Name, lab1.Name, "20m")
	// busybox's own uname: the lab's image links only the applets its
	// pods use.
	if out := kubectlOn(t, l, lab1.Name, "exec web -- busybox uname -m"); out != "aarch64" {
		t.Errorf("the pod pinned to %s runs on %q", vm.Name, out)
	}

	start = time.Now()
	again := runKprep(t, l, 0, "apply", "-i", inv)
	t.Logf("rerun: %s", time.Since(start).Round(time.Second))
	again.requireAllUnchanged(t)
}
