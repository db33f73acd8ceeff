package mirror

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// rpmScriptOrder is the order of scriptlet sections in a spec.
var rpmScriptOrder = []string{"pre", "post", "preun", "postun"}

// rpmSpec writes the spec that packages p from files already on the
// machine: nothing is compiled, nothing is stripped, and AutoReqProv is off
// so the package asks only for what p lists (lab hosts are Debian under
// the hood, and their rpm database knows none of the EL base packages).
// dataDir holds p's literal files, written there by writeDataFiles.
func rpmSpec(p pkgDef, dataDir string) string {
	var b strings.Builder
	b.WriteString(`%global debug_package %{nil}
%define __spec_install_post %{nil}
%define _build_id_links none
%define _binary_payload w3T0.zstdio
AutoReqProv: no
`)
	fmt.Fprintf(&b, "Name: %s\n", p.Name)
	if p.Epoch != "" {
		fmt.Fprintf(&b, "Epoch: %s\n", p.Epoch)
	}
	fmt.Fprintf(&b, "Version: %s\nRelease: %s\nSummary: %s\nLicense: %s\nURL: %s\n", p.Version, p.Release, p.Summary, p.License, p.URL)
	if p.Vendor != "" {
		fmt.Fprintf(&b, "Vendor: %s\n", p.Vendor)
	}
	fmt.Fprintf(&b, "Packager: %s\n", p.Packager)
	for _, field := range []string{"Requires", "Provides", "Conflicts", "Obsoletes"} {
		for _, r := range p.Relations[field] {
			fmt.Fprintf(&b, "%s: %s\n", field, r)
		}
	}
	fmt.Fprintf(&b, "\n%%description\n%s\n\n%%install\n", p.Description)
	for i, f := range p.Files {
		dst := "%{buildroot}" + f.Dst
		switch {
		case f.Link != "":
			fmt.Fprintf(&b, "mkdir -p '%s'\nln -s '%s' '%s'\n", filepath.Dir(dst), f.Link, dst)
		case f.Src != "":
			fmt.Fprintf(&b, "install -D -p -m %04o '%s' '%s'\n", f.Mode, f.Src, dst)
		default:
			fmt.Fprintf(&b, "install -D -p -m %04o '%s' '%s'\n", f.Mode, dataFile(dataDir, i), dst)
		}
	}
	for _, d := range p.Dirs {
		fmt.Fprintf(&b, "mkdir -p '%%{buildroot}%s'\n", d)
	}
	b.WriteString("\n%files\n")
	for _, d := range p.Dirs {
		fmt.Fprintf(&b, "%%dir %%attr(0755,root,root) %s\n", d)
	}
	for _, f := range p.Files {
		switch {
		case f.Link != "":
			fmt.Fprintf(&b, "%s\n", f.Dst)
		case f.Config:
			fmt.Fprintf(&b, "%%config(noreplace) %%attr(%04o,root,root) %s\n", f.Mode, f.Dst)
		default:
			fmt.Fprintf(&b, "%%attr(%04o,root,root) %s\n", f.Mode, f.Dst)
		}
	}
	for _, s := range rpmScriptOrder {
		if body := p.Scripts[s]; body != "" {
			fmt.Fprintf(&b, "\n%%%s -p <lua>\n%s", s, luaShell(body))
		}
	}
	return b.String()
}

// luaShell wraps a shell scriptlet in a Lua one that runs it with /bin/sh,
// passing the install count as $1 as rpm does. A shell scriptlet makes
// rpmbuild add "Requires: /bin/sh", which no package in a lab host's rpm
// database provides (the hosts are Debian underneath: /bin/sh is there,
// but dpkg owns it), so yum would refuse the package; rpm runs Lua
// scriptlets itself and adds no such requirement.
func luaShell(script string) string {
	return "rpm.execute(\"/bin/sh\", \"-c\", [==[\n" + script + "]==], \"sh\", tostring(arg[2]))\n"
}

// dataFile is where a package's i-th literal file is written before packaging.
func dataFile(dataDir string, i int) string {
	return filepath.Join(dataDir, fmt.Sprintf("file-%d", i))
}

// writeDataFiles writes p's literal files into dataDir.
func writeDataFiles(p pkgDef, dataDir string) error {
	for i, f := range p.Files {
		if f.Src == "" && f.Link == "" {
			if err := writeFile(dataFile(dataDir, i), []byte(f.Data), f.Mode); err != nil {
				return err
			}
		}
	}
	return nil
}

// buildRPM builds p with rpmbuild, signs it with s, and returns the .rpm's
// path in the package cache.
func buildRPM(ctx context.Context, r *runner, cacheDir string, p pkgDef, s *signer) (string, error) {
	name := p.fileName(formatRPM)
	key := p.Arch + "-" + recipeKey(p.key(formatRPM), s.fingerprint)
	dir, err := cached(ctx, filepath.Join(cacheDir, "packages"), key, func(ctx context.Context, tmp string) error {
		r.logf("rpmbuild %s", name)
		data := filepath.Join(tmp, "data")
		if err := writeDataFiles(p, data); err != nil {
			return err
		}
		spec := filepath.Join(tmp, p.Name+".spec")
		if err := writeFile(spec, []byte(rpmSpec(p, data)), 0o644); err != nil {
			return err
		}
		_, err := r.run(ctx, tmp, "rpmbuild", "-bb", "--nodeps", "--target", p.Arch,
			"--define", "_topdir "+filepath.Join(tmp, "top"),
			"--define", "_rpmdir "+tmp,
			"--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
			spec)
		if err != nil {
			return fmt.Errorf("build %s: %w", name, err)
		}
		if _, err := os.Stat(filepath.Join(tmp, name)); err != nil {
			return fmt.Errorf("rpmbuild made no %s: %w", name, err)
		}
		if err := s.signRPMs(ctx, r, filepath.Join(tmp, name)); err != nil {
			return err
		}
		return os.RemoveAll(filepath.Join(tmp, "top"))
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}
