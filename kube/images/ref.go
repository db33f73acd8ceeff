package images

import (
	"fmt"
	"strings"
)

// dockerHub is the registry of an image reference that names none, as
// containerd and dockerd file it; dockerHubAPI is where its API answers.
const (
	dockerHub    = "docker.io"
	dockerHubAPI = "registry-1.docker.io"
)

// Ref is an image reference taken apart the way container runtimes read
// it (docker/distribution's reference grammar, without its validation of
// every character).
type Ref struct {
	// Registry is the host[:port] ("docker.io" when the reference names none).
	Registry string
	// Repository is the path below the registry ("library/haproxy").
	Repository string
	// Tag is the tag ("latest" when there is neither a tag nor a digest).
	Tag string
	// Digest is the pinned digest ("sha256:..."), if any.
	Digest string
}

// ParseRef reads an image reference such as registry.k8s.io/pause:3.10.1,
// haproxy:3.2.3-alpine or REG:5000/lab/hello@sha256:....
func ParseRef(s string) (Ref, error) {
	if s == "" || strings.ContainsAny(s, " \t\r\n\"'") || strings.Contains(s, "://") {
		return Ref{}, fmt.Errorf("%q is not an image reference", s)
	}
	var r Ref
	rest := s
	if name, digest, ok := strings.Cut(rest, "@"); ok {
		if !strings.Contains(digest, ":") {
			return Ref{}, fmt.Errorf("%q: the digest %q has no algorithm", s, digest)
		}
		r.Digest, rest = digest, name
	}
	// A tag is after the last colon that comes after the last slash (a
	// colon before it is a registry's port).
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		r.Tag, rest = rest[i+1:], rest[:i]
		if r.Tag == "" {
			return Ref{}, fmt.Errorf("%q has an empty tag", s)
		}
	}
	// The first component is a registry when it looks like a host: it has
	// a dot or a port, or is localhost. Otherwise the image is Docker Hub's.
	first, path, hasSlash := strings.Cut(rest, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		r.Registry, r.Repository = first, path
	} else {
		r.Registry, r.Repository = dockerHub, rest
	}
	if r.Registry == "index.docker.io" {
		r.Registry = dockerHub
	}
	if r.Registry == dockerHub && !strings.Contains(r.Repository, "/") {
		r.Repository = "library/" + r.Repository
	}
	if r.Repository == "" || strings.HasSuffix(r.Repository, "/") || strings.Contains(r.Repository, "//") {
		return Ref{}, fmt.Errorf("%q has no repository name", s)
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// String is the reference in full, as containerd names the image it
// pulled: docker.io/library/haproxy:3.2.3-alpine.
func (r Ref) String() string {
	s := r.Registry + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// DockerName is the reference as dockerd names the image it pulled: Docker
// Hub's without docker.io/ (and without library/ for official images).
func (r Ref) DockerName() string {
	full := r.String()
	if r.Registry != dockerHub {
		return full
	}
	short := strings.TrimPrefix(full, dockerHub+"/")
	return strings.TrimPrefix(short, "library/")
}

// ManifestRef is what goes after /manifests/ in the registry API: the
// digest when the reference pins one, else the tag.
func (r Ref) ManifestRef() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}
