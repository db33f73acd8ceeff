package images

import (
	"testing"

	"github.com/kprep/kprep/provision/inventory"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in, full, docker string
		want             Ref
	}{
		{"registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10.1",
			Ref{Registry: "registry.k8s.io", Repository: "pause", Tag: "3.10.1"}},
		{"haproxy:3.2.3-alpine", "docker.io/library/haproxy:3.2.3-alpine", "haproxy:3.2.3-alpine",
			Ref{Registry: "docker.io", Repository: "library/haproxy", Tag: "3.2.3-alpine"}},
		{"docker.io/library/haproxy:3.2.3-alpine", "docker.io/library/haproxy:3.2.3-alpine", "haproxy:3.2.3-alpine",
			Ref{Registry: "docker.io", Repository: "library/haproxy", Tag: "3.2.3-alpine"}},
		{"calico/node", "docker.io/calico/node:latest", "calico/node:latest",
			Ref{Registry: "docker.io", Repository: "calico/node", Tag: "latest"}},
		{"192.168.82.1:5000/flannel-io/flannel:v0.28.10", "192.168.82.1:5000/flannel-io/flannel:v0.28.10", "192.168.82.1:5000/flannel-io/flannel:v0.28.10",
			Ref{Registry: "192.168.82.1:5000", Repository: "flannel-io/flannel", Tag: "v0.28.10"}},
		{"localhost/lab/hello", "localhost/lab/hello:latest", "localhost/lab/hello:latest",
			Ref{Registry: "localhost", Repository: "lab/hello", Tag: "latest"}},
		{"reg:5000/lab/hello@sha256:abcd", "reg:5000/lab/hello@sha256:abcd", "reg:5000/lab/hello@sha256:abcd",
			Ref{Registry: "reg:5000", Repository: "lab/hello", Digest: "sha256:abcd"}},
		{"index.docker.io/library/busybox:1@sha256:ef", "docker.io/library/busybox:1@sha256:ef", "busybox:1@sha256:ef",
			Ref{Registry: "docker.io", Repository: "library/busybox", Tag: "1", Digest: "sha256:ef"}},
	} {
		got, err := ParseRef(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got != tc.want || got.String() != tc.full || got.DockerName() != tc.docker {
			t.Errorf("%s: %+v %q %q, want %+v %q %q", tc.in, got, got.String(), got.DockerName(), tc.want, tc.full, tc.docker)
		}
	}
	for _, bad := range []string{"", "https://reg/x:1", "reg:5000/x:", "a b", "reg.io/", "x@nodigest"} {
		if r, err := ParseRef(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, r)
		}
	}
}

func TestEndpoints(t *testing.T) {
	c := &inventory.Cluster{Docker: inventory.Docker{
		RegistryMirrors:    []string{"http://192.168.82.1:5000", "https://mirror.example.com/prefix/", "m2.example.com:8443"},
		InsecureRegistries: []string{"192.168.82.1:5000", "m2.example.com:8443", "http://10.0.0.5:5000"},
	}}
	api := func(es []Endpoint) (out []string) {
		for _, e := range es {
			s := e.API
			if e.SkipVerify {
				s += " (no verify)"
			}
			out = append(out, s)
		}
		return out
	}
	for _, tc := range []struct {
		ref  string
		want []string
	}{
		{"haproxy:3", []string{"http://192.168.82.1:5000/v2", "https://mirror.example.com/prefix/v2", "https://m2.example.com:8443/v2 (no verify)", "https://registry-1.docker.io/v2"}},
		{"192.168.82.1:5000/google_containers/pause:3.10.1", []string{"https://192.168.82.1:5000/v2 (no verify)", "http://192.168.82.1:5000/v2"}},
		{"10.0.0.5:5000/x:1", []string{"https://10.0.0.5:5000/v2 (no verify)", "http://10.0.0.5:5000/v2"}},
		{"127.0.0.1:5000/x:1", []string{"https://127.0.0.1:5000/v2 (no verify)", "http://127.0.0.1:5000/v2"}},
		{"registry.k8s.io/pause:3.10.1", []string{"https://registry.k8s.io/v2"}},
	} {
		r, err := ParseRef(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := api(Endpoints(r, c)); !equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.ref, got, tc.want)
		}
	}
	r, _ := ParseRef("reg:5000/lab/hello@sha256:ab")
	e := Endpoint{API: "http://reg:5000/v2"}
	if got := e.ManifestURL(r); got != "http://reg:5000/v2/lab/hello/manifests/sha256:ab" {
		t.Errorf("manifest URL %s", got)
	}
	if got := e.BlobsURL(r); got != "http://reg:5000/v2/lab/hello/blobs/" {
		t.Errorf("blob URL %s", got)
	}
	if got := (Endpoint{API: "https://mirror.example.com/prefix/v2"}).Host(); got != "https://mirror.example.com" {
		t.Errorf("host %s", got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
