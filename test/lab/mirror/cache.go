package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// recipeKey hashes the parts of a recipe (texts, versions, keys of the
// stages it uses) into a short name for its cache entry: the same recipe
// finds the same entry, any change makes a new one. Each stage's first part
// names it with a version ("tree/1"): bump that version when the stage's
// code changes in a way its other parts do not show.
func recipeKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// cached returns dir/key, building it first with build if it is missing.
// build fills a temporary sibling folder that is renamed into place only
// when it succeeds, so an interrupted build never leaves a half entry that
// a later run would trust.
func cached(ctx context.Context, dir, key string, build func(ctx context.Context, tmp string) error) (string, error) {
	final := filepath.Join(dir, key)
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache folder: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, key+".tmp-")
	if err != nil {
		return "", fmt.Errorf("cache folder: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after the rename; cleans up a failure
	if err := build(ctx, tmp); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("cache entry %s: %w", final, err)
	}
	return final, nil
}

// cachedCheck runs check once per recipe: a passed check leaves an empty
// entry in CACHE/checks/, so a warm build skips it. The parts name what
// is checked (keyed cache folders stand for their content).
func cachedCheck(ctx context.Context, cacheDir, name string, check func() error, parts ...string) error {
	_, err := cached(ctx, filepath.Join(cacheDir, "checks"), name+"-"+recipeKey(append([]string{name}, parts...)...),
		func(context.Context, string) error { return check() })
	return err
}

// sortedKeys returns a map's keys in order, so recipes hash the same each run.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// copyFile copies src to dst with mode, making dst's folder.
func copyFile(src, dst string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode) // umask must not narrow the mode
}

// writeFile writes data to path with mode, making its folder.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}
