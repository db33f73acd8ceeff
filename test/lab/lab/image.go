package lab

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Helpers that change a root file system from the machine. Every path is
// resolved inside the image through os.Root, so a symlink in the image can
// never make the lab write to the machine's own files.

// imageFS is an open root file system.
type imageFS struct {
	dir  string
	root *os.Root
}

func openImage(dir string) (*imageFS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open root file system %s: %w", dir, err)
	}
	return &imageFS{dir: dir, root: r}, nil
}

func (im *imageFS) Close() error { return im.root.Close() }

// rel turns an absolute path inside the image into one os.Root takes.
func rel(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// writeFile replaces the file at p (a link there is replaced, not
// followed), creating its folder.
func (im *imageFS) writeFile(p string, data []byte, mode fs.FileMode) error {
	name := rel(p)
	if err := im.root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return fmt.Errorf("image %s: create folder of %s: %w", im.dir, p, err)
	}
	if err := im.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image %s: replace %s: %w", im.dir, p, err)
	}
	f, err := im.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return fmt.Errorf("image %s: write %s: %w", im.dir, p, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("image %s: write %s: %w", im.dir, p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("image %s: write %s: %w", im.dir, p, err)
	}
	// The umask may have taken bits away.
	return im.root.Chmod(name, mode)
}

// symlink makes p a link to target, replacing what was there.
func (im *imageFS) symlink(target, p string) error {
	name := rel(p)
	if err := im.root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return fmt.Errorf("image %s: create folder of %s: %w", im.dir, p, err)
	}
	if err := im.root.RemoveAll(name); err != nil {
		return fmt.Errorf("image %s: replace %s: %w", im.dir, p, err)
	}
	if err := im.root.Symlink(target, name); err != nil {
		return fmt.Errorf("image %s: link %s -> %s: %w", im.dir, p, target, err)
	}
	return nil
}

// copyTree copies the embedded folder src into the image at /. Scripts
// (files that start with "#!") become executable.
func (im *imageFS) copyTree(src fs.FS) error {
	return fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if strings.HasPrefix(string(data), "#!") {
			mode = 0o755
		}
		return im.writeFile("/"+p, data, mode)
	})
}

// nspawnBase are the systemd-nspawn flags every lab use shares: no
// registration with a machined the machine does not run, no journal link,
// the image's own resolv.conf and time zone.
var nspawnBase = []string{
	"systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
	"--link-journal=no", "--timezone=off",
}

// imageMachineName names runInImage's container after its folder. Without
// a name nspawn takes the folder's base name, "root" for every host, and
// containers set up side by side shared /run/systemd/nspawn/propagate/root:
// one removed it while another mounted it ("Failed to mount
// .../propagate/root"), seen when 24 of 200 hosts were set up at once.
func imageMachineName(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return fmt.Sprintf("kprep-image-%x", sum[:8])
}

// runInImage runs a shell script inside the root file system dir, in a
// throw-away container (its own /proc and /dev, nothing mounted on the
// machine). withNetwork shares the machine's network (for apt); otherwise
// the container has none. stdin may carry secrets: it is never logged.
func runInImage(ctx context.Context, dir string, withNetwork bool, stdin []byte, script string) ([]byte, error) {
	argv := append([]string{}, nspawnBase...)
	if withNetwork {
		argv = append(argv, "--resolv-conf=copy-host")
	} else {
		argv = append(argv, "--private-network", "--resolv-conf=off")
	}
	argv = append(argv, "--machine="+imageMachineName(dir), "--pipe", "-D", dir, "--", "/bin/sh", "-ec", script)
	out, err := runCmd(ctx, stdin, argv...)
	if err != nil {
		return out, fmt.Errorf("in image %s: %w", dir, err)
	}
	return out, nil
}
