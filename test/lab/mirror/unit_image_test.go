package mirror

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	gotypes "go/types"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gopkg.in/yaml.v3"
)

// fakeInputs are image inputs whose programs are small files, for every
// build the catalogue names.
func fakeInputs(t *testing.T, a arch) imageInputs {
	t.Helper()
	dir := t.TempDir()
	write := func(p, s string) string {
		t.Helper()
		if err := writeFile(filepath.Join(dir, p), []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, p)
	}
	in := imageInputs{arch: a, builds: map[string]builtPrograms{},
		pause: write("pause", "pause program"), busybox: write("busybox", "busybox program")}
	for _, b := range allBuilds() {
		for _, p := range b.Programs {
			write(filepath.Join(b.Name, p), b.Name+" "+p+" for "+a.Go)
		}
		in.builds[b.Name] = builtPrograms{Dir: filepath.Join(dir, b.Name)}
	}
	write("iptables/usr/sbin/xtables-nft-multi", "iptables")
	write("iptables/usr/share/doc/iptables/copyright", "left out")
	if err := os.Symlink("xtables-nft-multi", filepath.Join(dir, "iptables/usr/sbin/iptables-nft")); err != nil {
		t.Fatal(err)
	}
	var err error
	if in.iptables, err = iptablesLayer(&debianPayload{Root: filepath.Join(dir, "iptables")}); err != nil {
		t.Fatal(err)
	}
	in.haproxy = layerSpec{Note: "haproxy", Files: []layerFile{{Name: "usr/local/sbin/haproxy", Src: write("haproxy", "haproxy program"), Mode: 0o755}}}
	return in
}

// tarEntries lists a layer tar's entries: name -> link target (or "").
func tarEntries(t *testing.T, data []byte) map[string]string {
	t.Helper()
	names := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = h.Linkname
	}
}

func TestLayerTarHasParentsAndIsReproducible(t *testing.T) {
	in := fakeInputs(t, arch{Go: "amd64"})
	files := []layerFile{{Name: "usr/local/bin/etcd", Src: in.builds["etcd-3.6.5"].path("etcd"), Mode: 0o755}, {Name: "bin/sh", Link: "busybox", Mode: 0o777}}
	a, err := layerTar(files)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := layerTar(files)
	if !bytes.Equal(a, b) {
		t.Error("the same layer written twice differs: its digest would change every build")
	}
	ga, _ := gzipBytes(a, gzip.DefaultCompression)
	gb, _ := gzipBytes(b, gzip.DefaultCompression)
	if !bytes.Equal(ga, gb) {
		t.Error("gzip of the same layer differs")
	}
	names := tarEntries(t, a)
	for _, want := range []string{"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/etcd", "bin/"} {
		if _, ok := names[want]; !ok {
			t.Errorf("layer lacks %s: %v", want, names)
		}
	}
	if names["bin/sh"] != "busybox" {
		t.Errorf("bin/sh -> %q", names["bin/sh"])
	}
}

func TestIptablesLayerHasTheAlternativesAndNoDocs(t *testing.T) {
	in := fakeInputs(t, arch{Go: "amd64"})
	data, err := layerTar(in.iptables.Files)
	if err != nil {
		t.Fatal(err)
	}
	names := tarEntries(t, data)
	if names["usr/sbin/iptables"] != "iptables-nft" || names["usr/sbin/iptables-nft"] != "xtables-nft-multi" {
		t.Errorf("iptables links: %v", names)
	}
	if _, ok := names["usr/share/doc/iptables/copyright"]; ok {
		t.Error("the docs are in the layer")
	}
	if _, ok := names["run/"]; !ok {
		t.Error("no /run for /run/xtables.lock")
	}
}

// catalogue returns the images as refs (repo:tag) -> spec.
func catalogue(t *testing.T) map[string]imageSpec {
	out := map[string]imageSpec{}
	for _, s := range labImages(fakeInputs(t, arch{Go: "amd64"})) {
		for _, tag := range s.Tags {
			out[s.Repo+":"+tag] = s
		}
	}
	return out
}

