package images

import (
	"strings"
	"testing"
)

// Answers as registries send them (shortened digests and sizes).
const (
	// registry.k8s.io/pause:3.10.1 style: an OCI index over five platforms.
	ociIndexMulti = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:01","size":1,"platform":{"architecture":"amd64","os":"linux"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:02","size":1,"platform":{"architecture":"arm","os":"linux","variant":"v7"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:03","size":1,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:04","size":1,"platform":{"architecture":"s390x","os":"linux"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:05","size":1,"platform":{"architecture":"amd64","os":"windows","os.version":"10.0.17763.6189"}}]}`
	// A Docker manifest list with amd64 only.
	dockerListAMD64 = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
 {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:11","platform":{"architecture":"amd64","os":"linux"}}]}`
	// buildkit's: arm64 plus its attestation manifest (unknown/unknown).
	ociIndexArm64Attested = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:21","size":1,"platform":{"architecture":"arm64","os":"linux"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:22","size":1,"annotations":{"vnd.docker.reference.digest":"sha256:21","vnd.docker.reference.type":"attestation-manifest"},"platform":{"architecture":"unknown","os":"unknown"}}]}`
	// An OCI index without a mediaType field: the fields decide.
	ociIndexNoMediaType = `{"schemaVersion":2,"manifests":[{"digest":"sha256:31","size":1,"platform":{"architecture":"amd64","os":"linux"}}]}`
	ociManifest         = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c1","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:l1","size":3}]}`
	dockerManifest      = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:c2"},"layers":[]}`
	schema1             = `{"schemaVersion":1,"name":"x","tag":"1","architecture":"amd64","fsLayers":[]}`
)

func TestParseManifest(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
		index                   bool
		platforms, config       string
		amd64, arm64            bool
	}{
		{"oci index", MediaOCIIndex, ociIndexMulti, true, "linux/amd64, linux/arm/v7, linux/arm64/v8, linux/s390x, windows/amd64", "", true, true},
		{"docker list amd64 only", MediaDockerList, dockerListAMD64, true, "linux/amd64", "", true, false},
		{"arm64 with attestation", MediaOCIIndex, ociIndexArm64Attested, true, "linux/arm64", "", false, true},
		{"index without mediaType, no content type", "", ociIndexNoMediaType, true, "linux/amd64", "", true, false},
		{"oci manifest", MediaOCIManifest, ociManifest, false, "none", "sha256:c1", false, false},
		{"docker manifest, content type with parameters", MediaDockerManifest + "; charset=utf-8", dockerManifest, false, "none", "sha256:c2", false, false},
	} {
		m, err := ParseManifest(tc.contentType, []byte(tc.body))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if m.Index != tc.index || m.PlatformList() != tc.platforms || m.Config != tc.config ||
			m.HasPlatform("amd64") != tc.amd64 || m.HasPlatform("arm64") != tc.arm64 {
			t.Errorf("%s: %+v (%s), amd64 %v arm64 %v", tc.name, m, m.PlatformList(), m.HasPlatform("amd64"), m.HasPlatform("arm64"))
		}
	}
	for name, body := range map[string]string{
		"schema 1":    schema1,
		"not json":    "<html>404</html>",
		"no config":   `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`,
		"other type":  `{"schemaVersion":2,"mediaType":"application/vnd.example+json"}`,
		"empty index": ``,
	} {
		if m, err := ParseManifest("", []byte(body)); err == nil {
			t.Errorf("%s: parsed as %+v", name, m)
		}
	}
}

func TestParseConfigAndRuns(t *testing.T) {
	p, err := ParseConfig([]byte(`{"architecture":"arm64","os":"linux","variant":"v8","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`))
	if err != nil || p.String() != "linux/arm64/v8" || !p.Runs("arm64") || p.Runs("amd64") {
		t.Errorf("%+v %v", p, err)
	}
	if _, err := ParseConfig([]byte(`{"rootfs":{}}`)); err == nil || !strings.Contains(err.Error(), "no os") {
		t.Errorf("a config without a platform: %v", err)
	}
	for _, tc := range []struct {
		p    Platform
		arch string
		want bool
	}{
		{Platform{OS: "linux", Architecture: "arm64"}, "arm64", true},
		{Platform{OS: "linux", Architecture: "arm64", Variant: "v9"}, "arm64", false},
		{Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}, "amd64", true},
		{Platform{OS: "windows", Architecture: "amd64"}, "amd64", false},
		{Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "arm64", false},
	} {
		if got := tc.p.Runs(tc.arch); got != tc.want {
			t.Errorf("%s on %s: %v", tc.p, tc.arch, got)
		}
	}
}
