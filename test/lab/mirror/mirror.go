// Package mirror builds and serves what the lab's hosts install from: a yum
// and an apt repository laid out like the real Docker CE and Kubernetes
// mirrors, holding packages built on the spot around real binaries, and the
// small images the lab's registry holds.
package mirror

import (
	"context"
	"errors"
	"io"
)

// Options says where the mirror's artifacts are cached and where progress goes.
type Options struct {
	// CacheDir keeps built artifacts between runs, keyed by their recipe.
	CacheDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Tree is a built mirror.
type Tree struct {
	// Root is the folder served over HTTP as the mirror's top
	// (Root/docker-ce/linux/centos/9/x86_64/stable/, Root/kubernetes-new/...).
	Root string
	// BinDir holds kubeadm, kubelet, kubectl and lab-crictl for the machine's arch.
	BinDir string
	// Images are docker-archive tarballs pushed to the lab registry and
	// importable with `ctr -n k8s.io images import`.
	Images []Image
}

// Image is one image the lab makes locally.
type Image struct {
	// Ref is the reference inside the lab registry, without the registry
	// address: "library/hello:latest", "google_containers/pause:3.10".
	Ref string
	// Archive is a docker-archive tarball of the image.
	Archive string
}

// Build makes (or takes from the cache) everything the mirror serves.
func Build(ctx context.Context, o Options) (*Tree, error) {
	return nil, errors.New("mirror.Build: not built yet")
}

// Serve serves root over HTTP on addr (e.g. 192.168.77.1:8080) until ctx ends.
func Serve(ctx context.Context, root, addr string) error {
	return errors.New("mirror.Serve: not built yet")
}

// RegistryConfig returns a docker-registry config.yml that stores images in
// dataDir and listens on addr over plain HTTP.
func RegistryConfig(dataDir, addr string) []byte { return nil }

// PushImages pushes the tree's images to the registry at addr (host:port).
func PushImages(ctx context.Context, addr string, t *Tree) error {
	return errors.New("mirror.PushImages: not built yet")
}
