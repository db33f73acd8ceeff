package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"time"

	"github.com/pkg/sftp"
)

// defaultFileMode is the mode of a new file whose WriteOptions name none.
const defaultFileMode fs.FileMode = 0o644

// statusMissing is the exit status of ReadFile's sudo command for a missing
// file.
const statusMissing = 44

// WriteFile replaces the file at p (an absolute path) with data so that a
// reader sees either the old or the new content, never a mix: the data goes
// to a temporary file in the same folder, which is renamed over the target.
// An existing file keeps its owner and mode and, the first time kprep
// changes it, is copied to p+BackupSuffix. A symlink stays a symlink: the
// file it points to is replaced. A missing parent folder is created. On
// failure the target is untouched and the temporary files are gone.
func (c *Conn) WriteFile(ctx context.Context, p string, data []byte, opts WriteOptions) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("%s: write %s: the path must be absolute", c.host, p)
	}
	if opts.Mode == 0 {
		opts.Mode = defaultFileMode
	}
	begin := time.Now()
	var err error
	if c.sudo == sudoNone {
		err = c.writeOverSFTP(ctx, p, data, opts)
	} else {
		err = c.writeWithSudo(ctx, p, data, opts)
	}
	if err == nil {
		c.files.Add(1)
	} else if _, isCmd := errors.AsType[*CommandError](err); !isCmd {
		err = fmt.Errorf("%s: write %s: %w", c.host, p, err)
	}
	if c.cfg.LogCommand != nil && c.sudo == sudoNone {
		status := 0
		if err != nil {
			status = -1
		}
		c.cfg.LogCommand(CommandLog{Host: c.host, Line: fmt.Sprintf("sftp write %s (%d bytes)", p, len(data)),
			Duration: time.Since(begin), Status: status, Err: err})
	}
	return err
}

