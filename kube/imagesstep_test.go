package kube

import (
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/facts"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/steptest"
)

// testRegistry is go-containerregistry's in-memory registry behind a
// handler that counts requests and wants a bearer token for private/
// (as Docker Hub and ghcr.io want one even for anonymous pulls).
type testRegistry struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		if req.URL.Path == "/token" {
			if req.URL.Query().Get("scope") != "repository:private/pause:pull" || req.URL.Query().Get("service") != "test-registry" {
				http.Error(w, "bad scope", http.StatusBadRequest)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"token": "t0ken", "access_token": "t0ken"})
			return
		}
		if strings.HasPrefix(req.URL.Path, "/v2/private/") && req.Method == http.MethodGet && req.Header.Get("Authorization") != "Bearer t0ken" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+req.Host+`/token",service="test-registry",scope="repository:private/pause:pull"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

// log returns the requests since the last call and forgets them.
func (r *testRegistry) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.requests
	r.requests = nil
	return out
}

func (r *testRegistry) addr() string { return strings.TrimPrefix(r.URL, "http://") }

// image is a random image whose config says linux/arch.
func platformImage(t *testing.T, arch string) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func (r *testRegistry) pushIndex(t *testing.T, ref string, arches ...string) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, a := range arches {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: platformImage(t, a),
			Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: a}}})
	}
	tag, err := name.NewTag(r.addr()+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
}

func (r *testRegistry) pushImage(t *testing.T, ref, arch string) {
	t.Helper()
	tag, err := name.NewTag(r.addr()+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, platformImage(t, arch)); err != nil {
		t.Fatal(err)
	}
}

// imagesCluster is a local-mode cluster whose worker w1 needs six images
// from reg: kube-proxy (an index of both arches) and CoreDNS (a single
// amd64 image) from the image repository, the sandbox behind a bearer
// token, flannel's two images from arm/ (an arm64-only index, and one the
// registry lacks), and the API server proxy on a port where nothing listens.
func imagesCluster(t *testing.T, reg, dead string) *inventory.Cluster {
	t.Helper()
	text := `apiVersion: kprep/v1
kind: Cluster
metadata: {name: lab}
hosts:
  - {name: cp1, address: 192.168.77.11, roles: [control-plane]}
  - {name: w1, address: 192.168.77.12, roles: [worker]}
docker:
  insecureRegistries: [` + reg + `]
kubernetes:
  version: "1.34.4"
  imageRepository: ` + reg + `/k8s
  sandboxImage: ` + reg + `/private/pause:3.10.1
  flannel: {imageRegistry: ` + reg + `/arm}
  localEndpoint: {proxyImage: ` + dead + `/library/haproxy:3.2.3-alpine}
