package mirror

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// debRelationOrder is the order of relation fields in a control file.
var debRelationOrder = []string{"Depends", "Conflicts", "Breaks", "Replaces", "Provides"}

// debControl writes p's DEBIAN/control; installedKiB is the unpacked size.
func debControl(p pkgDef, installedKiB int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: %s\nInstalled-Size: %d\n",
		p.Name, p.Version, p.Arch, p.Packager, installedKiB)
	for _, field := range debRelationOrder {
		if rel := p.Relations[field]; len(rel) > 0 {
			fmt.Fprintf(&b, "%s: %s\n", field, strings.Join(rel, ", "))
		}
	}
	section := p.Section
	if section == "" {
		section = "admin"
	}
	fmt.Fprintf(&b, "Section: %s\nPriority: optional\nHomepage: %s\nDescription: %s\n", section, p.URL, p.Summary)
	for _, l := range strings.Split(p.Description, "\n") {
		if strings.TrimSpace(l) == "" {
			l = "."
		}
		b.WriteString(" " + l + "\n")
	}
	return b.String()
}

// debScriptNames are the maintainer scripts dpkg runs.
var debScriptNames = []string{"preinst", "postinst", "prerm", "postrm"}

// buildDeb builds p with dpkg-deb into the package cache and returns the .deb path.
func buildDeb(ctx context.Context, r *runner, cacheDir string, p pkgDef) (string, error) {
	name := p.fileName(formatDeb)
	dir, err := cached(ctx, filepath.Join(cacheDir, "packages"), p.Arch+"-"+p.key(formatDeb), func(ctx context.Context, tmp string) error {
		r.logf("dpkg-deb %s", name)
		root := filepath.Join(tmp, "root")
		var size int64
		var conffiles []string
		for _, f := range p.Files {
			dst := filepath.Join(root, f.Dst)
			var err error
			switch {
			case f.Link != "":
				if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
					err = os.Symlink(f.Link, dst)
				}
			case f.Src != "":
				err = copyFile(f.Src, dst, f.Mode)
			default:
				err = writeFile(dst, []byte(f.Data), f.Mode)
			}
			if err != nil {
				return fmt.Errorf("stage %s for %s: %w", f.Dst, name, err)
			}
			if st, err := os.Lstat(dst); err == nil {
				size += st.Size()
			}
			if f.Config {
				conffiles = append(conffiles, f.Dst)
			}
		}
		for _, d := range p.Dirs {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				return err
			}
		}
		control := filepath.Join(root, "DEBIAN")
		if err := writeFile(filepath.Join(control, "control"), []byte(debControl(p, (size+1023)/1024)), 0o644); err != nil {
			return err
		}
		if len(conffiles) > 0 {
			if err := writeFile(filepath.Join(control, "conffiles"), []byte(strings.Join(conffiles, "\n")+"\n"), 0o644); err != nil {
				return err
			}
		}
		for _, s := range debScriptNames {
			if body := p.Scripts[s]; body != "" {
				if err := writeFile(filepath.Join(control, s), []byte(body), 0o755); err != nil {
					return err
				}
			}
		}
		// zstd: fast to build, and read by the dpkg of Ubuntu 22.04 and Debian 12.
		if _, err := r.run(ctx, tmp, "dpkg-deb", "--root-owner-group", "-Zzstd", "-z3", "--build", root, filepath.Join(tmp, name)); err != nil {
			return fmt.Errorf("build %s: %w", name, err)
		}
		return os.RemoveAll(root)
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}
