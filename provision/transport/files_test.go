package transport_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/provision/transport/sshdtest"
)

// writers returns a root connection (the SFTP path) and a sudo user's
// connection (the staged upload plus one sudo command), which must behave
// the same. The server runs on this machine, so the test checks the files
// directly.
func writers(t *testing.T) map[string]*transport.Conn {
	srv := sshdtest.Start(t, sshdtest.Options{})
	users := sshdtest.EnsureUsers(t)
	pw := configFor(srv, users.SudoPassword)
	pw.SSH.SudoPasswordEnv = "PW"
	pw.LookupEnv = env{"PW": users.Password}.lookup
	return map[string]*transport.Conn{
		"root":               dial(t, configFor(srv, "root")),
		users.SudoNoPassword: dial(t, configFor(srv, users.SudoNoPassword)),
		users.SudoPassword:   dial(t, pw),
	}
}

func TestWriteFileKeepsOwnerModeAndBacksUpOnce(t *testing.T) {
	// Not parallel: checkNoLeftovers looks at the shared home folders.
	for user, c := range writers(t) {
		t.Run(user, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			p := filepath.Join(dir, "daemon.json")
			writeLocal(t, p, "original\n", 0o640, 1234, 2345)

			if err := c.WriteFile(ctx, p, []byte("first\n"), transport.WriteOptions{Mode: 0o600}); err != nil {
				t.Fatal(err)
			}
			checkFile(t, p, "first\n", 0o640, 1234, 2345) // the existing file's, not opts.Mode
			checkFile(t, p+transport.BackupSuffix, "original\n", 0o640, 1234, 2345)

			if err := c.WriteFile(ctx, p, []byte("second\n"), transport.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			checkFile(t, p, "second\n", 0o640, 1234, 2345)
			checkFile(t, p+transport.BackupSuffix, "original\n", 0o640, 1234, 2345) // still the original

			// A new file in a missing folder: folder made, opts.Mode used, no backup.
			fresh := filepath.Join(dir, "new", "sub", "kubeadm.yaml")
			if err := c.WriteFile(ctx, fresh, []byte("new"), transport.WriteOptions{Mode: 0o600}); err != nil {
				t.Fatal(err)
			}
			checkFile(t, fresh, "new", 0o600, 0, 0)
			if _, err := os.Lstat(fresh + transport.BackupSuffix); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a new file got a backup (err %v)", err)
			}
			other := filepath.Join(dir, "default-mode")
			if err := c.WriteFile(ctx, other, nil, transport.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			checkFile(t, other, "", 0o644, 0, 0)

			// NoBackup skips the copy.
			nb := filepath.Join(dir, "nobackup")
			writeLocal(t, nb, "x", 0o644, 0, 0)
			if err := c.WriteFile(ctx, nb, []byte("y"), transport.WriteOptions{NoBackup: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(nb + transport.BackupSuffix); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("NoBackup made a backup (err %v)", err)
			}
			checkNoLeftovers(t, dir)
		})
	}
}

func TestWriteFileThroughSymlink(t *testing.T) {
	// Not parallel: checkNoLeftovers looks at the shared home folders.
	for user, c := range writers(t) {
		t.Run(user, func(t *testing.T) {
			// Like /etc/sysconfig/selinux -> ../selinux/config.
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "sysconfig"), 0o755)
			os.MkdirAll(filepath.Join(dir, "selinux"), 0o755)
			real := filepath.Join(dir, "selinux", "config")
			link := filepath.Join(dir, "sysconfig", "selinux")
			writeLocal(t, real, "SELINUX=enforcing\n", 0o644, 0, 0)
			if err := os.Symlink("../selinux/config", link); err != nil {
				t.Fatal(err)
			}
			if err := c.WriteFile(context.Background(), link, []byte("SELINUX=permissive\n"), transport.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			if dest, err := os.Readlink(link); err != nil || dest != "../selinux/config" {
				t.Errorf("the symlink was replaced: readlink = %q, %v", dest, err)
			}
			checkFile(t, real, "SELINUX=permissive\n", 0o644, 0, 0)
			checkFile(t, real+transport.BackupSuffix, "SELINUX=enforcing\n", 0o644, 0, 0)

			got, err := c.ReadFile(context.Background(), link)
			if err != nil || string(got) != "SELINUX=permissive\n" {
				t.Errorf("ReadFile through the link = %q, %v", got, err)
			}
			checkNoLeftovers(t, filepath.Join(dir, "selinux"))
			checkNoLeftovers(t, filepath.Join(dir, "sysconfig"))
		})
	}
}

