package mirror

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// testImage writes a small image with one file and one link.
func testImage(t *testing.T) (imageSpec, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "busybox")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	specs := labImages(bin, bin, "192.168.77.1:5000")
	archive := filepath.Join(dir, "hello.tar")
	if err := writeDockerArchive(archive, specs[0], arch{Go: "amd64"}); err != nil {
		t.Fatal(err)
	}
	return specs[0], archive
}

func TestDockerArchiveRoundTrip(t *testing.T) {
	spec, archive := testImage(t)
	img, err := readDockerArchive(archive)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(img.RepoTags, ",") != "hello:latest,192.168.77.1:5000/library/hello:latest" {
		t.Errorf("RepoTags = %v", img.RepoTags)
	}
	var cfg struct {
		Architecture string
		OS           string
		Config       imageConfig
		RootFS       struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "amd64" || cfg.OS != "linux" || len(img.Layers) != 1 {
		t.Fatalf("config %+v with %d layers", cfg, len(img.Layers))
	}
	if cfg.RootFS.DiffIDs[0] != digestOf(img.Layers[0]) {
		t.Error("the config's diff id is not the layer's digest: docker load would refuse it")
	}
	if strings.Join(cfg.Config.Cmd, " ") != strings.Join(spec.Config.Cmd, " ") {
		t.Errorf("Cmd = %v", cfg.Config.Cmd)
	}
	names := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(img.Layers[0]))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = h.Linkname
	}
	if _, ok := names["bin/busybox"]; !ok || names["bin/sh"] != "busybox" {
		t.Errorf("layer entries %v: want bin/busybox and bin/sh -> busybox", names)
	}
}

func TestLayersAreReproducible(t *testing.T) {
	_, a := testImage(t)
	_, b := testImage(t)
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Error("the same image written twice differs: its digest would change every build")
	}
}

func TestPauseImageRunsAsNobody(t *testing.T) {
	specs := labImages("/b", "/p", "r:5000")
	pause := specs[2]
	if pause.Ref != "google_containers/pause:3.10" || pause.Config.User != "65535:65535" || pause.Config.Entrypoint[0] != "/pause" {
		t.Errorf("pause image %+v", pause)
	}
	if !contains(pause.Tags, "registry.k8s.io/pause:3.10") {
		t.Errorf("pause tags %v lack registry.k8s.io/pause:3.10, kubeadm's default sandbox image", pause.Tags)
	}
}

// fakeRegistry is the part of the registry v2 API that a push uses, kept
// in memory, strict about digests as the real one is.
type fakeRegistry struct {
	mu        sync.Mutex
	blobs     map[string][]byte
	manifests map[string][]byte
	uploads   int
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := r.URL.Path
	body, _ := io.ReadAll(r.Body)
	switch {
	case strings.Contains(p, "/blobs/uploads/") && r.Method == http.MethodPost:
		f.uploads++
		w.Header().Set("Location", "/v2/upload/session-1?_state=secret")
		w.WriteHeader(http.StatusAccepted)
	case strings.HasPrefix(p, "/v2/upload/") && r.Method == http.MethodPut:
		d := r.URL.Query().Get("digest")
		if d != digestOf(body) || r.URL.Query().Get("_state") != "secret" {
			http.Error(w, "digest or state mismatch", http.StatusBadRequest)
			return
		}
		f.blobs[d] = body
		w.WriteHeader(http.StatusCreated)
	case strings.Contains(p, "/blobs/") && r.Method == http.MethodHead:
		if _, ok := f.blobs[p[strings.LastIndex(p, "/")+1:]]; ok {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	case strings.Contains(p, "/manifests/") && r.Method == http.MethodPut:
		if r.Header.Get("Content-Type") != mediaManifest {
			http.Error(w, "bad media type", http.StatusBadRequest)
			return
		}
		var m manifestV2
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, d := range append(m.Layers, m.Config) {
			if _, ok := f.blobs[d.Digest]; !ok {
				http.Error(w, "blob unknown "+d.Digest, http.StatusBadRequest)
				return
			}
		}
		f.manifests[p] = body
		w.WriteHeader(http.StatusCreated)
	case strings.Contains(p, "/manifests/") && r.Method == http.MethodGet:
		m, ok := f.manifests[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Docker-Content-Digest", digestOf(m))
		w.Write(m)
	default:
		http.Error(w, "unexpected "+r.Method+" "+p, http.StatusBadRequest)
	}
}

func TestPushImagesSpeaksRegistryV2(t *testing.T) {
	_, archive := testImage(t)
	reg := &fakeRegistry{blobs: map[string][]byte{}, manifests: map[string][]byte{}}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	tree := &Tree{Images: []Image{{Ref: "library/hello:latest", Archive: archive}, {Ref: "lab/hello:1", Archive: archive}}}
	if err := PushImages(t.Context(), addr, tree); err != nil {
		t.Fatal(err)
	}
	if reg.uploads != 2 {
		t.Errorf("%d blob uploads, want 2 (layer and config once; the second image reuses them)", reg.uploads)
	}
	c := &registryClient{base: srv.URL, http: srv.Client()}
	m, digest, err := c.getManifest(t.Context(), "lab/hello:1")
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != mediaManifest || len(m.Layers) != 1 || m.Layers[0].MediaType != mediaLayer || !strings.HasPrefix(digest, "sha256:") {
		t.Errorf("manifest %+v digest %q", m, digest)
	}
	if err := PushImages(t.Context(), addr, &Tree{Images: []Image{{Ref: "no-tag", Archive: archive}}}); err == nil {
		t.Error("a ref without a tag was pushed")
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
