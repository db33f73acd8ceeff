package mirror

import "fmt"

// RegistryConfig returns a docker-registry config.yml that stores images in
// dataDir and listens on addr over plain HTTP. Debian's docker-registry
// (distribution 2.8) reads it; hosts reach it as an insecure registry or a
// Docker Hub mirror (registry-mirrors), which is why library/hello sits
// under the library/ prefix.
func RegistryConfig(dataDir, addr string) []byte {
	return fmt.Appendf(nil, `version: 0.1
log:
  level: info
  fields:
    service: kprep-lab-registry
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %q
  headers:
    X-Content-Type-Options: [nosniff]
`, dataDir, addr)
}
