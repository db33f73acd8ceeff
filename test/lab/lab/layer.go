package lab

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// hostFiles are the files the lab lays into its images: files/common for
// every host, files/el for the EL family, files/<personality> for one.
//
//go:embed all:files
var hostFiles embed.FS

// layerRecipeVersion changes when the layer build steps change.
const layerRecipeVersion = "5"

// commonSymlinks are links every personality has: the swap emulation
// replaces util-linux's swapon/swapoff; masks keep a container's boot
// clean where a real boot would do kernel things.
var commonSymlinks = map[string]string{
	"/usr/sbin/swapon":  "../lib/lab-kernel/swap",
	"/usr/sbin/swapoff": "../lib/lab-kernel/swap",
	// kernel.* and fs.* sysctls are read-only in a container: masking
	// Debian's two files lets `sysctl --system` exit 0, as on a real host.
	"/etc/sysctl.d/50-pid-max.conf":       "/dev/null",
	"/etc/sysctl.d/99-protect-links.conf": "/dev/null",
	// fstab names disks a container does not have (/boot by UUID): without
	// the generator systemd does not wait 90 s for them and fail the boot.
	"/etc/systemd/system-generators/systemd-fstab-generator":         "/dev/null",
	"/etc/systemd/system/systemd-remount-fs.service":                 "/dev/null",
	"/etc/systemd/system/sysinit.target.wants/lab-kernel.service":    "/etc/systemd/system/lab-kernel.service",
	"/etc/systemd/system/sysinit.target.wants/lab-cgroup-rw.service": "/etc/systemd/system/lab-cgroup-rw.service",
}

// layerScript runs inside the personality's image (no network): it removes
// what the distribution lacks, adds the lab's user and fills the rpm
// database. $LAB_* come from buildLayer.
const layerScript = `
export DEBIAN_FRONTEND=noninteractive
installed=""
for p in $LAB_PURGE; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then installed="$installed $p"; fi
done
if [ -n "$installed" ]; then apt-get purge -y -q --auto-remove $installed >/dev/null; fi
id kprep >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --comment "kprep lab user" kprep
if [ -n "$LAB_RPMDB" ]; then
	mkdir -p /var/lib/rpm
	rpm --dbpath /var/lib/rpm --initdb
	rpm --dbpath /var/lib/rpm --force-debian -i --justdb --nodeps --noscripts --notriggers "$LAB_RPMDB"/*.rpm
	rm -rf "$LAB_RPMDB"
fi
for f in $LAB_HIDE; do rm -rf "$f"; done
for spec in $LAB_SPARSE; do
	f=${spec%%:*}
	truncate -s "${spec#*:}" "$f"
	chmod 600 "$f"
done
`

// filesDigest hashes the embedded trees a personality uses.
func filesDigest(p *Personality) string { return filesDigestOf(layerTrees(p)) }

