package mirror

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// aptRepo is one apt repository in the tree: a suite repo (dists/SUITE/...)
// like download.docker.com, or a flat repo (Suite "") like pkgs.k8s.io.
type aptRepo struct {
	Dir       string   // repo root under Tree.Root (the URL in the sources line)
	Suite     string   // "jammy"; "" for a flat repo
	Component string   // "stable" (suite repos only)
	PoolDir   string   // folder under Dir for the debs
	Debs      []string // deb files in the package cache
	Arch      string   // dpkg architecture of the index
	Origin    string   // Release's Origin and Label
	Label     string
	Signer    *signer
	// KeyPath, if set, is where the public key is served, relative to Dir
	// ("Release.key" as pkgs.k8s.io has it).
	KeyPath string
}

// makeAptRepo links the debs into the pool, writes Packages, Packages.gz
// and Release, and signs Release as InRelease and Release.gpg.
func makeAptRepo(ctx context.Context, r *runner, root string, repo aptRepo, now time.Time) error {
	dir := filepath.Join(root, repo.Dir)
	var stanzas []string
	for _, f := range repo.Debs {
		rel := filepath.ToSlash(filepath.Join(repo.PoolDir, filepath.Base(f)))
		dst := filepath.Join(dir, rel)
		if err := linkOrCopy(f, dst); err != nil {
			return err
		}
		control, err := r.run(ctx, dir, "dpkg-deb", "--field", dst)
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		st, err := packagesStanza(string(control), rel, dst)
		if err != nil {
			return err
		}
		stanzas = append(stanzas, st)
	}
	sort.Strings(stanzas) // Package is each stanza's first field
	packages := []byte(strings.Join(stanzas, "\n"))

	indexDir := dir // flat repo: indexes beside the pool
	indexPrefix := ""
	if repo.Suite != "" {
		indexPrefix = repo.Component + "/binary-" + repo.Arch + "/"
		indexDir = filepath.Join(dir, "dists", repo.Suite)
	}
	gz, err := gzipBytes(packages, gzip.BestCompression)
	if err != nil {
		return err
	}
	indexes := map[string][]byte{indexPrefix + "Packages": packages, indexPrefix + "Packages.gz": gz}
	for name, data := range indexes {
		if err := writeFile(filepath.Join(indexDir, name), data, 0o644); err != nil {
			return err
		}
	}
	release := filepath.Join(indexDir, "Release")
	if err := writeFile(release, []byte(releaseFile(repo, now, indexes)), 0o644); err != nil {
		return err
	}
	if err := repo.Signer.clearSign(ctx, r, release, filepath.Join(indexDir, "InRelease")); err != nil {
		return fmt.Errorf("sign %s: %w", release, err)
	}
	if err := repo.Signer.detachSign(ctx, r, release, release+".gpg"); err != nil {
		return fmt.Errorf("sign %s: %w", release, err)
	}
	if repo.KeyPath != "" {
		return writeFile(filepath.Join(dir, repo.KeyPath), repo.Signer.publicKey, 0o644)
	}
	return nil
}

// packagesStanza turns a deb's control fields into its Packages entry:
// the fields, then where the file is and its size and digests.
func packagesStanza(control, filename, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	md, s1, s256 := md5.New(), sha1.New(), sha256.New()
	size, err := io.Copy(io.MultiWriter(md, s1, s256), f)
	if err != nil {
		return "", fmt.Errorf("digest %s: %w", path, err)
	}
	control = strings.TrimRight(control, "\n") + "\n"
	return control + fmt.Sprintf("Filename: %s\nSize: %d\nMD5sum: %s\nSHA1: %s\nSHA256: %s\n",
		filename, size, hex.EncodeToString(md.Sum(nil)), hex.EncodeToString(s1.Sum(nil)), hex.EncodeToString(s256.Sum(nil))), nil
}

// releaseFile writes a Release file listing indexes (path relative to the
// Release file → content) with their sizes and digests.
func releaseFile(repo aptRepo, now time.Time, indexes map[string][]byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Origin: %s\nLabel: %s\n", repo.Origin, repo.Label)
	if repo.Suite != "" {
		fmt.Fprintf(&b, "Suite: %s\nCodename: %s\n", repo.Suite, repo.Suite)
	}
	fmt.Fprintf(&b, "Date: %s\nArchitectures: %s\n", now.UTC().Format(time.RFC1123), repo.Arch)
	if repo.Suite != "" {
		fmt.Fprintf(&b, "Components: %s\n", repo.Component)
	}
	fmt.Fprintf(&b, "Description: %s (kprep lab)\n", repo.Label)
	names := sortedKeys(indexes)
	for _, sum := range []struct {
		field string
		h     func() hash.Hash
	}{{"MD5Sum", md5.New}, {"SHA1", sha1.New}, {"SHA256", sha256.New}, {"SHA512", sha512.New}} {
		b.WriteString(sum.field + ":\n")
		for _, n := range names {
			h := sum.h()
			h.Write(indexes[n])
			fmt.Fprintf(&b, " %s %d %s\n", hex.EncodeToString(h.Sum(nil)), len(indexes[n]), n)
		}
	}
	return b.String()
}

// gzipBytes compresses data at a gzip level with no name or time in the
// header, so the same input always gives the same bytes (and digest).
func gzipBytes(data []byte, level int) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
