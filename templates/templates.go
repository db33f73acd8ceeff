// Package templates holds the files kprep writes to hosts whose content is
// mostly fixed text (package repo files, systemd units, the CNI manifests
// under cni/), embedded in the binary and filled in with text/template. Files in a structured format
// (daemon.json, containerd's config.toml, unit drop-ins) are not here: they
// are encoded from typed values by the library for their format. The one
// TOML file here, containerd's hosts.toml, is text because containerd tries
// its hosts in the order they are written, which a map encoding would sort
// away; its tests parse what it renders with the TOML library.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"text/template"
)

//go:embed files
var files embed.FS

// parsed holds every template, parsed once when the program starts, so a
// broken template fails the tests rather than a run on a host.
var parsed = mustParseAll()

func mustParseAll() map[string]*template.Template {
	out := map[string]*template.Template{}
	err := fs.WalkDir(files, "files", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		text, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		name := path[len("files/"):]
		t, err := template.New(name).Option("missingkey=error").Parse(string(text))
		if err != nil {
			return err
		}
		out[name] = t
		return nil
	})
	if err != nil {
		panic("templates: " + err.Error())
	}
	return out
}

// Render fills the template name (its path under files/, such as
// "docker-ce.repo") with data. A field the data lacks is an error, never
// an empty string in a file on a host.
func Render(name string, data any) ([]byte, error) {
	t, ok := parsed[name]
	if !ok {
		return nil, fmt.Errorf("templates: no template %q", name)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("templates: %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// Names lists the embedded templates, sorted.
func Names() []string {
	out := make([]string, 0, len(parsed))
	for name := range parsed {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
