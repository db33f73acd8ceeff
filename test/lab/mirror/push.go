package mirror

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PushImages pushes the tree's images to the registry at addr (host:port,
// plain HTTP): each tag gets the image's OCI index, every blob is sent
// once (images share their base layers) and skipped when the registry
// has it already.
func PushImages(ctx context.Context, addr string, t *Tree) error {
	refs := map[name.Reference]remote.Taggable{}
	for _, img := range t.Images {
		idx, err := img.Index()
		if err != nil {
			return err
		}
		for _, r := range img.Refs(addr) {
			tag, err := name.NewTag(r, name.Insecure, name.StrictValidation)
			if err != nil {
				return fmt.Errorf("image %s: %w", img.Repo, err)
			}
			refs[tag] = idx
		}
	}
	if err := remote.MultiWrite(refs, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("push the lab's images to %s: %w", addr, err)
	}
	return nil
}

// RemoteIndex asks the registry for ref's manifest with a HEAD and then a
// GET, without pulling any layer, and returns the index it names: an error
// when ref is missing or names a plain image rather than an index.
func RemoteIndex(ctx context.Context, ref string) (*v1.IndexManifest, v1.Hash, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	desc, err := remote.Head(r, remote.WithContext(ctx))
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("HEAD %s: %w", ref, err)
	}
	if desc.MediaType != types.OCIImageIndex {
		return nil, v1.Hash{}, fmt.Errorf("%s is a %s, want an OCI image index", ref, desc.MediaType)
	}
	idx, err := remote.Index(r, remote.WithContext(ctx))
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("GET %s: %w", ref, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("GET %s: %w", ref, err)
	}
	return m, desc.Digest, nil
}
