package mirror

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kprep/kprep/provision/inventory"
)

// The image kprep's local mode runs on every host without an API server
// (kube/apiserver-proxy): HAProxy, under the Docker Hub name the
// inventory's kubernetes.localEndpoint.proxyImage names by default, so a
// host whose containerd pulls Docker Hub through the lab registry finds
// it there, as library/hello is found.

// haproxySet is Debian trixie's haproxy (3.0, an LTS branch like the
// official image's 3.2; bookworm's is 2.6) and what it depends on, from
// which the image takes haproxy and the libraries it loads.
var haproxySet = debianSet{Name: "haproxy", Suite: "trixie", WithDepends: true, Packages: []string{"haproxy"}}

// haproxyRepoTag is the default proxy image's repository and tag below
// Docker Hub: library/haproxy, 3.2.3-alpine.
func haproxyRepoTag() (repo, tag string) {
	ref := strings.TrimPrefix(inventory.DefaultProxyImage, "docker.io/")
	i := strings.LastIndex(ref, ":")
	return ref[:i], ref[i+1:]
}

// haproxyUID is the haproxy user's ID in the official image (Alpine's).
const haproxyUID = "99"

// haproxyImage is the proxy image: haproxy where the official image has
// it, run as its user, with the configuration folder it reads.
func haproxyImage(in imageInputs) imageSpec {
	repo, tag := haproxyRepoTag()
	return imageSpec{Repo: repo, Tags: []string{tag}, Source: "Debian trixie haproxy",
		Renamed: "Debian's haproxy 3.0 and the libraries it loads (the official image: HAProxy 3.2 on Alpine); " +
			"no docker-entrypoint.sh, the Cmd runs haproxy itself",
		Layers: []layerSpec{in.haproxy},
		Config: imageConfig{Cmd: []string{"haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"}, Env: []string{imagePath},
			User: "haproxy", WorkingDir: "/var/lib/haproxy"}}
}

// haproxyLayer is the image's one layer, from haproxySet's payload:
// haproxy at /usr/local/sbin, every shared library it needs (its DT_NEEDED
// and theirs, found in the payload's library folders) and its dynamic
// loader, the users and the folders haproxy uses. Nothing else of the
// packages: no shell, no package tools.
func haproxyLayer(p *debianPayload, a arch) (layerSpec, error) {
	libs, err := elfClosure(p.Root, "usr/sbin/haproxy", libDirs(a))
	if err != nil {
		return layerSpec{}, fmt.Errorf("the haproxy layer: %w", err)
	}
	files := append([]layerFile{{Name: "usr/local/sbin/haproxy", Src: p.path("/usr/sbin/haproxy"), Mode: 0o755}}, libs...)
	files = append(files,
		layerFile{Name: "etc/passwd", Mode: 0o644, Data: "root:x:0:0:root:/root:/sbin/nologin\nhaproxy:x:" + haproxyUID + ":" + haproxyUID + ":haproxy:/var/lib/haproxy:/sbin/nologin\n"},
		layerFile{Name: "etc/group", Mode: 0o644, Data: "root:x:0:\nhaproxy:x:" + haproxyUID + ":\n"},
		layerFile{Name: "usr/local/etc/haproxy", Dir: true, Mode: 0o755},
		layerFile{Name: "var/lib/haproxy", Dir: true, Mode: 0o755},
		layerFile{Name: "run", Dir: true, Mode: 0o755},
		layerFile{Name: "tmp", Dir: true, Mode: 0o1777},
	)
	return layerSpec{Note: "kprep lab mirror: Debian's haproxy " + p.Versions["haproxy"] + " and the libraries it loads", Files: files}, nil
}

// libDirs are the folders a Debian program's libraries are in, for a.
func libDirs(a arch) []string {
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[a.Go]
	return []string{"usr/lib/" + triplet, "lib/" + triplet, "usr/lib", "lib"}
}

// elfClosure returns layer entries for what the program at root/prog
// needs to start: every shared library it names (DT_NEEDED), and the
// libraries those name, each the first found in dirs under its soname (a
// link there is taken as the file it points to), and the dynamic loader
// at the path the program names (PT_INTERP). A library not found is an
// error: the program would not start.
func elfClosure(root, prog string, dirs []string) ([]layerFile, error) {
	var files []layerFile
	seen := map[string]bool{}
	var missing []string
	var walk func(file string) error
	walk = func(file string) error {
		needed, interp, err := elfNeeds(file)
		if err != nil {
			return err
		}
		if interp != "" && !seen[interp] {
			seen[interp] = true
			_, src, err := findInRoot(root, []string{interp, "/usr" + interp})
			if err != nil {
				return fmt.Errorf("%s's dynamic loader %s: %w", filepath.Base(file), interp, err)
			}
			files = append(files, layerFile{Name: strings.TrimPrefix(interp, "/"), Src: src, Mode: 0o755})
		}
		for _, lib := range needed {
			if seen[lib] {
				continue
			}
			seen[lib] = true
			var candidates []string
			for _, d := range dirs {
				candidates = append(candidates, filepath.Join("/", d, lib))
			}
			found, src, err := findInRoot(root, candidates)
			if err != nil {
				missing = append(missing, filepath.Base(file)+" needs "+lib)
				continue
			}
			// Named where it was found (a link's folder), under its soname.
			files = append(files, layerFile{Name: filepath.Join(strings.TrimPrefix(filepath.Dir(found), "/"), lib), Src: src, Mode: 0o644})
			if err := walk(src); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(filepath.Join(root, prog)); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("libraries not in the payload: %s", strings.Join(missing, "; "))
	}
	return files, nil
}

// elfNeeds reads a program's or library's DT_NEEDED and PT_INTERP.
func elfNeeds(file string) (needed []string, interp string, err error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	if needed, err = f.ImportedLibraries(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", file, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return nil, "", fmt.Errorf("%s: %w", file, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	return needed, interp, nil
}

// findInRoot returns the first existing candidate path (absolute, inside
// root) and the regular file it is or links to, staying inside root.
func findInRoot(root string, candidates []string) (found, file string, err error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", "", err
	}
	for _, c := range candidates {
		p := filepath.Join(root, c)
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return "", "", err
		}
		if rel, err := filepath.Rel(realRoot, real); err != nil || strings.HasPrefix(rel, "..") {
			return "", "", fmt.Errorf("%s links out of the payload (%s)", c, real)
		}
		if fi, err := os.Stat(real); err != nil || !fi.Mode().IsRegular() {
			return "", "", fmt.Errorf("%s is not a file", real)
		}
		return c, real, nil
	}
	return "", "", fmt.Errorf("none of %s in the payload", strings.Join(candidates, ", "))
}
