package e2e

// The kube phase's image check (kube/images) on a lab host: a registry
// that lacks the host's platform for one image stops the kube phase on
// that host in plan and apply, naming the image and the host, before
// anything is installed or pulled; an unreachable registry is an error
// too; a host whose runtime holds every image asks the registry nothing.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"

	"github.com/kprep/kprep/kube/cni"
	"github.com/kprep/kprep/kube/images"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/test/lab/lab"
	"github.com/kprep/kprep/test/lab/mirror"
)

// registryGets returns the GET requests the lab registry logged from the
// host (an access log line per request: `ADDR - - [time] "GET /v2/...
// HTTP/1.1" status ...`) up to now. The registry logs a request after
// answering it, so the host first asks for a marker of its own and the
// log is read once the marker is in it: every request made before is
// logged by then.
func registryGets(t *testing.T, l *lab.Lab, h lab.Host) []string {
	t.Helper()
	marker := fmt.Sprintf("/v2/kprep-e2e-marker/manifests/%d", time.Now().UnixNano())
	hostSh(t, l, h.Name, "curl -s -o /dev/null http://"+l.RegistryAddr()+marker)
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(h.Address) + ` - - \[[^]]*\] "GET (/v2/\S*) HTTP`)
	deadline := time.Now().Add(time.Minute)
	for {
		data, err := os.ReadFile(filepath.Join(l.StateDir(), "registry.log"))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, line := range strings.Split(string(data), "\n") {
			if m := re.FindStringSubmatch(line); m != nil {
				if m[1] == marker {
					return out
				}
				if !strings.HasPrefix(m[1], "/v2/kprep-e2e-marker/") {
					out = append(out, m[1])
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry did not log %s within a minute", marker)
		}
		time.Sleep(100 * time.Millisecond) // polls for the marker's line
	}
}

// pushSinglePlatformFlannel pushes, under the lab registry's path prefix, a
// flannel image whose index holds arch only, beside a copy of the real CNI
// plugin image, and returns the flannel reference: a registry where one
// image the kube phase needs lacks a host's platform.
func pushSinglePlatformFlannel(ctx context.Context, t *testing.T, l *lab.Lab, prefix, arch string) string {
	t.Helper()
	reg := l.RegistryAddr()
	ref := reg + prefix + "/flannel-io/flannel:" + cni.FlannelVersion
	if _, err := mirror.PushPauseFor(ctx, mirror.Options{CacheDir: lab.CacheDirFromEnv()}, ref, arch); err != nil {
		t.Fatal(err)
	}
	plugin := "/flannel-io/flannel-cni-plugin:" + cni.FlannelCNIPluginVersion
	if err := crane.Copy(reg+plugin, reg+prefix+plugin, crane.Insecure, crane.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestKubeImagesPlatformCheck points flannel's image registry at a path of
// the lab registry where flannel's image is an arm64-only index (the lab's
// hosts are x86_64), then plans and applies the kube phase on one host.
func TestKubeImagesPlatformCheck(t *testing.T) {
	l := bootLab(t, "ubuntu22")
	h := l.Hosts()[0]
	reg := l.RegistryAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	armOnly := pushSinglePlatformFlannel(ctx, t, l, "/arm64only", "arm64")
	flannelFrom := func(registry string) string {
		return kubeInventory(t, l, []string{h.Name}, []string{h.Name}, func(doc map[string]any) {
			doc["kubernetes"].(map[string]any)["flannel"] = map[string]any{"imageRegistry": registry}
		})
	}
	armInv, goodInv := flannelFrom(reg+"/arm64only"), flannelFrom(reg)

	start := time.Now()
	runKprep(t, l, 0, "apply", "-i", armInv, "--phase", "hostprep", "--phase", "runtime").requireNoFailures(t)
	t.Logf("hostprep and runtime: %s", time.Since(start).Round(time.Millisecond))
	before := len(registryGets(t, l, h))

	wantErr := []string{
		h.Name + " (x86_64, linux/amd64) cannot pull 1 of the images it needs; the kube phase stops here on this host, before it installs or pulls anything",
		"- " + armOnly + " (flannel (CNI)): its index has no linux/amd64 image, only linux/arm64/v8",
	}
	checkRefused := func(t *testing.T, rep kprepReport) {
		t.Helper()
		s := rep.step(t, h.Name, "kube/images")
		for _, want := range wantErr {
			if s.Status != "failed" || !strings.Contains(s.Error, want) {
				t.Errorf("kube/images: %s %q, want it failed with %q", s.Status, s.Error, want)
			}
		}
		if strings.Count(s.Error, "\n- ") != 1 {
			t.Errorf("more than the arm64-only image named:\n%s", s.Error)
		}
		for _, name := range []string{"kube/repo", "kube/packages", "kube/init", "kube/cni"} {
			if st := rep.step(t, h.Name, name); st.Status != "skipped" {
				t.Errorf("%s: %s, want skipped after kube/images", name, st.Status)
			}
		}
	}

	start = time.Now()
	plan := runKprep(t, l, 1, "plan", "-i", armInv, "--phase", "kube")
	t.Logf("plan of the kube phase, no image held: %s", time.Since(start).Round(time.Millisecond))
	checkRefused(t, plan)
	// One manifest GET per image the control plane needs (9; the pause
	// image's is also the sandbox's), no blob: every lab image is an
	// index, so no config was needed, and no layer was fetched.
	gets := registryGets(t, l, h)[before:]
	c := loadInventory(t, l, armInv)
	needs, _ := images.Needed(c, &c.Hosts[0])
	if len(gets) != len(needs) || len(needs) != 9 {
		t.Errorf("%d registry GETs for %d images:\n%s", len(gets), len(needs), strings.Join(gets, "\n"))
	}
	for _, n := range needs {
		r, _ := images.ParseRef(n.Image)
		if c := countOf(gets, "/v2/"+r.Repository+"/manifests/"+r.Tag); c != 1 {
			t.Errorf("%s asked %d times", n.Image, c)
		}
	}

	start = time.Now()
	apply := runKprep(t, l, 1, "apply", "-i", armInv, "--phase", "kube")
	t.Logf("apply of the kube phase, refused: %s", time.Since(start).Round(time.Millisecond))
	checkRefused(t, apply)
	if out, err := hostShErr(l, h.Name, "command -v kubeadm kubelet"); err == nil {
		t.Errorf("the kube packages were installed: %s", out)
	}
	if out := hostSh(t, l, h.Name, "ctr -n k8s.io images ls -q"); out != "" {
		t.Errorf("containerd holds images: %s", out)
	}
	for _, g := range registryGets(t, l, h)[before:] {
		if strings.Contains(g, "/blobs/") {
			t.Errorf("a blob was fetched: %s", g)
		}
	}

	// An unreachable registry (not an insecure one: HTTPS only): the same
	// step stops the phase and says so, asking it once.
	dead := l.BridgeAddr() + ":5999"
	s := runKprep(t, l, 1, "plan", "-i", flannelFrom(dead), "--phase", "kube").step(t, h.Name, "kube/images")
	if s.Status != "failed" || !strings.Contains(s.Error, "cannot pull 2 of the images") ||
		!strings.Contains(s.Error, "- "+dead+"/flannel-io/flannel:"+cni.FlannelVersion+" (flannel (CNI)): https://"+dead+" did not answer: curl: (7) Failed to connect") ||
		!strings.Contains(s.Error, "- "+dead+"/flannel-io/flannel-cni-plugin:"+cni.FlannelCNIPluginVersion+" (flannel (CNI)): https://"+dead+" did not answer (see above)") {
		t.Errorf("unreachable registry: %s %q", s.Status, s.Error)
	}

	// A host whose containerd holds every image it needs (pulled here as
	// the kubelet would) asks the registry nothing.
	c = loadInventory(t, l, goodInv)
	needs, _ = images.Needed(c, &c.Hosts[0])
	var pulls []string
	for _, n := range needs {
		pulls = append(pulls, "ctr -n k8s.io images pull --plain-http "+n.Image+" >/dev/null")
	}
	start = time.Now()
	hostSh(t, l, h.Name, strings.Join(pulls, " && "))
	t.Logf("%d images pulled into containerd: %s", len(needs), time.Since(start).Round(time.Millisecond))
	before = len(registryGets(t, l, h))
	start = time.Now()
	plan = runKprep(t, l, 2, "plan", "-i", goodInv, "--phase", "kube")
	t.Logf("plan of the kube phase, every image held: %s", time.Since(start).Round(time.Millisecond))
	if s := plan.step(t, h.Name, "kube/images"); s.Status != "unchanged" {
		t.Errorf("kube/images with every image held: %s %q", s.Status, s.Error)
	}
	if gets := registryGets(t, l, h)[before:]; len(gets) != 0 {
		t.Errorf("the plan asked the registry although containerd holds every image:\n%s", strings.Join(gets, "\n"))
	}
}

// loadInventory reads an inventory file as kprep does.
func loadInventory(tb testing.TB, l *lab.Lab, path string) *inventory.Cluster {
	tb.Helper()
	c, err := inventory.LoadWith(path, inventory.Options{LookupEnv: labEnv(l)})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func countOf(list []string, s string) int {
	n := 0
	for _, e := range list {
		if e == s {
			n++
		}
	}
	return n
}
