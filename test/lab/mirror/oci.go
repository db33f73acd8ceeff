package mirror

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// This file makes the lab's images as OCI image indexes, one image
// manifest per platform, each kept in the cache as an OCI image layout.

// Image is one image the lab makes and its registry serves.
type Image struct {
	// Repo is its repository in the lab registry ("google_containers/pause").
	Repo string
	// Tags are its tags there, all naming the same index.
	Tags []string
	// Source says where its programs come from; Renamed what differs
	// from the upstream image of that name.
	Source, Renamed string
	// Layout is an OCI image layout whose index.json names the image's index.
	Layout string
	// Digest is the index's digest, the one a pull by tag resolves to.
	Digest string
	// Platforms are the index's platforms ("linux/amd64").
	Platforms []string
}

// Refs are the image's references below a registry (REG/repo:tag).
func (i Image) Refs(registry string) []string {
	refs := make([]string, len(i.Tags))
	for n, t := range i.Tags {
		refs[n] = registry + "/" + i.Repo + ":" + t
	}
	return refs
}

// Index opens the image's index from its layout.
func (i Image) Index() (v1.ImageIndex, error) {
	root, err := layout.ImageIndexFromPath(i.Layout)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", i.Repo, err)
	}
	m, err := root.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		return nil, fmt.Errorf("image %s: want one index in %s/index.json (%v)", i.Repo, i.Layout, err)
	}
	return root.ImageIndex(m.Manifests[0].Digest)
}

// buildOCIImages makes one image index per repository from specs, which
// holds each architecture's catalogue (labImages) in the same order, and
// keeps each in the cache under a key of its recipe.
func buildOCIImages(ctx context.Context, r *runner, cacheDir string, specs map[arch][]imageSpec) ([]Image, error) {
	arches := sortedArches(specs)
	var images []Image
	for n := range specs[arches[0]] {
		var perArch []imageSpec
		for _, a := range arches {
			s := specs[a][n]
			if s.Repo != specs[arches[0]][n].Repo {
				return nil, fmt.Errorf("the image catalogues of %s and %s differ at %d: %s, %s", arches[0].Go, a.Go, n, specs[arches[0]][n].Repo, s.Repo)
			}
			perArch = append(perArch, s)
		}
		recipe, err := json.Marshal(perArch)
		if err != nil {
			return nil, err
		}
		// Inputs are files in keyed cache folders, so their paths stand for their content.
		key := recipeKey("oci-image/1", string(recipe), archNames(arches))
		base := perArch[0]
		dir, err := cached(ctx, filepath.Join(cacheDir, "images"), imageEntryPrefix(base.Repo, arches)+key, func(ctx context.Context, tmp string) error {
			idx, err := ociIndex(perArch, arches)
			if err != nil {
				return fmt.Errorf("image %s: %w", base.Repo, err)
			}
			path, err := layout.Write(filepath.Join(tmp, "oci"), empty.Index)
			if err != nil {
				return err
			}
			return path.AppendIndex(idx, layout.WithAnnotations(map[string]string{
				"org.opencontainers.image.ref.name": base.Repo + ":" + base.Tags[0],
			}))
		})
		if err != nil {
			return nil, err
		}
		img := Image{Repo: base.Repo, Tags: base.Tags, Source: base.Source, Renamed: base.Renamed, Layout: filepath.Join(dir, "oci")}
		idx, err := img.Index()
		if err != nil {
			return nil, err
		}
		d, err := idx.Digest()
		if err != nil {
			return nil, err
		}
		img.Digest = d.String()
		for _, a := range arches {
			img.Platforms = append(img.Platforms, "linux/"+a.Go)
		}
		size, err := imageSize(idx)
		if err != nil {
			return nil, err
		}
		r.logf("image %s:%s %s (%.1f MB)", img.Repo, strings.Join(img.Tags, ","), img.Digest, float64(size)/1e6)
		images = append(images, img)
	}
	// Older recipes of these images for these arches go; other arch sets' stay.
	var prefixes, used []string
	for _, img := range images {
		prefixes = append(prefixes, imageEntryPrefix(img.Repo, arches))
		used = append(used, filepath.Base(filepath.Dir(img.Layout)))
	}
	prune(r, filepath.Join(cacheDir, "images"), prefixes, used)
	return images, nil
}

// imageEntryPrefix starts the cache entry names of an image for a set of
// architectures ("google_containers_pause-amd64-").
func imageEntryPrefix(repo string, arches []arch) string {
	return strings.ReplaceAll(repo, "/", "_") + "-" + archNames(arches) + "-"
}

// usedImageEntries are the cache folders of images.
func usedImageEntries(images []Image) []string {
	var dirs []string
	for _, img := range images {
		dirs = append(dirs, filepath.Dir(img.Layout))
	}
	return dirs
}

// ociIndex makes an OCI image index with one image per architecture.
func ociIndex(specs []imageSpec, arches []arch) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for n, s := range specs {
		img, err := ociImage(s, arches[n])
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Platform: platformOf(arches[n]),
		}})
	}
	return idx, nil
}

// platformOf is an architecture as an index names it (arm64 with its
// variant v8, as registry.k8s.io's indexes have it).
func platformOf(a arch) *v1.Platform {
	p := &v1.Platform{OS: "linux", Architecture: a.Go}
	if a.Go == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// ociImage makes one OCI image from a spec: its layers (gzip), its config
// and history, with the fixed imageTime everywhere.
func ociImage(s imageSpec, a arch) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for _, l := range s.Layers {
		data, err := layerTar(l.Files)
		if err != nil {
			return nil, err
		}
		gz, err := gzipBytes(data, gzip.DefaultCompression) // as registries' own images are
		if err != nil {
			return nil, err
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil },
			tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: imageTime}, CreatedBy: l.Note}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Variant = a.Go, "linux", platformOf(a).Variant
	cf.Created = v1.Time{Time: imageTime}
	cf.Config = v1.Config{Entrypoint: s.Config.Entrypoint, Cmd: s.Config.Cmd, Env: s.Config.Env, User: s.Config.User,
		WorkingDir: s.Config.WorkingDir, Labels: map[string]string{"org.opencontainers.image.source": s.Source}}
	return mutate.ConfigFile(img, cf)
}

// sortedArches are the map's architectures, amd64 first.
func sortedArches[V any](m map[arch]V) []arch {
	var out []arch
	for a := range m {
		out = append(out, a)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Go < out[j-1].Go; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// archNames joins the architectures' Go names ("amd64+arm64": no entry
// prefix of one arch set is the start of another's).
func archNames(arches []arch) string {
	names := make([]string, len(arches))
	for i, a := range arches {
		names[i] = a.Go
	}
	return strings.Join(names, "+")
}

// imageSize is the total compressed size of an image's layers and
// configs over every platform, for the logs and the README.
func imageSize(idx v1.ImageIndex) (int64, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return 0, err
		}
		mf, err := img.Manifest()
		if err != nil {
			return 0, err
		}
		total += mf.Config.Size
		for _, l := range mf.Layers {
			total += l.Size
		}
	}
	return total, nil
}
