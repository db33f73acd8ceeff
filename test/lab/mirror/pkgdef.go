package mirror

import (
	"encoding/json"
	"os"
)

// pkgFile is one file a package installs.
type pkgFile struct {
	Dst    string      `json:"dst"`            // absolute path on the host
	Src    string      `json:"src,omitempty"`  // a file on the machine to copy in
	Data   string      `json:"data,omitempty"` // or literal content
	Link   string      `json:"link,omitempty"` // or a symlink target
	Mode   os.FileMode `json:"mode"`
	Config bool        `json:"config,omitempty"` // %config(noreplace) / dpkg conffile
}

// pkgDef is one package in one format (rpm or deb): its identity, its files
// and its maintainer scripts, enough to build it with rpmbuild or dpkg-deb.
type pkgDef struct {
	Name        string `json:"name"`
	Epoch       string `json:"epoch,omitempty"` // rpm epoch; deb puts it in Version
	Version     string `json:"version"`         // rpm Version, or the full deb version
	Release     string `json:"release,omitempty"`
	Arch        string `json:"arch"` // x86_64 / amd64 style, per format
	Summary     string `json:"summary"`
	Description string `json:"description"`
	License     string `json:"license"`
	URL         string `json:"url"`
	Vendor      string `json:"vendor,omitempty"`
	Packager    string `json:"packager"`
	Section     string `json:"section,omitempty"` // deb only
	Files       []pkgFile
	// Dirs are folders the package owns even when empty.
	Dirs []string `json:"dirs,omitempty"`
	// Relations in the format's own syntax ("containerd.io >= 1.6.24" for
	// rpm, "containerd.io (>= 1.6.24)" for deb), keyed by field name:
	// Requires, Conflicts, Provides, Obsoletes; Depends, Replaces, Breaks.
	Relations map[string][]string `json:"relations,omitempty"`
	// Scripts by their rpm (pre, post, preun, postun) or deb (preinst,
	// postinst, prerm, postrm) name.
	Scripts map[string]string `json:"scripts,omitempty"`
}

// key is the package's recipe key: the definition and the rendered spec or
// control text, so any change to what goes in, to the input files (whose
// cache folders carry their own keys) or to how it is written makes a new
// one. Bump the version when the build commands change.
func (p *pkgDef) key(format string) string {
	data, err := json.Marshal(p)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	rendered := debControl(*p, 0)
	if format == formatRPM {
		rendered = rpmSpec(*p, "@DATA@")
	}
	return recipeKey("package/2", format, string(data), rendered)
}

// fileName is the package file's conventional name, as the real mirrors use:
// docker-ce-26.1.4-1.el9.x86_64.rpm, docker-ce_26.1.4-1~ubuntu.22.04~jammy_amd64.deb.
func (p *pkgDef) fileName(format string) string {
	if format == "rpm" {
		return p.Name + "-" + p.Version + "-" + p.Release + "." + p.Arch + ".rpm"
	}
	return p.Name + "_" + debVersionNoEpoch(p.Version) + "_" + p.Arch + ".deb"
}

// debVersionNoEpoch drops a deb version's "5:" epoch, as file names do.
func debVersionNoEpoch(v string) string {
	for i, c := range v {
		if c == ':' {
			return v[i+1:]
		}
		if c < '0' || c > '9' {
			break
		}
	}
	return v
}
