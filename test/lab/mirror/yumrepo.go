package mirror

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// yumRepo is one yum repository in the tree.
type yumRepo struct {
	Dir      string   // repo root under Tree.Root (holds repodata/)
	Sub      string   // folder under Dir for the rpms ("Packages", "x86_64")
	RPMs     []string // rpm files in the package cache
	Signer   *signer  // signs repomd.xml; nil leaves it unsigned
	ServeKey bool     // also serve the public key as repodata/repomd.xml.key (pkgs.k8s.io does)
}

// makeYumRepo links the rpms in and writes the repo's metadata with
// createrepo_c (gzip-compressed, readable by yum 3 and dnf 4 alike), then
// signs repomd.xml as repomd.xml.asc so repo_gpgcheck=1 works too.
func makeYumRepo(ctx context.Context, r *runner, root string, repo yumRepo) error {
	dir := filepath.Join(root, repo.Dir)
	pkgDir := filepath.Join(dir, repo.Sub)
	if err := os.MkdirAll(pkgDir, 0o755); err != nil {
		return err
	}
	for _, f := range repo.RPMs {
		if err := linkOrCopy(f, filepath.Join(pkgDir, filepath.Base(f))); err != nil {
			return err
		}
	}
	if _, err := r.run(ctx, dir, "createrepo_c", "--quiet", "--general-compress-type=gz", "--no-database", dir); err != nil {
		return fmt.Errorf("yum repo %s: %w", repo.Dir, err)
	}
	if repo.Signer == nil {
		return nil
	}
	repomd := filepath.Join(dir, "repodata", "repomd.xml")
	if err := repo.Signer.detachSign(ctx, r, repomd, repomd+".asc"); err != nil {
		return fmt.Errorf("sign %s: %w", repomd, err)
	}
	if repo.ServeKey {
		return writeFile(repomd+".key", repo.Signer.publicKey, 0o644)
	}
	return nil
}

// linkOrCopy hard-links src to dst (the tree and the package cache share a
// disk, and the same rpm sits in centos/8 and rhel/8), copying if it cannot.
func linkOrCopy(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return copyFile(src, dst, 0o644)
}
