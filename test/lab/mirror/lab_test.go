package mirror

import (
	"context"
	"os"
	"testing"
	"time"
)

// labCacheDir is the cache the lab tests build into: KPREP_LAB_CACHE, or
// the lab's default, so the tests share the lab's cached artifacts.
func labCacheDir() string {
	if d := os.Getenv("KPREP_LAB_CACHE"); d != "" {
		return d
	}
	return DefaultCacheDir
}

// needLab skips a test unless KPREP_LAB=1: these tests build the whole
// mirror (minutes when cold) and need root and the Debian tools.
func needLab(t *testing.T) {
	t.Helper()
	if os.Getenv("KPREP_LAB") != "1" {
		t.Skip("set KPREP_LAB=1 to build the real mirror (root, apt, rpmbuild, minutes when cold)")
	}
}

// labTree builds the mirror once for all lab tests of this run.
func labTree(t *testing.T) *Tree {
	t.Helper()
	needLab(t)
	treeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
		defer cancel()
		start := time.Now()
		builtTree, buildErr = Build(ctx, Options{CacheDir: labCacheDir(), Log: testLog{t}})
		t.Logf("Build took %s", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtTree
}