func TestCatalogueHasWhatKubeadmAndFlannelName(t *testing.T) {
	images := catalogue(t)
	// kubeadm v1.34.4 `config images list --image-repository R`, R = REG/google_containers.
	for _, ref := range []string{
		"google_containers/kube-apiserver:v1.34.4", "google_containers/kube-controller-manager:v1.34.4",
		"google_containers/kube-scheduler:v1.34.4", "google_containers/kube-proxy:v1.34.4",
		"google_containers/coredns:v1.12.1", "google_containers/pause:3.10.1", "google_containers/etcd:3.6.5-0",
		// kube-flannel.yml v0.28.10, below the lab registry.
		"flannel-io/flannel:v0.28.10", "flannel-io/flannel-cni-plugin:v1.9.1-flannel3",
		"library/hello:latest", "lab/hello:1", "google_containers/pause:3.10",
	} {
		if _, ok := images[ref]; !ok {
			t.Errorf("the catalogue lacks %s", ref)
		}
	}
	if p := images["google_containers/pause:3.10.1"]; p.Config.User != "65535:65535" || p.Config.Entrypoint[0] != "/pause" {
		t.Errorf("pause: %+v", p.Config)
	}
	if c := images["google_containers/coredns:v1.12.1"]; strings.Join(c.Config.Entrypoint, " ") != "/coredns" {
		t.Errorf("coredns entrypoint %v: kubeadm's Deployment passes only args", c.Config.Entrypoint)
	}
	// Programs where kubeadm's manifests and kube-flannel.yml call them.
	for ref, path := range map[string]string{
		"google_containers/kube-apiserver:v1.34.4":      "usr/local/bin/kube-apiserver",
		"google_containers/kube-proxy:v1.34.4":          "usr/local/bin/kube-proxy",
		"google_containers/etcd:3.6.5-0":                "usr/local/bin/etcdctl",
		"flannel-io/flannel:v0.28.10":                   "opt/bin/install-conf",
		"flannel-io/flannel-cni-plugin:v1.9.1-flannel3": "flannel",
	} {
		var names map[string]string
		for _, l := range images[ref].Layers {
			data, err := layerTar(l.Files)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tarEntries(t, data) {
				if names == nil {
					names = map[string]string{}
				}
				names[k] = v
			}
		}
		if _, ok := names[path]; !ok {
			t.Errorf("%s lacks %s", ref, path)
		}
		if ref == "flannel-io/flannel-cni-plugin:v1.9.1-flannel3" && names["bin/cp"] != "busybox" {
			t.Errorf("%s has no cp for kube-flannel.yml's init container", ref)
		}
		if strings.Contains(ref, "kube-proxy") || strings.Contains(ref, "flannel:") {
			if names["usr/sbin/iptables"] == "" {
				t.Errorf("%s has no iptables", ref)
			}
		}
	}
}

func TestOCIIndexHasOneImagePerPlatform(t *testing.T) {
	amd, arm := arch{Go: "amd64", Deb: "amd64"}, arch{Go: "arm64", Deb: "arm64"}
	pick := func(a arch) imageSpec {
		for _, s := range labImages(fakeInputs(t, a)) {
			if s.Repo == "google_containers/kube-proxy" {
				return s
			}
		}
		t.Fatal("no kube-proxy in the catalogue")
		return imageSpec{}
	}
	specs := []imageSpec{pick(amd), pick(arm)}
	idx, err := ociIndex(specs, []arch{amd, arm})
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIImageIndex || len(m.Manifests) != 2 {
		t.Fatalf("index %s with %d manifests", m.MediaType, len(m.Manifests))
	}
	for n, want := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		d := m.Manifests[n]
		if d.MediaType != types.OCIManifestSchema1 || d.Platform == nil || !d.Platform.Equals(want) {
			t.Errorf("manifest %d: %s %+v, want %+v", n, d.MediaType, d.Platform, want)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := img.Layers()
		if cf.Architecture != want.Architecture || cf.OS != "linux" || len(layers) != 3 || len(cf.History) != 3 ||
			cf.Config.Entrypoint[0] != "/usr/local/bin/kube-proxy" || !cf.Created.Equal(imageTime) {
			t.Errorf("%s image: config %+v, %d layers", want.Architecture, cf, len(layers))
		}
		for i, l := range layers {
			mt, _ := l.MediaType()
			diff, _ := l.DiffID()
			if mt != types.OCILayer || cf.RootFS.DiffIDs[i] != diff {
				t.Errorf("layer %d: %s, diff id %s, config says %s", i, mt, diff, cf.RootFS.DiffIDs[i])
			}
		}
	}
	again, _ := ociIndex(specs, []arch{amd, arm})
	d1, _ := idx.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("the same index made twice has digests %s and %s", d1, d2)
	}
}

func TestBuildPushAndHeadAgainstARegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	a := arch{Go: "amd64", Deb: "amd64"}
	var specs []imageSpec
	for _, s := range labImages(fakeInputs(t, a)) {
		if s.Repo == "google_containers/pause" || strings.HasPrefix(s.Repo, "flannel-io/") {
			specs = append(specs, s)
		}
	}
	cache := t.TempDir()
	images, err := buildOCIImages(t.Context(), &runner{}, cache, map[arch][]imageSpec{a: specs})
	if err != nil {
		t.Fatal(err)
	}
	tree := &Tree{Images: images}
	for i := 0; i < 2; i++ { // a second push finds every blob
		if err := PushImages(t.Context(), addr, tree); err != nil {
			t.Fatalf("push %d: %v", i+1, err)
		}
	}
	for _, img := range images {
		for _, ref := range img.Refs(addr) {
			m, digest, err := RemoteIndex(t.Context(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if digest.String() != img.Digest || len(m.Manifests) != 1 || m.Manifests[0].Platform.Architecture != "amd64" {
				t.Errorf("%s: digest %s (built %s), manifests %+v", ref, digest, img.Digest, m.Manifests)
			}
		}
	}
	if !slices.Equal(images[0].Tags, []string{"3.10", "3.10.1"}) {
		t.Errorf("pause tags %v", images[0].Tags)
	}
	if _, _, err := RemoteIndex(t.Context(), addr+"/google_containers/pause:3.9"); err == nil {
		t.Error("RemoteIndex found a tag nobody pushed")
	}
	// A plain image, not an index, is not what the lab serves.
	idx, _ := images[0].Index()
	m, _ := idx.IndexManifest()
	plain, _ := idx.Image(m.Manifests[0].Digest)
	ref, _ := name.NewTag(addr+"/lab/plain:1", name.Insecure)
	if err := remote.Write(ref, plain); err != nil {
		t.Fatal(err)
	}
	if _, _, err := RemoteIndex(t.Context(), ref.String()); err == nil || !strings.Contains(err.Error(), "want an OCI image index") {
		t.Errorf("RemoteIndex of a plain image: %v", err)
	}
	// The cache has the layouts; a second build finds them.
	again, err := buildOCIImages(t.Context(), &runner{}, cache, map[arch][]imageSpec{a: specs})
	if err != nil || again[1].Layout != images[1].Layout || again[1].Digest != images[1].Digest {
		t.Errorf("second build: %+v, %v", again, err)
	}
}

func TestTrimImports(t *testing.T) {
	src := []byte("package main\n\nimport (\n\t\"fmt\"\n\t_ \"x.io/b/tencentvpc\"\n\t_ \"x.io/b/udp\"\n\t_ \"x.io/b/vxlan\"\n)\n")
	got, err := trimImports(src, []string{"x.io/b/tencentvpc", "x.io/b/udp"})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "package main\n\nimport (\n\t\"fmt\"\n\t_ \"x.io/b/vxlan\"\n)\n" {
		t.Errorf("trimmed:\n%s", got)
	}
	if _, err := trimImports(src, []string{"x.io/b/gone"}); err == nil {
		t.Error("an import that is not there was trimmed silently")
	}
}

func TestParseClosure(t *testing.T) {
	out := "iptables\n  Depends: libc6\n  Depends: <libxtables12>\n    libxtables12\nlibc6\n  PreDepends: libgcc-s1\n<debconf-2.0>\nlibgcc-s1:amd64\nlibc6\n"
	if got, _ := parseClosure(out, "amd64"); !slices.Equal(got, []string{"iptables", "libc6", "libgcc-s1"}) {
		t.Errorf("closure %v", got)
	}
	// For a foreign architecture apt qualifies the packages built for it
	// and names the Architecture: all ones bare; `apt-get download
	// netbase:arm64` finds no candidate.
	foreign := "iptables:arm64\n  Depends: libc6:arm64\n  Depends: netbase\nlibc6:arm64\nnetbase\n"
	names, archAll := parseClosure(foreign, "arm64")
	if !slices.Equal(names, []string{"iptables", "libc6", "netbase"}) || len(archAll) != 1 || !archAll["netbase"] {
		t.Errorf("closure %v, architecture all %v", names, archAll)
	}
}

func TestELFChecks(t *testing.T) {
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	need, err := glibcNeeded(sh)
	if err != nil || need[0] != 2 || need[1] < 2 {
		t.Errorf("/bin/sh needs glibc %v (%v)", need, err)
	}
	for s, want := range map[string][2]int{"GLIBC_2.34": {2, 34}, "2.36": {2, 36}, "GLIBC_2.2.5": {2, 2}} {
		if got, ok := parseGlibc(s); !ok || got != want {
			t.Errorf("parseGlibc(%s) = %v %v", s, got, ok)
		}
	}
	if _, ok := parseGlibc("GCC_3.0"); ok {
		t.Error("GCC_3.0 read as a glibc version")
	}
	a := arch{Go: "amd64"}
	layer := layerSpec{Note: "test", Files: []layerFile{{Name: "bin/sh", Src: sh, Mode: 0o755}}}
	if err := checkLayerLibs(layer, a); err == nil || !strings.Contains(err.Error(), "bin/sh needs libc.so.6") {
		t.Errorf("a layer without libc: %v", err)
	}
	layer.Files = append(layer.Files, layerFile{Name: "lib/x86_64-linux-gnu/libc.so.6", Link: "libc-2.36.so"})
	if err := checkLayerLibs(layer, a); err != nil {
		t.Errorf("a layer with libc: %v", err)
	}
	if err := checkLayerLibs(layer, arch{Go: "arm64"}); err == nil {
		t.Error("an amd64 program passed in an arm64 layer")
	}
}
func TestHandlerServesAndLogsReadOnly(t *testing.T) {
	root := t.TempDir()
	if err := writeFile(filepath.Join(root, "docker-ce/linux/centos/gpg"), []byte("KEY"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	srv := httptest.NewServer(Handler(root, &log))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/docker-ce/linux/centos/gpg")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "KEY" {
		t.Errorf("body %q", body)
	}
	resp, err = http.Post(srv.URL+"/x", "text/plain", strings.NewReader("y"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST answered %s, want 405", resp.Status)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], " GET /docker-ce/linux/centos/gpg 200 3") || !strings.Contains(lines[1], " POST /x 405 ") {
		t.Errorf("log:\n%s", log.String())
	}
}

func TestRegistryConfigIsValidYAML(t *testing.T) {
	var cfg struct {
		Version string
		Storage struct {
			Filesystem struct{ RootDirectory string }
		}
		HTTP struct{ Addr string }
	}
	if err := yaml.Unmarshal(RegistryConfig("/var/lib/lab registry", "192.168.77.1:5000"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Version != "0.1" || cfg.Storage.Filesystem.RootDirectory != "/var/lib/lab registry" || cfg.HTTP.Addr != "192.168.77.1:5000" {
		t.Errorf("config %+v", cfg)
	}
}

func TestPauseSourceTypeChecks(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "pause.go", pauseSource, 0)
	if err != nil {
		t.Fatal(err)
	}
	conf := gotypes.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	if _, err := conf.Check("main", fset, []*ast.File{f}, nil); err != nil {
		t.Errorf("the pause program does not compile: %v", err)
	}
}

func TestPushPauseForOneArchitectureOnly(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the pause program")
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/arm64only/pause:1"
	digest, err := PushPauseFor(t.Context(), Options{CacheDir: t.TempDir()}, ref, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	m, got, err := RemoteIndex(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != digest || len(m.Manifests) != 1 || m.Manifests[0].Platform.String() != "linux/arm64/v8" {
		t.Errorf("digest %s (pushed %s), manifests %+v", got, digest, m.Manifests)
	}
	if _, err := PushPauseFor(t.Context(), Options{CacheDir: t.TempDir()}, ref, "s390x"); err == nil {
		t.Error("an architecture the mirror does not build was pushed")
	}
}
