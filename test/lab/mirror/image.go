package mirror

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// imageTime is the creation time written into the lab's images: a fixed
// time keeps their digests the same from build to build.
var imageTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// layerFile is one entry of an image layer.
type layerFile struct {
	Name string // path inside the image, no leading slash
	Src  string `json:",omitempty"` // file on the machine (a keyed cache path stands for its content)
	Data string `json:",omitempty"` // or literal content
	Link string `json:",omitempty"` // or a symlink target
	Dir  bool   `json:",omitempty"`
	Mode int64
}

// layerTar writes the layer as an uncompressed tar, entries sorted, owned by
// root, with one fixed time, so the same inputs give the same digest. A
// folder the files are in gets an entry of its own (0755) unless listed.
func layerTar(files []layerFile) ([]byte, error) {
	all := append([]layerFile(nil), files...)
	listed := map[string]bool{}
	for _, f := range files {
		listed[strings.TrimSuffix(f.Name, "/")] = true
	}
	for _, f := range files {
		for d := filepath.Dir(strings.TrimSuffix(f.Name, "/")); d != "." && d != "/"; d = filepath.Dir(d) {
			if !listed[d] {
				listed[d] = true
				all = append(all, layerFile{Name: d, Dir: true, Mode: 0o755})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range all {
		h := &tar.Header{Name: f.Name, Mode: f.Mode, ModTime: imageTime, Format: tar.FormatPAX}
		var data []byte
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, strings.TrimSuffix(f.Name, "/")+"/"
		case f.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		case f.Src == "":
			data = []byte(f.Data)
			h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
		default:
			var err error
			if data, err = os.ReadFile(f.Src); err != nil {
				return nil, fmt.Errorf("image layer: %w", err)
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// treeFiles lists a folder's content as layer entries below prefix
// (folders, regular files, symlinks with their modes), leaving out the
// paths that start with one of skip (relative, "usr/share/doc/").
func treeFiles(root, prefix string, skip []string) ([]layerFile, error) {
	var files []layerFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		for _, s := range skip {
			if strings.HasPrefix(rel+"/", s) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := layerFile{Name: filepath.Join(prefix, rel), Mode: int64(info.Mode().Perm())}
		switch {
		case d.IsDir():
			f.Dir = true
		case info.Mode()&fs.ModeSymlink != 0:
			if f.Link, err = os.Readlink(p); err != nil {
				return err
			}
			f.Mode = 0o777
		case info.Mode().IsRegular():
			f.Src = p
		default:
			return fmt.Errorf("%s: not a file, folder or link", p)
		}
		files = append(files, f)
		return nil
	})
	return files, err
}
