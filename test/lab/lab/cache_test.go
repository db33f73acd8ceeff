package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A cached base and layer are taken without the root file systems' lock,
// so neither a build of another personality (which holds it) nor a mirror
// build (which holds the mirror's) keeps PersonalityLayers or a --no-mirror
// up waiting. Under the old locking this test fails as soon as
// PersonalityLayers queues for the lock.
func TestCachedLayersNeedNoLock(t *testing.T) {
	cache := t.TempDir()
	base := baseDir(cache, baseKey())
	p, err := lookupPersonality("ubuntu22")
	if err != nil {
		t.Fatal(err)
	}
	layer := layerDir(cache, p, layerKey(p, baseKey()))
	for _, f := range []string{filepath.Join(base, "done"), filepath.Join(layer, "done")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Others at work: a root file system build and a mirror build.
	rootfsLock := filepath.Join(cache, ".rootfs.lock")
	for _, lock := range []string{rootfsLock, filepath.Join(cache, ".lock")} {
		unlock, err := flockFile(lock)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
	}

	type result struct {
		layers []string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		layers, err := PersonalityLayers(context.Background(), Options{CacheDir: cache, StateDir: t.TempDir()}, "ubuntu22")
		done <- result{layers, err}
	}()
	for {
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatal(r.err)
			}
			want := []string{filepath.Join(layer, "upper"), filepath.Join(base, "rootfs")}
			if !slices.Equal(r.layers, want) {
				t.Fatalf("layers %q, want %q", r.layers, want)
			}
			return
		default:
		}
		if waiting, err := waitsForLock(os.Getpid(), rootfsLock); err != nil {
			t.Fatal(err)
		} else if waiting {
			t.Fatal("PersonalityLayers waits for the root file systems' lock although the cache holds what it needs")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A personality the cache lacks is not taken from it.
func TestCachedLayersMissALayer(t *testing.T) {
	cache := t.TempDir()
	base := baseDir(cache, baseKey())
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := cachedLayers(Options{CacheDir: cache}, []string{"ubuntu22"}); ok {
		t.Fatal("cachedLayers found a layer that was never built")
	}
}

// waitsForLock reports whether process pid is queued in /proc/locks for
// a flock on path.
func waitsForLock(pid int, path string) (bool, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return false, err
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false, err
	}
	inode := fmt.Sprintf(":%d", st.Ino)
	for _, line := range strings.Split(string(locks), "\n") {
		f := strings.Fields(line)
		// "7: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF"
		if len(f) >= 7 && f[1] == "->" && f[2] == "FLOCK" && f[5] == fmt.Sprint(pid) && strings.HasSuffix(f[6], inode) {
			return true, nil
		}
	}
	return false, nil
}