`
	c, err := inventory.Parse("lab.yaml", []byte(text), inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runProbe runs the step's probe for host h with this machine's sh, PATH
// first searching dir (for stand-ins of ctr and docker).
func runProbe(t *testing.T, c *inventory.Cluster, h *inventory.Host, dir string, edit func(string) string) string {
	t.Helper()
	script := ImagesStep{}.Probe(h, c)
	if edit != nil {
		script = edit(script)
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	return string(out)
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func needsCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl on this machine")
	}
}

func TestImagesProbeAsksTheRegistryAndDiffNamesWhatIsMissing(t *testing.T) {
	needsCurl(t)
	reg := newTestRegistry(t)
	reg.pushIndex(t, "k8s/kube-proxy:v1.34.4", "amd64", "arm64")
	reg.pushImage(t, "k8s/coredns:v1.12.1", "amd64")
	reg.pushIndex(t, "private/pause:3.10.1", "amd64", "arm64")
	reg.pushIndex(t, "arm/flannel-io/flannel:v0.28.10", "arm64")
	c := imagesCluster(t, reg.addr(), deadAddr(t))
	reg.log()

	state := runProbe(t, c, &c.Hosts[1], t.TempDir(), nil)
	in := provision.Input{Cluster: c, Host: &c.Hosts[1], Facts: steptest.Rocky9, State: state}
	_, err := ImagesStep{}.Diff(in)
	if err == nil {
		t.Fatalf("no error; probe said:\n%s", state)
	}
	msg := err.Error()
	for _, want := range []string{
		"w1 (x86_64, linux/amd64) cannot pull 3 of the images it needs",
		"- " + reg.addr() + "/arm/flannel-io/flannel:v0.28.10 (flannel (CNI)): its index has no linux/amd64 image, only linux/arm64",
		"- " + reg.addr() + "/arm/flannel-io/flannel-cni-plugin:v1.9.1-flannel3 (flannel (CNI)): https://" + reg.addr() + " did not answer",
		"http://" + reg.addr() + " has no v1.9.1-flannel3 of arm/flannel-io/flannel-cni-plugin (HTTP 404)",
		"/library/haproxy:3.2.3-alpine (the API server proxy (local mode)): https://127.0.0.1:",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q:\n%s", want, msg)
		}
	}
	for _, fine := range []string{"kube-proxy", "coredns", "pause"} {
		if strings.Contains(msg, fine) {
			t.Errorf("%s is pullable, yet named:\n%s", fine, msg)
		}
	}
	if w := (ImagesStep{}).Warnings(in); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}

	// One manifest GET per image (the sandbox's again with its token),
	// CoreDNS's config, and no layer: nothing was pulled.
	var manifests, blobs, tokens int
	requests := reg.log()
	for _, r := range requests {
		switch {
		case strings.Contains(r, "/manifests/"):
			manifests++
		case strings.Contains(r, "/blobs/"):
			blobs++
		case r == "GET /token":
			tokens++
		}
	}
	if manifests != 6 || blobs != 1 || tokens != 1 || len(requests) != 8 {
		t.Errorf("%d manifest, %d blob, %d token requests, want 6, 1, 1:\n%s", manifests, blobs, tokens, strings.Join(requests, "\n"))
	}

	// On an arm64 host the arm64-only index is fine and the amd64-only
	// single image is not.
	in.Facts = steptest.OpenEuler2203
	_, err = ImagesStep{}.Diff(in)
	if err == nil || !strings.Contains(err.Error(), "/k8s/coredns:v1.12.1 (CoreDNS (Deployment)): it is a single image for linux/amd64, not linux/arm64") ||
		strings.Contains(err.Error(), "flannel:v0.28.10") {
		t.Errorf("arm64: %v", err)
	}
}

func TestImagesProbeSkipsWhatTheRuntimeHolds(t *testing.T) {
	needsCurl(t)
	reg := newTestRegistry(t)
	c := imagesCluster(t, reg.addr(), deadAddr(t))
	c.Kubernetes.LocalEndpoint.ProxyImage = reg.addr() + "/library/haproxy:3.2.3-alpine"
	bin := t.TempDir()
	// containerd holds every image complete, as `ctr images check` prints
	// it, but one that is incomplete (not this platform's content).
	var lines []string
	checks, _ := imageChecks(&c.Hosts[1], c)
	for i, ic := range checks {
		status := "complete (3/3)"
		if i == 1 {
			status = "incomplete (1/3)"
		}
		lines = append(lines, ic.Ref.String()+" application/vnd.oci.image.index.v1+json sha256:0123 "+status+" 1.0 MiB/1.0 MiB true")
	}
	ctr := "#!/bin/sh\necho 'REF TYPE DIGEST STATUS SIZE UNPACKED'\ncat <<'EOF'\n" + strings.Join(lines, "\n") + "\nEOF\n"
	if err := os.WriteFile(filepath.Join(bin, "ctr"), []byte(ctr), 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	reg.log()
	state := runProbe(t, c, &c.Hosts[1], bin, func(s string) string {
		return strings.Replace(s, "sock=/run/containerd/containerd.sock", "sock="+sock, 1)
	})
	// (The HTTPS attempt before plain HTTP never reaches the handler.)
	if requests := reg.log(); len(requests) != 1 || !strings.Contains(requests[0], checks[1].Ref.Repository+"/manifests/") {
		t.Errorf("requests for images containerd holds: %q", requests)
	}
	_, err = ImagesStep{}.Diff(provision.Input{Cluster: c, Host: &c.Hosts[1], Facts: steptest.Rocky9, State: state})
	if err == nil || strings.Count(err.Error(), "\n- ") != 1 || !strings.Contains(err.Error(), checks[1].Image) {
		t.Errorf("only the incomplete image is asked about and missing: %v", err)
	}
}

func TestImagesProbeWithWget(t *testing.T) {
	if _, err := exec.LookPath("wget"); err != nil {
		t.Skip("no wget on this machine")
	}
	reg := newTestRegistry(t)
	reg.pushIndex(t, "arm/flannel-io/flannel:v0.28.10", "arm64")
	c := imagesCluster(t, reg.addr(), deadAddr(t))
	// curl hidden: a PATH of links to every other program.
	bin := t.TempDir()
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != "curl" {
				_ = os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(bin, e.Name()))
			}
		}
	}
	cmd := exec.Command("/bin/sh", "-c", ImagesStep{}.Probe(&c.Hosts[1], c))
	cmd.Env = append(os.Environ(), "PATH="+bin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "tool=wget") {
		t.Fatalf("not wget:\n%s", out)
	}
	_, err = ImagesStep{}.Diff(provision.Input{Cluster: c, Host: &c.Hosts[1], Facts: steptest.Rocky9, State: string(out)})
	if err == nil || !strings.Contains(err.Error(), "flannel:v0.28.10 (flannel (CNI)): its index has no linux/amd64 image, only linux/arm64") ||
		!strings.Contains(err.Error(), "(HTTP 404)") {
		t.Errorf("with wget: %v", err)
	}
}

func TestImagesDiffOfRecordedAnswers(t *testing.T) {
	c := imagesCluster(t, "192.168.82.1:5000", "192.168.82.1:5999")
	c.Kubernetes.LocalEndpoint.ProxyImage = "haproxy:3.2.3-alpine"
	c.Docker.RegistryMirrors = []string{"http://192.168.82.1:5000"}
	host := &c.Hosts[1]
	checks, _ := imageChecks(host, c)
	last := len(checks) - 1
	if checks[last].Ref.String() != "docker.io/library/haproxy:3.2.3-alpine" || len(checks[last].Endpoints) != 2 {
		t.Fatalf("the proxy image: %+v", checks[last])
	}
	present := ""
	for i := range checks[:last] {
		present += "img." + strconv.Itoa(i) + ".present=1\n"
	}
	diff := func(f facts.Facts, answers string) ([]string, error) {
		in := provision.Input{Cluster: c, Host: host, Facts: f, State: "tool=curl\n" + present + answers}
		_, err := ImagesStep{}.Diff(in)
		return ImagesStep{}.Warnings(in), err
	}
	n := "img." + strconv.Itoa(last)
	for _, tc := range []struct {
		name, answers, err, warning string
	}{
		{"the mirror has it for amd64", n + ".0=200 application/vnd.oci.image.index.v1+json\n" + steptest.FileRecord(n+".0.manifest", `{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"platform":{"os":"linux","architecture":"amd64"}}]}`), "", ""},
		{"the mirror lacks it, Docker Hub is unreachable", n + ".0=404 application/json\n" + n + ".1=000 \n" + n + ".1.err=curl: (6) Could not resolve host: registry-1.docker.io \n",
			"http://192.168.82.1:5000 has no 3.2.3-alpine of library/haproxy (HTTP 404); https://registry-1.docker.io did not answer: curl: (6) Could not resolve host: registry-1.docker.io", ""},
		{"Docker Hub wants credentials", n + ".0=404 \n" + n + ".1=401 application/json\n", "", "not checked: http://192.168.82.1:5000 has no 3.2.3-alpine of library/haproxy (HTTP 404); https://registry-1.docker.io wants credentials (HTTP 401)"},
		{"the registry is down since an earlier image", n + ".0=skip\n" + n + ".1=skip\n", "http://192.168.82.1:5000 did not answer (see above)", ""},
		{"a single image whose config was not served", n + ".0=200 application/vnd.oci.image.manifest.v1+json\n" + n + ".0.config=404\n" + steptest.FileRecord(n+".0.manifest", ociManifestJSON), "config (sha256:c1) the registry did not serve (HTTP 404)", ""},
		{"no curl, no wget", n + ".0=notool\n", "", "not checked: the host has neither curl nor wget"},
		{"the probe was cut short", "", "the probe printed nothing about it", ""},
	} {
		warnings, err := diff(steptest.Rocky9, tc.answers)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
		if got := strings.Join(warnings, "\n"); (tc.warning == "") != (got == "") || !strings.Contains(got, tc.warning) {
			t.Errorf("%s: warnings %q, want %q", tc.name, got, tc.warning)
		}
	}
}

const ociManifestJSON = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c1","size":2},"layers":[]}`