// filesDigestOf hashes the embedded trees dirs.
func filesDigestOf(dirs []string) string {
	h := sha256.New()
	for _, dir := range dirs {
		_ = fs.WalkDir(hostFiles, dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, _ := fs.ReadFile(hostFiles, path)
			fmt.Fprintf(h, "%s %d\n", path, len(b))
			h.Write(b)
			return nil
		})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// layerTrees are the embedded folders laid into a personality, in order.
func layerTrees(p *Personality) []string {
	trees := []string{"files/common"}
	if p.Family == "el" {
		trees = append(trees, "files/el")
	}
	return append(trees, "files/"+p.Name)
}

// layerKey identifies a personality layer over a given base.
func layerKey(p *Personality, base string) string {
	spec, _ := json.Marshal(p)
	links, _ := json.Marshal(commonSymlinks)
	return recipeKey("layer", layerRecipeVersion, base, string(spec), string(links), filesDigest(p), layerScript)
}

// layerDir is the cache entry of a personality's layer with the given key;
// the layer is in upper/, and done marks it finished.
func layerDir(cacheDir string, p *Personality, key string) string {
	return filepath.Join(cacheDir, "layer-"+p.Name+"-"+key)
}

// buildLayer returns the folder of the personality's layer (an overlay
// upper folder over the base), building it on a cache miss (seconds).
func buildLayer(ctx context.Context, o Options, base, baseKey string, p *Personality, log *logger) (string, error) {
	key := layerKey(p, baseKey)
	final := layerDir(o.CacheDir, p, key)
	if exists(filepath.Join(final, "done")) {
		return filepath.Join(final, "upper"), nil
	}
	start := time.Now()
	tmp := filepath.Join(buildDir(o.CacheDir), "layer-"+p.Name+"-"+key)
	if err := unmountAll(tmp); err != nil {
		return "", err
	}
	if err := removeTree(tmp); err != nil {
		return "", err
	}
	upper, work, merged := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	if err := mountOverlay(ctx, []string{base}, upper, work, merged); err != nil {
		return "", fmt.Errorf("personality %s: %w", p.Name, err)
	}
	buildErr := fillLayer(ctx, merged, p)
	if err := unmountAll(merged); err != nil && buildErr == nil {
		buildErr = err
	}
	if buildErr != nil {
		return "", fmt.Errorf("build personality %s: %w", p.Name, buildErr)
	}
	if err := os.RemoveAll(work); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "done"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("move personality %s into the cache: %w", p.Name, err)
	}
	log.printf("personality %s: built in %s", p.Name, time.Since(start).Round(100*time.Millisecond))
	return filepath.Join(final, "upper"), nil
}

// fillLayer lays the personality into the mounted image.
func fillLayer(ctx context.Context, merged string, p *Personality) error {
	links := map[string]string{}
	for k, v := range commonSymlinks {
		links[k] = v
	}
	for k, v := range p.Symlinks {
		links[k] = v
	}
	return fillImage(ctx, merged, p, layerTrees(p), links, p.RPMDB, "")
}

// fillImage lays a personality into the root file system dir: the embedded
// trees, the links, and then, inside the image, its purges, hidden
// commands, sparse files and the rpm database of the table rpmdb (built for
// rpmTarget, or for the arch each line names when "").
func fillImage(ctx context.Context, dir string, p *Personality, trees []string, links map[string]string, rpmdb, rpmTarget string) error {
	im, err := openImage(dir)
	if err != nil {
		return err
	}
	defer im.Close()
	for _, dir := range trees {
		sub, err := fs.Sub(hostFiles, dir)
		if err != nil {
			return err
		}
		if err := im.copyTree(sub); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(links)) {
		if err := im.symlink(links[name], name); err != nil {
			return err
		}
	}
	env := []string{
		"LAB_PURGE='" + strings.Join(p.Purge, " ") + "'",
		"LAB_HIDE='" + strings.Join(p.Hide, " ") + "'",
	}
	var sparse []string
	for _, f := range slices.Sorted(maps.Keys(p.SparseFiles)) {
		sparse = append(sparse, fmt.Sprintf("%s:%d", f, p.SparseFiles[f]))
	}
	env = append(env, "LAB_SPARSE='"+strings.Join(sparse, " ")+"'")
	if rpmdb != "" {
		pkgs, err := buildRPMDB(ctx, rpmdb, rpmTarget)
		if err != nil {
			return err
		}
		// Not /tmp: nspawn mounts an empty tmpfs there.
		for _, name := range slices.Sorted(maps.Keys(pkgs)) {
			if err := im.writeFile("/var/tmp/lab-rpmdb/"+name, pkgs[name], 0o644); err != nil {
				return err
			}
		}
		env = append(env, "LAB_RPMDB=/var/tmp/lab-rpmdb")
	} else {
		env = append(env, "LAB_RPMDB=''")
	}
	_, err = runInImage(ctx, dir, false, nil, strings.Join(env, "\n")+"\n"+layerScript)
	return err
}

// mountOverlay mounts an overlay of lowers (top first) with upper on target.
func mountOverlay(ctx context.Context, lowers []string, upper, work, target string) error {
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
	if _, err := runCmd(ctx, nil, "mount", "-t", "overlay", "overlay", "-o", opts, target); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}
