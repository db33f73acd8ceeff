package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Media types of a Docker image manifest (schema 2), the format every
// docker and containerd version the lab meets can pull.
const (
	mediaManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaConfig   = "application/vnd.docker.container.image.v1+json"
	mediaLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// descriptor points at one blob from a manifest.
type descriptor struct {
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	Digest    string `json:"digest"`
}

// manifestV2 is a Docker image manifest, schema 2.
type manifestV2 struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

// PushImages pushes the tree's images to the registry at addr (host:port).
func PushImages(ctx context.Context, addr string, t *Tree) error {
	c := &registryClient{base: "http://" + addr, http: http.DefaultClient}
	for _, img := range t.Images {
		if _, err := c.pushArchive(ctx, img.Ref, img.Archive); err != nil {
			return fmt.Errorf("push %s to %s: %w", img.Ref, addr, err)
		}
	}
	return nil
}

// registryClient speaks the registry v2 HTTP API to one registry.
type registryClient struct {
	base string // http://host:port
	http *http.Client
}

// splitRef splits "library/hello:latest" into repository and tag.
func splitRef(ref string) (repo, tag string, err error) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return "", "", fmt.Errorf("image ref %q: want repository:tag", ref)
	}
	return ref[:i], ref[i+1:], nil
}

// pushArchive uploads a docker-archive's layers (gzip-compressed) and
// config, then puts its manifest under ref's tag, and returns the
// manifest's digest.
func (c *registryClient) pushArchive(ctx context.Context, ref, archive string) (string, error) {
	repo, tag, err := splitRef(ref)
	if err != nil {
		return "", err
	}
	img, err := readDockerArchive(archive)
	if err != nil {
		return "", err
	}
	m := manifestV2{SchemaVersion: 2, MediaType: mediaManifest,
		Config: descriptor{MediaType: mediaConfig, Size: int64(len(img.Config)), Digest: digestOf(img.Config)}}
	for _, layer := range img.Layers {
		gz, err := gzipBytes(layer)
		if err != nil {
			return "", err
		}
		d := descriptor{MediaType: mediaLayer, Size: int64(len(gz)), Digest: digestOf(gz)}
		if err := c.pushBlob(ctx, repo, d.Digest, gz); err != nil {
			return "", err
		}
		m.Layers = append(m.Layers, d)
	}
	if err := c.pushBlob(ctx, repo, m.Config.Digest, img.Config); err != nil {
		return "", err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	resp, err := c.do(ctx, http.MethodPut, c.base+"/v2/"+repo+"/manifests/"+tag, mediaManifest, body)
	if err != nil {
		return "", err
	}
	if err := expect(resp, http.StatusCreated); err != nil {
		return "", fmt.Errorf("put manifest %s: %w", ref, err)
	}
	return digestOf(body), nil
}

// pushBlob uploads one blob unless the registry has it: a POST opens an
// upload, one PUT with the digest sends the whole blob and closes it.
func (c *registryClient) pushBlob(ctx context.Context, repo, digest string, data []byte) error {
	resp, err := c.do(ctx, http.MethodHead, c.base+"/v2/"+repo+"/blobs/"+digest, "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	resp, err = c.do(ctx, http.MethodPost, c.base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		return err
	}
	if err := expect(resp, http.StatusAccepted); err != nil {
		return fmt.Errorf("start blob upload to %s: %w", repo, err)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location")) // may be relative
	if err != nil || resp.Header.Get("Location") == "" {
		return fmt.Errorf("start blob upload to %s: no usable Location header (%v)", repo, err)
	}
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	resp, err = c.do(ctx, http.MethodPut, loc.String(), "application/octet-stream", data)
	if err != nil {
		return err
	}
	if err := expect(resp, http.StatusCreated); err != nil {
		return fmt.Errorf("upload blob %s to %s: %w", digest, repo, err)
	}
	return nil
}

// getManifest fetches ref's schema 2 manifest and its digest as the
// registry reports it.
func (c *registryClient) getManifest(ctx context.Context, ref string) (*manifestV2, string, error) {
	repo, tag, err := splitRef(ref)
	if err != nil {
		return nil, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", mediaManifest)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", statusError(resp)
	}
	var m manifestV2
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, "", fmt.Errorf("manifest %s: %w", ref, err)
	}
	return &m, resp.Header.Get("Docker-Content-Digest"), nil
}

// do sends one request with an optional body and content type.
func (c *registryClient) do(ctx context.Context, method, u, contentType string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, redactQuery(u), err)
	}
	return resp, nil
}

// expect closes resp and fails unless it has the wanted status.
func expect(resp *http.Response, want int) error {
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return statusError(resp)
	}
	io.Copy(io.Discard, resp.Body)
	return nil
}

// statusError describes a failed registry answer with the body's start.
func statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s %s: registry answered %s: %s", resp.Request.Method, redactQuery(resp.Request.URL.String()),
		resp.Status, strings.TrimSpace(string(body)))
}

// redactQuery drops a URL's query (upload state tokens) from messages.
func redactQuery(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.RawQuery = ""
	return p.String()
}
