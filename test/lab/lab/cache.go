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
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache folder: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(cacheDir, ".rootfs.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock cache folder: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock cache folder %s: %w", cacheDir, err)
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
