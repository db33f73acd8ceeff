package mirror

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushPauseFor pushes the lab's pause image built for the given
// architectures only (GOARCH names) as ref, REG/repo:tag on a plain-HTTP
// registry, and returns the index's digest. It makes a registry that lacks
// the hosts' platform for one image (an arm64-only index where the hosts
// are x86_64), as a mirror that copied only some platforms does, without
// a docker daemon: the program is cross-compiled (cached in o.CacheDir
// like the mirror's own pause) and the index made as the mirror makes its
// images.
func PushPauseFor(ctx context.Context, o Options, ref string, goarches ...string) (string, error) {
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	tag, err := name.NewTag(ref, name.Insecure, name.StrictValidation)
	if err != nil {
		return "", err
	}
	r := &runner{log: o.Log}
	var specs []imageSpec
	var arches []arch
	for _, g := range goarches {
		a, err := archFor(g)
		if err != nil {
			return "", err
		}
		pause, err := buildPause(ctx, r, o.CacheDir, a)
		if err != nil {
			return "", err
		}
		specs = append(specs, pauseImage(tag.RepositoryStr(), []string{tag.TagStr()}, pause))
		arches = append(arches, a)
	}
	idx, err := ociIndex(specs, arches)
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(tag, idx, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}
