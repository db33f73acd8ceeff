package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kprep/kprep/test/lab/instance"
)

// recipeKey hashes everything that decides what a cached artifact holds;
// a change to any part makes a new key and so a rebuild.
func recipeKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// lockCache takes the lock on the lab's root file systems in the cache
// folder, so that two lab commands never build the same one at once; the
// returned function releases it. (The mirror locks its own entries with
// .lock in the same folder.)
func lockCache(cacheDir string) (func(), error) {
	return flockFile(filepath.Join(cacheDir, ".rootfs.lock"))
}

// tryLockCache takes the lock on the lab's root file systems if no one
// holds it; ok is false when someone is building one.
func tryLockCache(cacheDir string) (unlock func(), ok bool, err error) {
	return tryFlockFile(filepath.Join(cacheDir, ".rootfs.lock"))
}

// lockVMCache takes the lock on the VM images in the cache folder (and
// their build folder, vmBuildDir): one of those builds takes many minutes,
// so it does not hold the root file systems' lock.
func lockVMCache(cacheDir string) (func(), error) {
	return flockFile(filepath.Join(cacheDir, ".vm.lock"))
}

// tryLockVMCache is lockVMCache without the wait.
func tryLockVMCache(cacheDir string) (unlock func(), ok bool, err error) {
	return tryFlockFile(filepath.Join(cacheDir, ".vm.lock"))
}

// lockMachine waits for and takes the instance's lock, which serialises its
// lab commands: an up racing a down or another up of the same instance
// would leave a mix of both. Other instances have their own.
func lockMachine(id instance.ID) (func(), error) { return flockFile(id.MachineLock()) }

// flockFile waits for an exclusive lock on path (made if missing, with its
// folder); the returned function releases it.
func flockFile(path string) (func(), error) {
	unlock, _, err := lockFile(path, false)
	return unlock, err
}

// tryFlockFile is flockFile without the wait: ok is false while another
// process holds the lock.
func tryFlockFile(path string) (unlock func(), ok bool, err error) {
	return lockFile(path, true)
}

func lockFile(path string, noWait bool) (func(), bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	how := syscall.LOCK_EX
	if noWait {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if noWait && errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, true, nil
}

// buildDir is where artifacts are made before they are moved into the
// cache; Down unmounts what a crashed build left mounted there.
func buildDir(cacheDir string) string { return filepath.Join(cacheDir, ".build") }

// vmBuildDir is buildDir for VM images, under their own lock.
func vmBuildDir(cacheDir string) string { return filepath.Join(cacheDir, ".build-vm") }

// exists reports whether a path exists.
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
