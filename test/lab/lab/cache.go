package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
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

// machineLockPath serialises lab commands on this machine: a lab is a
// machine-wide thing (one bridge, fixed addresses), and an up racing a
// down or another up would leave a mix of both.
const machineLockPath = "/run/lock/kprep-lab.lock"

// lockMachine waits for and takes the machine's lab lock.
func lockMachine() (func(), error) { return flockFile(machineLockPath) }

// flockFile waits for an exclusive lock on path (made if missing, with its
// folder); the returned function releases it.
func flockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// buildDir is where artifacts are made before they are moved into the
// cache; Down unmounts what a crashed build left mounted there.
func buildDir(cacheDir string) string { return filepath.Join(cacheDir, ".build") }

// exists reports whether a path exists.
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
