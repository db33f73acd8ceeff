package mirror

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// imageTime is the creation time written into the lab's images: a fixed
// time keeps their digests the same from build to build.
var imageTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// layerFile is one entry of an image layer.
type layerFile struct {
	Name string // path inside the image, no leading slash
	Src  string // file on the machine ("" for a folder or a link)
	Link string // symlink target
	Dir  bool
	Mode int64
}

// imageConfig is the part of the image config the lab sets.
type imageConfig struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	Env        []string `json:"Env,omitempty"`
	User       string   `json:"User,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

// imageSpec is an image to make: its registry ref, the names it carries in
// its archive, its config and its one layer.
type imageSpec struct {
	Ref    string
	Tags   []string
	Config imageConfig
	Files  []layerFile
	Note   string // history entry: how it was made
}

// layerTar writes the layer as an uncompressed tar, entries sorted, owned by
// root, with one fixed time, so the same inputs give the same digest.
func layerTar(files []layerFile) ([]byte, error) {
	sorted := append([]layerFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range sorted {
		h := &tar.Header{Name: f.Name, Mode: f.Mode, ModTime: imageTime, Format: tar.FormatPAX}
		var data []byte
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, strings.TrimSuffix(f.Name, "/")+"/"
		case f.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		default:
			var err error
			if data, err = os.ReadFile(f.Src); err != nil {
				return nil, fmt.Errorf("image layer: %w", err)
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// digestOf is the "sha256:..." digest of data.
func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// imageConfigJSON writes the image config (OCI/Docker image spec v1) for
// one layer with the given diff id.
func imageConfigJSON(spec imageSpec, a arch, diffID string) ([]byte, error) {
	cfg := map[string]any{
		"architecture": a.Go,
		"os":           "linux",
		"created":      imageTime.Format(time.RFC3339),
		"config":       spec.Config,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history":      []map[string]string{{"created": imageTime.Format(time.RFC3339), "created_by": spec.Note}},
	}
	return json.Marshal(cfg)
}

// archiveManifest is one entry of a docker-archive's manifest.json.
type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// writeDockerArchive writes spec as a docker-archive tarball (what `docker
// save` writes and `docker load` and `ctr images import` read) at path.
func writeDockerArchive(path string, spec imageSpec, a arch) error {
	layer, err := layerTar(spec.Files)
	if err != nil {
		return err
	}
	diffID := digestOf(layer)
	config, err := imageConfigJSON(spec, a, diffID)
	if err != nil {
		return err
	}
	configName := strings.TrimPrefix(digestOf(config), "sha256:") + ".json"
	layerName := strings.TrimPrefix(diffID, "sha256:") + "/layer.tar"
	manifest, err := json.Marshal([]archiveManifest{{Config: configName, RepoTags: spec.Tags, Layers: []string{layerName}}})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		name string
		data []byte
	}{{configName, config}, {layerName, layer}, {"manifest.json", manifest}}
	if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(diffID, "sha256:") + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: imageTime}); err != nil {
		return err
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.data)), ModTime: imageTime}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return writeFile(path, buf.Bytes(), 0o644)
}

// dockerArchive is a docker-archive read back: its config and layers.
type dockerArchive struct {
	RepoTags []string
	Config   []byte
	Layers   [][]byte // uncompressed layer tars
}

// readDockerArchive reads a one-image docker-archive tarball.
func readDockerArchive(path string) (*dockerArchive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read image archive %s: %w", path, err)
		}
		if h.Typeflag == tar.TypeReg {
			if files[h.Name], err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("read image archive %s: %w", path, err)
			}
		}
	}
	var manifest []archiveManifest
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		return nil, fmt.Errorf("image archive %s: want a manifest.json with one image (%v)", path, err)
	}
	m := manifest[0]
	out := &dockerArchive{RepoTags: m.RepoTags, Config: files[m.Config]}
	if out.Config == nil {
		return nil, fmt.Errorf("image archive %s: no config %s", path, m.Config)
	}
	for _, l := range m.Layers {
		data, ok := files[l]
		if !ok {
			return nil, fmt.Errorf("image archive %s: no layer %s", path, l)
		}
		out.Layers = append(out.Layers, data)
	}
	return out, nil
}

// labImages lists the images the lab makes. registry is the lab
// registry's address; each archive also carries the upstream name the
// image stands in for, so a host can import it and find it under either.
func labImages(busybox, pause, registry string) []imageSpec {
	hello := []layerFile{
		{Name: "bin", Dir: true, Mode: 0o755},
		{Name: "bin/busybox", Src: busybox, Mode: 0o755},
		{Name: "tmp", Dir: true, Mode: 0o1777},
	}
	for _, applet := range []string{"sh", "echo", "sleep", "cat", "ls", "hostname", "wget"} {
		hello = append(hello, layerFile{Name: "bin/" + applet, Link: "busybox", Mode: 0o777})
	}
	helloConfig := imageConfig{
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		// A Cmd, not an Entrypoint, so `docker run hello echo hi` also works.
		Cmd:        []string{"/bin/sh", "-c", "echo 'Hello from the kprep lab registry.'; exec sleep 3600"},
		WorkingDir: "/",
	}
	helloNote := "kprep lab mirror: busybox-static from Debian"
	return []imageSpec{
		{Ref: "library/hello:latest", Tags: []string{"hello:latest", registry + "/library/hello:latest"}, Config: helloConfig, Files: hello, Note: helloNote},
		{Ref: "lab/hello:1", Tags: []string{registry + "/lab/hello:1"}, Config: helloConfig, Files: hello, Note: helloNote},
		pauseImage("3.10", pause, registry),
		// kubeadm 1.34 pulls pause 3.10.1, and kprep sets it as
		// containerd's sandbox image.
		pauseImage("3.10.1", pause, registry),
	}
}

// pauseImage is the lab's pause program under google_containers/pause:tag.
func pauseImage(tag, pause, registry string) imageSpec {
	return imageSpec{Ref: "google_containers/pause:" + tag,
		Tags:   []string{"registry.k8s.io/pause:" + tag, registry + "/google_containers/pause:" + tag},
		Config: imageConfig{Entrypoint: []string{"/pause"}, User: "65535:65535", WorkingDir: "/"},
		Files:  []layerFile{{Name: "pause", Src: pause, Mode: 0o755}},
		Note:   "kprep lab mirror: pause program built with Go"}
}

// buildImages writes each image's docker-archive into the cache.
func buildImages(ctx context.Context, r *runner, cacheDir string, specs []imageSpec, a arch) ([]Image, error) {
	var images []Image
	for _, spec := range specs {
		data, err := json.Marshal(spec)
		if err != nil {
			return nil, err
		}
		// Inputs are files in keyed cache folders, so their paths stand for their content.
		key := recipeKey("image/1", string(data), a.Go)
		name := strings.NewReplacer("/", "_", ":", "_").Replace(spec.Ref) + ".tar"
		dir, err := cached(ctx, filepath.Join(cacheDir, "images"), key, func(ctx context.Context, tmp string) error {
			r.logf("image %s", spec.Ref)
			return writeDockerArchive(filepath.Join(tmp, name), spec, a)
		})
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", spec.Ref, err)
		}
		images = append(images, Image{Ref: spec.Ref, Tags: spec.Tags, Archive: filepath.Join(dir, name)})
	}
	return images, nil
}