// writeOverSFTP does the whole write through SFTP, for a login user who
// needs no sudo (root, usually).
func (c *Conn) writeOverSFTP(ctx context.Context, p string, data []byte, opts WriteOptions) (err error) {
	cl, err := c.sftpClient()
	if err != nil {
		return err
	}
	target, err := resolveSymlinks(cl, p)
	if err != nil {
		return err
	}
	old, err := cl.Stat(target)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if old != nil && !old.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", target)
	}
	dir := path.Dir(target)
	if old == nil {
		if err := cl.MkdirAll(dir); err != nil {
			return fmt.Errorf("create folder %s: %w", dir, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	tmp := path.Join(dir, "."+path.Base(target)+".kprep-tmp-"+randomHex(6))
	defer func() {
		if err != nil {
			cl.Remove(tmp)
		}
	}()
	mode, owner := opts.Mode, (*sftp.FileStat)(nil)
	if old != nil {
		mode, owner = keptMode(old), old.Sys().(*sftp.FileStat)
	}
	if err := uploadFile(cl, tmp, bytes.NewReader(data), mode, owner); err != nil {
		return err
	}
	if old != nil && !opts.NoBackup {
		if err := backupOnce(cl, target, old); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := cl.PosixRename(tmp, target); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, target, err)
	}
	return nil
}

// uploadFile creates name (which must not exist), writes r to it, syncs it
// and gives it mode and owner (nil: the SFTP user's). It is made 0600
// before any data arrives, since SFTP creates files with the server's
// umask and the content may be secret.
func uploadFile(cl *sftp.Client, name string, r io.Reader, mode fs.FileMode, owner *sftp.FileStat) error {
	f, err := cl.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	if _, err := f.ReadFrom(r); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil && !isUnsupported(err) {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	// chown before chmod: chown clears the setuid and setgid bits.
	if owner != nil {
		if err := f.Chown(int(owner.UID), int(owner.GID)); err != nil {
			return fmt.Errorf("chown %s: %w", name, err)
		}
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	return f.Close()
}

// backupOnce copies target to target+BackupSuffix unless that exists. The
// copy is made under a temporary name and hard-linked into place, which
// fails rather than overwrite a backup another writer made meanwhile: the
// backup is the original, never a later version.
func backupOnce(cl *sftp.Client, target string, old fs.FileInfo) error {
	backup := target + BackupSuffix
	if _, err := cl.Lstat(backup); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	src, err := cl.Open(target)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path.Join(path.Dir(target), "."+path.Base(target)+".kprep-orig-"+randomHex(6))
	defer cl.Remove(tmp)
	if err := uploadFile(cl, tmp, src, keptMode(old), old.Sys().(*sftp.FileStat)); err != nil {
		return fmt.Errorf("back up %s: %w", target, err)
	}
	st := old.Sys().(*sftp.FileStat)
	if err := cl.Chtimes(tmp, time.Unix(int64(st.Atime), 0), old.ModTime()); err != nil {
		return fmt.Errorf("back up %s: %w", target, err)
	}
	if err := cl.Link(tmp, backup); err != nil {
		if _, statErr := cl.Lstat(backup); statErr == nil {
			return nil
		}
		return fmt.Errorf("back up %s: %w", target, err)
	}
	return nil
}

// keptMode is the part of a file's mode a replacement keeps.
func keptMode(fi fs.FileInfo) fs.FileMode {
	return fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// resolveSymlinks follows p while it is a symlink, so the file it points to
// is replaced and the link stays. A dangling link resolves to where it
// points, which then is created.
func resolveSymlinks(cl *sftp.Client, p string) (string, error) {
	for range 40 { // the kernel's own limit
		fi, err := cl.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		dest, err := cl.ReadLink(p)
		if err != nil {
			return "", err
		}
		if !path.IsAbs(dest) {
			dest = path.Join(path.Dir(p), dest)
		}
		p = dest
	}
	return "", fmt.Errorf("too many levels of symbolic links at %s", p)
}

// writeWithSudo uploads data to a private staging folder the login user
// owns, then one sudo command puts it in place as root (installScript).
func (c *Conn) writeWithSudo(ctx context.Context, p string, data []byte, opts WriteOptions) error {
	cl, err := c.sftpClient()
	if err != nil {
		return err
	}
	dir, err := c.stagingDir(cl)
	if err != nil {
		return err
	}
	staged := path.Join(dir, "data")
	if err := uploadFile(cl, staged, bytes.NewReader(data), 0o600, nil); err != nil {
		cl.Remove(staged)
		cl.RemoveDirectory(dir)
		return err
	}
	_, err = c.run(ctx, Command{Line: installScript(staged, p, opts)},
		runOptions{show: fmt.Sprintf("install %s (%d bytes)", p, len(data))})
	if err != nil {
		// The script removes the staging folder itself; this is for a
		// script that never ran (sudo refused, connection lost).
		cl.Remove(staged)
		cl.RemoveDirectory(dir)
	}
	return err
}

// stagingDir makes a new folder only the login user can enter, in its home
// folder or else in /tmp. It is made, then closed to others, before any
// file is in it, so nobody else can open what goes in.
func (c *Conn) stagingDir(cl *sftp.Client) (string, error) {
	name := ".kprep-stage-" + randomHex(8)
	var bases []string
	if home, err := cl.Getwd(); err == nil {
		bases = append(bases, home)
	}
	bases = append(bases, "/tmp")
	var firstErr error
	for _, base := range bases {
		dir := path.Join(base, name)
		err := cl.Mkdir(dir)
		if err == nil {
			if err = cl.Chmod(dir, 0o700|fs.ModeDir); err == nil {
				return dir, nil
			}
			cl.RemoveDirectory(dir)
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("create staging folder %s: %w", dir, err)
		}
	}
	return "", firstErr
}

// installScript is the root side of writeWithSudo, one round trip: resolve
// symlinks, create the parent folder, copy the staged data to a temporary
// file beside the target, give it the target's owner and mode (or the new
// file's mode), back the original up once, rename over the target, and
// remove the staging folder whatever happens.
func installScript(staged, target string, opts WriteOptions) string {
	backup := "1"
	if opts.NoBackup {
		backup = "0"
	}
	return `set -e
s=` + shellQuote(staged) + `; t=` + shellQuote(target) + `; keep=` + backup + `
tmp=; bt=
trap 'rm -f -- "$s" ${tmp:+"$tmp"} ${bt:+"$bt"}; rmdir -- "${s%/*}" 2>/dev/null || :' EXIT
if [ -L "$t" ]; then r=$(readlink -f -- "$t") && [ -n "$r" ] && t=$r; fi
d=${t%/*}; d=${d:-/}; b=${t##*/}
if [ -e "$t" ] && [ ! -f "$t" ]; then echo "kprep: $t is not a regular file" >&2; exit 1; fi
[ -d "$d" ] || mkdir -p -- "$d"
tmp=$(mktemp -- "$d/.$b.kprep-tmp-XXXXXXXX")
dd if="$s" of="$tmp" bs=65536 conv=fsync status=none
if [ -e "$t" ]; then
  chown --reference="$t" -- "$tmp"
  chmod --reference="$t" -- "$tmp"
  if [ "$keep" = 1 ] && [ ! -e "$t` + BackupSuffix + `" ] && [ ! -L "$t` + BackupSuffix + `" ]; then
    bt=$(mktemp -- "$d/.$b.kprep-orig-XXXXXXXX")
    cp -p -- "$t" "$bt"
    ln -- "$bt" "$t` + BackupSuffix + `" || [ -e "$t` + BackupSuffix + `" ]
  fi
else
  chmod ` + strconv.FormatUint(uint64(opts.Mode.Perm()), 8) + ` -- "$tmp"
fi
mv -f -- "$tmp" "$t"
tmp=`
}

// ReadFile returns the content of the file at p, following symlinks. A
// missing file gives an error that matches fs.ErrNotExist.
func (c *Conn) ReadFile(ctx context.Context, p string) ([]byte, error) {
	if c.sudo != sudoNone {
		res, err := c.run(ctx, Command{Line: "f=" + shellQuote(p) + "; [ -e \"$f\" ] || exit " +
			strconv.Itoa(statusMissing) + `; exec cat -- "$f"`}, runOptions{show: "read " + p})
		if ce, ok := errors.AsType[*CommandError](err); ok && ce.Status == statusMissing {
			return nil, &fs.PathError{Op: "read", Path: c.host + ":" + p, Err: fs.ErrNotExist}
		}
		return res.Stdout, err
	}
	cl, err := c.sftpClient()
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", c.host, p, err)
	}
	f, err := cl.Open(p)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: c.host + ":" + p, Err: err}
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: c.host + ":" + p, Err: err}
	}
	return b, nil
}

// sftpClient opens the connection's SFTP client on first use; later calls
// share it.
func (c *Conn) sftpClient() (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	select {
	case <-c.closing:
		return nil, errors.New("the connection was closed")
	default:
	}
	cl, err := sftp.NewClient(c.client, sftp.UseConcurrentWrites(true))
	if err != nil {
		return nil, c.connectionError("start sftp", err)
	}
	c.sftp = cl
	return cl, nil
}

func isUnsupported(err error) bool {
	var status *sftp.StatusError
	return errors.As(err, &status) && status.FxCode() == sftp.ErrSSHFxOpUnsupported
}