func TestWriteFileFailureLeavesTargetUntouched(t *testing.T) {
	// Not parallel: checkNoLeftovers looks at the shared home folders.
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr is missing (e2fsprogs)")
	}
	for user, c := range writers(t) {
		t.Run(user, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "locked.conf")
			writeLocal(t, p, "keep me\n", 0o644, 0, 0)
			// An immutable file cannot be renamed over, even by root: the
			// write fails at its last step.
			if out, err := exec.Command("chattr", "+i", p).CombinedOutput(); err != nil {
				t.Skipf("chattr +i: %v: %s (filesystem without attributes)", err, out)
			}
			t.Cleanup(func() { exec.Command("chattr", "-i", p).Run() })
			err := c.WriteFile(context.Background(), p, []byte("replaced"), transport.WriteOptions{})
			if err == nil {
				t.Fatal("WriteFile over an immutable file succeeded")
			}
			mustContain(t, "error", err.Error(), testHost, p)
			checkFile(t, p, "keep me\n", 0o644, 0, 0)
			exec.Command("chattr", "-i", p).Run()
			os.Remove(p + transport.BackupSuffix) // a backup of the untouched original may stay
			checkNoLeftovers(t, dir)

			// A directory is not replaced either.
			sub := filepath.Join(dir, "adir")
			os.Mkdir(sub, 0o755)
			if err := c.WriteFile(context.Background(), sub, []byte("x"), transport.WriteOptions{}); err == nil {
				t.Error("WriteFile over a directory succeeded")
			}
			if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
				t.Errorf("the directory is gone: %v", err)
			}
			checkNoLeftovers(t, dir)
		})
	}
}

func TestWriteFileIsAtomic(t *testing.T) {
	// Not parallel: checkNoLeftovers looks at the shared home folders.
	for user, c := range writers(t) {
		t.Run(user, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "big.conf")
			a := bytes.Repeat([]byte("a"), 512<<10)
			b := bytes.Repeat([]byte("b"), 512<<10)
			writeLocal(t, p, string(a), 0o644, 0, 0)

			// A reader that sees a mix, a short file or no file at all
			// proves a non-atomic write.
			stop := make(chan struct{})
			var reads atomic.Int64
			var bad atomic.Value
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					got, err := os.ReadFile(p)
					reads.Add(1)
					if err != nil || !(bytes.Equal(got, a) || bytes.Equal(got, b)) {
						bad.Store(struct {
							n   int
							err error
						}{len(got), err})
						return
					}
				}
			}()
			for i := range 10 {
				data := a
				if i%2 == 0 {
					data = b
				}
				if err := c.WriteFile(context.Background(), p, data, transport.WriteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			close(stop)
			wg.Wait()
			if v := bad.Load(); v != nil {
				t.Fatalf("a reader saw a partial file: %+v", v)
			}
			if reads.Load() < 10 {
				t.Errorf("only %d reads happened during the writes", reads.Load())
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	for user, c := range writers(t) {
		t.Run(user, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "secret")
			writeLocal(t, p, "only root\x00reads this", 0o600, 0, 0)
			got, err := c.ReadFile(context.Background(), p)
			if err != nil || string(got) != "only root\x00reads this" {
				t.Errorf("ReadFile = %q, %v", got, err)
			}
			_, err = c.ReadFile(context.Background(), filepath.Join(dir, "missing"))
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("ReadFile of a missing file: err = %v, want fs.ErrNotExist", err)
			}
			if err != nil {
				mustContain(t, "error", err.Error(), testHost, "missing")
			}
		})
	}
}

func writeLocal(t *testing.T, p, content string, mode os.FileMode, uid, gid int) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
}

func checkFile(t *testing.T, p, content string, mode os.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", p, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
	if got, _ := os.ReadFile(p); string(got) != content {
		t.Errorf("%s holds %q, want %q", p, got, content)
	}
}

// checkNoLeftovers fails when a temporary file of a write stayed behind,
// in dir or as a staging folder in a test user's home. Tests that call it
// do not run in parallel with other writers.
func checkNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".kprep-tmp-") || strings.Contains(e.Name(), ".kprep-orig-") {
			t.Errorf("temporary file left in %s: %s", dir, e.Name())
		}
	}
	for _, home := range []string{"/home/" + sshdtest.UserSudoNoPassword, "/home/" + sshdtest.UserSudoPassword, "/tmp"} {
		staged, _ := filepath.Glob(filepath.Join(home, ".kprep-stage-*"))
		if len(staged) > 0 {
			t.Errorf("staging folders left: %v", staged)
		}
	}
}
