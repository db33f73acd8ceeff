package images

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Media types a registry answers a manifest request with. An index (OCI)
// or manifest list (Docker) names one image per platform; an image
// manifest is one platform's image, whose platform is in its config.
const (
	MediaOCIIndex        = "application/vnd.oci.image.index.v1+json"
	MediaDockerList      = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaOCIManifest     = "application/vnd.oci.image.manifest.v1+json"
	MediaDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerSchema1   = "application/vnd.docker.distribution.manifest.v1"
	attestationReference = "vnd.docker.reference.type"
)

// Accept is the Accept header of a manifest request: every kind a
// runtime pulls, so the registry answers with the index when it has one.
var Accept = strings.Join([]string{MediaOCIIndex, MediaDockerList, MediaOCIManifest, MediaDockerManifest}, ", ")

// Platform is an image's operating system and CPU architecture.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Runs reports whether a linux host of GOARCH arch runs images of p, as
// containerd's default platform matcher decides: the same OS and
// architecture; on arm64 the variant may be empty or v8 (what arm64 means
// without one). amd64's microarchitecture levels (v2, v3) are taken as
// running: kprep cannot tell a host's level from its facts, and a false
// "missing" would stop the kube phase on a host that pulls fine.
func (p Platform) Runs(arch string) bool {
	if p.OS != "linux" || p.Architecture != arch {
		return false
	}
	switch arch {
	case "arm64":
		return p.Variant == "" || p.Variant == "v8"
	}
	return true
}

// Manifest is what a registry answered a manifest request with.
type Manifest struct {
	// Index is true for an image index or manifest list.
	Index bool
	// Platforms are an index's images' platforms (attestations left out).
	Platforms []Platform
	// Config is an image manifest's config blob digest, which holds its
	// platform.
	Config string
}

type manifestJSON struct {
	SchemaVersion int    `json:"schemaVersion"`
	MediaType     string `json:"mediaType"`
	Manifests     []struct {
		MediaType   string            `json:"mediaType"`
		Platform    *Platform         `json:"platform"`
		Annotations map[string]string `json:"annotations"`
	} `json:"manifests"`
	Config *struct {
		Digest string `json:"digest"`
	} `json:"config"`
}

// ParseManifest reads a manifest request's answer: an OCI index, a Docker
// manifest list, or a single OCI or Docker image manifest. contentType is
// the answer's Content-Type (may be empty: then the body's own mediaType
// and fields decide).
func ParseManifest(contentType string, body []byte) (Manifest, error) {
	var m manifestJSON
	if err := json.Unmarshal(body, &m); err != nil {
		return Manifest{}, fmt.Errorf("the manifest is not JSON: %v", err)
	}
	kind := m.MediaType
	if ct, _, _ := strings.Cut(contentType, ";"); kind == "" {
		kind = strings.TrimSpace(ct)
	}
	switch {
	case strings.HasPrefix(kind, mediaDockerSchema1) || m.SchemaVersion == 1:
		return Manifest{}, fmt.Errorf("the registry serves a Docker schema 1 manifest, which containerd no longer pulls")
	case kind == MediaOCIIndex || kind == MediaDockerList || (kind == "" && m.Manifests != nil):
		out := Manifest{Index: true}
		for _, e := range m.Manifests {
			if e.Annotations[attestationReference] != "" {
				continue
			}
			if e.Platform == nil {
				// A nested index, or an image whose index does not say
				// its platform: the runtime cannot pick it either.
				continue
			}
			if e.Platform.OS == "unknown" && e.Platform.Architecture == "unknown" {
				continue // buildkit's attestation entries
			}
			out.Platforms = append(out.Platforms, *e.Platform)
		}
		return out, nil
	case kind == MediaOCIManifest || kind == MediaDockerManifest || (kind == "" && m.Config != nil):
		if m.Config == nil || m.Config.Digest == "" {
			return Manifest{}, fmt.Errorf("the image manifest names no config")
		}
		return Manifest{Config: m.Config.Digest}, nil
	}
	return Manifest{}, fmt.Errorf("the registry answered with a %q, not an image index or manifest", kind)
}

// ParseConfig reads an image config's platform.
func ParseConfig(body []byte) (Platform, error) {
	var p Platform
	if err := json.Unmarshal(body, &p); err != nil {
		return Platform{}, fmt.Errorf("the image config is not JSON: %v", err)
	}
	if p.OS == "" || p.Architecture == "" {
		return Platform{}, fmt.Errorf("the image config names no os and architecture")
	}
	return p, nil
}

// HasPlatform reports whether an index holds an image a host of GOARCH
// arch runs.
func (m Manifest) HasPlatform(arch string) bool {
	for _, p := range m.Platforms {
		if p.Runs(arch) {
			return true
		}
	}
	return false
}

// PlatformList is an index's platforms for a message: "linux/arm64/v8, linux/s390x".
func (m Manifest) PlatformList() string {
	var s []string
	for _, p := range m.Platforms {
		s = append(s, p.String())
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
