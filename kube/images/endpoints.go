package images

import (
	"net"
	"net/url"
	"strings"

	"github.com/kprep/kprep/provision/inventory"
)

// Endpoint is one place the host's runtime would ask for an image, in
// the order it asks: its API root and how to speak to it.
type Endpoint struct {
	// API is the registry API's root, ending in /v2
	// ("https://registry-1.docker.io/v2", "http://10.0.0.5:5000/v2").
	API string
	// SkipVerify: HTTPS without checking the certificate (an insecure
	// registry).
	SkipVerify bool
	// Mirror: a Docker Hub mirror, tried before Docker Hub itself.
	Mirror bool
}

// Host is the endpoint's scheme and host, which the report names.
func (e Endpoint) Host() string {
	if u, err := url.Parse(e.API); err == nil {
		return u.Scheme + "://" + u.Host
	}
	return e.API
}

// ManifestURL is where the endpoint serves the reference's manifest.
func (e Endpoint) ManifestURL(r Ref) string {
	return e.API + "/" + r.Repository + "/manifests/" + r.ManifestRef()
}

// BlobsURL is where the endpoint serves the repository's blobs: a
// blob's URL is this and its digest.
func (e Endpoint) BlobsURL(r Ref) string {
	return e.API + "/" + r.Repository + "/blobs/"
}

// Endpoints lists where the host's runtime pulls r from, in its order, as
// kprep configures the runtimes (runtime/registries for containerd,
// daemon.json for dockerd): a Docker Hub image from each of
// docker.registryMirrors, then Docker Hub; a registry of
// docker.insecureRegistries (or on loopback) over HTTPS without checking
// its certificate, then over plain HTTP; any other over HTTPS.
func Endpoints(r Ref, c *inventory.Cluster) []Endpoint {
	insecure := map[string]bool{}
	for _, reg := range c.Docker.InsecureRegistries {
		insecure[registryName(reg)] = true
	}
	var out []Endpoint
	if r.Registry == dockerHub {
		for _, m := range c.Docker.RegistryMirrors {
			out = append(out, mirrorEndpoint(m, insecure))
		}
		return append(out, Endpoint{API: "https://" + dockerHubAPI + "/v2"})
	}
	if insecure[r.Registry] || loopback(r.Registry) {
		return append(out, Endpoint{API: "https://" + r.Registry + "/v2", SkipVerify: true}, Endpoint{API: "http://" + r.Registry + "/v2"})
	}
	return append(out, Endpoint{API: "https://" + r.Registry + "/v2"})
}

// mirrorEndpoint is a registry mirror's API root: its URL (https:// when it
// has no scheme) with /v2 added to its path, as containerd does.
func mirrorEndpoint(m string, insecure map[string]bool) Endpoint {
	if !strings.Contains(m, "://") {
		m = "https://" + m
	}
	u, err := url.Parse(m)
	if err != nil {
		return Endpoint{API: strings.TrimRight(m, "/") + "/v2", Mirror: true}
	}
	path := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(path, "/v2") {
		path += "/v2"
	}
	return Endpoint{API: u.Scheme + "://" + u.Host + path, SkipVerify: u.Scheme == "https" && insecure[u.Host], Mirror: true}
}

// registryName is the host[:port] of a registry written as a URL or a name.
func registryName(r string) string {
	if u, err := url.Parse(r); err == nil && u.Host != "" {
		return u.Host
	}
	return strings.TrimRight(r, "/")
}

// loopback reports a registry on this host's loopback, which containerd
// and dockerd reach over plain HTTP without being told.
func loopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
