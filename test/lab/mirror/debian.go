package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// debianPackages are the Debian packages whose binaries the mirror
// repackages under Docker's and Kubernetes' names: real, working programs,
// at Debian's versions (see README.md for the version each name carries).
var debianPackages = []string{
	"docker.io",                   // dockerd, docker, docker-proxy
	"containerd",                  // containerd, containerd-shim-runc-v2, ctr
	"runc",                        // runc
	"tini",                        // tini-static, shipped by Docker as docker-init
	"containernetworking-plugins", // the CNI plugins of kubernetes-cni
	"busybox-static",              // the hello image's only binary
}

// debianPayload is the unpacked content of the Debian packages.
type debianPayload struct {
	// Root holds every package's files unpacked together (Root/usr/sbin/dockerd, ...).
	Root string
	// Versions maps each Debian package to the version that was unpacked.
	Versions map[string]string
}

// path returns the unpacked file at the package path p ("/usr/sbin/dockerd").
func (d *debianPayload) path(p string) string { return filepath.Join(d.Root, p) }

// fetchDebian downloads the Debian packages for debArch with apt-get (the
// machine's configured Debian mirror is the one source that works here) and
// unpacks them with dpkg-deb. The entry is keyed by the package names, not
// their versions, so a warm run never touches the network.
func fetchDebian(ctx context.Context, r *runner, cacheDir, debArch string) (*debianPayload, error) {
	key := recipeKey("debian-payload/1", debArch, strings.Join(debianPackages, " "))
	dir, err := cached(ctx, filepath.Join(cacheDir, "debian"), key, func(ctx context.Context, tmp string) error {
		r.logf("downloading Debian packages %s (%s)", strings.Join(debianPackages, " "), debArch)
		debs := filepath.Join(tmp, "debs")
		if err := os.MkdirAll(debs, 0o755); err != nil {
			return err
		}
		names := make([]string, len(debianPackages))
		for i, p := range debianPackages {
			names[i] = p + ":" + debArch
		}
		if _, err := r.run(ctx, debs, "apt-get", append([]string{"download"}, names...)...); err != nil {
			return fmt.Errorf("download Debian packages (run `apt-get update` first; for a foreign arch also `dpkg --add-architecture %s`): %w", debArch, err)
		}
		files, err := filepath.Glob(filepath.Join(debs, "*.deb"))
		if err != nil {
			return err
		}
		versions := map[string]string{}
		root := filepath.Join(tmp, "root")
		for _, f := range files {
			out, err := r.run(ctx, debs, "dpkg-deb", "--show", "--showformat=${Package} ${Version}", f)
			if err != nil {
				return err
			}
			name, version, _ := strings.Cut(string(out), " ")
			versions[name] = version
			if _, err := r.run(ctx, debs, "dpkg-deb", "-x", f, root); err != nil {
				return err
			}
		}
		for _, p := range debianPackages {
			if versions[p] == "" {
				return fmt.Errorf("apt-get download gave no %s package", p)
			}
		}
		data, err := json.MarshalIndent(versions, "", "  ")
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(tmp, "versions.json"), data, 0o644); err != nil {
			return err
		}
		return os.RemoveAll(debs) // the unpacked tree is all later stages read
	})
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "versions.json"))
	if err != nil {
		return nil, fmt.Errorf("the cache of Debian payloads %s: %w", dir, err)
	}
	p := &debianPayload{Root: filepath.Join(dir, "root")}
	if err := json.Unmarshal(data, &p.Versions); err != nil {
		return nil, fmt.Errorf("the cache of Debian payloads %s: %w", dir, err)
	}
	return p, nil
}
