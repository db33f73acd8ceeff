package mirror

import (
	"debug/elf"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Checks that programs taken from Debian packages can run where they are
// put, read from their ELF headers (no need to run them, so they work for
// a foreign architecture too).

// glibcNeeded is the newest GLIBC_x.y symbol version a program imports,
// as [major, minor] ({0, 0} for a static program).
func glibcNeeded(file string) ([2]int, error) {
	f, err := elf.Open(file)
	if err != nil {
		return [2]int{}, err
	}
	defer f.Close()
	syms, err := f.ImportedSymbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return [2]int{}, fmt.Errorf("%s: %w", file, err)
	}
	var newest [2]int
	for _, s := range syms {
		v, ok := parseGlibc(s.Version)
		if ok && (v[0] > newest[0] || v[0] == newest[0] && v[1] > newest[1]) {
			newest = v
		}
	}
	return newest, nil
}

// parseGlibc reads "GLIBC_2.34" (or a glibc version "2.36") as {2, 34}.
func parseGlibc(s string) ([2]int, bool) {
	s = strings.TrimPrefix(s, "GLIBC_")
	major, rest, ok := strings.Cut(s, ".")
	if !ok {
		return [2]int{}, false
	}
	minor, _, _ := strings.Cut(rest, ".")
	a, err1 := strconv.Atoi(major)
	b, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return [2]int{}, false
	}
	return [2]int{a, b}, true
}

// checkRunsOnHosts checks that the programs the packages take from
// Debian trixie need no newer glibc than the hosts' userland has (the
// libc6 of the bookworm iptables payload, the one the hosts run): a
// package must not install a program that cannot start.
func checkRunsOnHosts(p payload) error {
	hostGlibc, ok := parseGlibc(upstreamOf(p.deb(iptablesSet.Name).Versions["libc6"]))
	if !ok {
		return fmt.Errorf("cannot read the hosts' glibc version from libc6 %q", p.deb(iptablesSet.Name).Versions["libc6"])
	}
	trixie := p.deb(trixieSet.Name)
	for _, prog := range []string{"/usr/sbin/dockerd", "/usr/sbin/docker-proxy", "/usr/bin/docker", "/usr/bin/containerd",
		"/usr/bin/containerd-shim", "/usr/bin/containerd-shim-runc-v1", "/usr/bin/containerd-shim-runc-v2", "/usr/bin/ctr"} {
		need, err := glibcNeeded(trixie.path(prog))
		if err != nil {
			return err
		}
		if need[0] > hostGlibc[0] || need[0] == hostGlibc[0] && need[1] > hostGlibc[1] {
			return fmt.Errorf("%s of Debian trixie needs glibc %d.%d, the hosts' bookworm userland has %d.%d: it cannot run there",
				prog, need[0], need[1], hostGlibc[0], hostGlibc[1])
		}
	}
	return nil
}

// layerNames lists a layer's entries, for the key of its check.
func layerNames(l layerSpec) string {
	names := make([]string, len(l.Files))
	for i, f := range l.Files {
		names[i] = f.Name
	}
	return strings.Join(names, "\n")
}

// checkLayerLibs checks that every shared library an ELF program or
// library of the layer needs (DT_NEEDED) is in the layer, and that each is
// built for the image's architecture: an image whose iptables cannot
// load its libraries fails here, not in a cluster.
func checkLayerLibs(l layerSpec, a arch) error {
	have := map[string]bool{}
	for _, f := range l.Files {
		if !f.Dir {
			have[path.Base(f.Name)] = true
		}
	}
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[a.Go]
	var missing []string
	for _, f := range l.Files {
		if f.Src == "" {
			continue
		}
		e, err := elf.Open(f.Src)
		if err != nil {
			continue // not an ELF file
		}
		libs, err := e.ImportedLibraries()
		m := e.Machine
		e.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Src, err)
		}
		if m != machine {
			return fmt.Errorf("%s in the layer %q is built for %s, the image for %s", f.Name, l.Note, m, a.Go)
		}
		for _, lib := range libs {
			if !have[lib] {
				missing = append(missing, f.Name+" needs "+lib)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the layer %q lacks libraries: %s", l.Note, strings.Join(missing, "; "))
	}
	return nil
}
