package mirror

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// repoPlan is every repository of the tree with the packages it holds,
// built (or found in the cache) and ready to lay out.
type repoPlan struct {
	yum  []yumRepo
	apt  []aptRepo
	keys map[string][]byte // public keys served at these paths under Root
	arch arch
}

// planRepos builds every package and says which repo gets which.
func planRepos(ctx context.Context, r *runner, cacheDir string, pl payload, dockerKey, kubeKey *signer) (*repoPlan, error) {
	plan := &repoPlan{arch: pl.arch, keys: map[string][]byte{
		dockerKeyCentOS: dockerKey.publicKey,
		dockerKeyRHEL:   dockerKey.publicKey,
		dockerKeyUbuntu: dockerKey.publicKey,
	}}
	rpm := func(d pkgDef, s *signer) (string, error) { return buildRPM(ctx, r, cacheDir, d, s) }
	deb := func(d pkgDef) (string, error) { return buildDeb(ctx, r, cacheDir, d) }

	for _, t := range DockerYumTrees {
		var defs []pkgDef
		for _, v := range t.Versions {
			defs = append(defs, pl.dockerCE(formatRPM, v, t.Dist), pl.dockerCECLI(formatRPM, v, t.Dist))
		}
		for _, c := range ContainerdReleases {
			defs = append(defs, pl.containerdIO(formatRPM, c, t.Dist))
		}
		files, err := buildAll(defs, func(d pkgDef) (string, error) { return rpm(d, dockerKey) })
		if err != nil {
			return nil, err
		}
		plan.yum = append(plan.yum, yumRepo{Dir: t.Path + "/" + pl.arch.RPM + "/stable", Sub: "Packages", RPMs: files, Signer: dockerKey})
	}

	kubeDefs := func(format string) ([]pkgDef, error) {
		var defs []pkgDef
		for _, v := range KubePackageVersions {
			defs = append(defs, pl.kubeadm(format, v), pl.kubelet(format, v), pl.kubectl(format, v))
		}
		cni, err := pl.kubernetesCNI(format)
		return append(defs, cni), err
	}
	defs, err := kubeDefs(formatRPM)
	if err != nil {
		return nil, err
	}
	files, err := buildAll(defs, func(d pkgDef) (string, error) { return rpm(d, kubeKey) })
	if err != nil {
		return nil, err
	}
	// pkgs.k8s.io keeps one repodata for all arches, rpms in per-arch folders.
	plan.yum = append(plan.yum, yumRepo{Dir: KubeRPMPath, Sub: pl.arch.RPM, RPMs: files, Signer: kubeKey, ServeKey: true})
	for _, repo := range vaultRepos {
		plan.yum = append(plan.yum, yumRepo{Dir: vaultPath(pl.arch) + "/" + repo + "/" + pl.arch.RPM, Sub: "Packages"})
	}

	var dockerDefs []pkgDef
	for _, v := range UbuntuDockerVersions {
		dockerDefs = append(dockerDefs, pl.dockerCE(formatDeb, v, dockerDebDist), pl.dockerCECLI(formatDeb, v, dockerDebDist))
	}
	for _, c := range ContainerdReleases {
		dockerDefs = append(dockerDefs, pl.containerdIO(formatDeb, c, ""))
	}
	if files, err = buildAll(dockerDefs, deb); err != nil {
		return nil, err
	}
	plan.apt = append(plan.apt, aptRepo{
		Dir: DockerAptPath, Suite: dockerAptSuite, Component: dockerAptComponent,
		PoolDir: "dists/" + dockerAptSuite + "/pool/" + dockerAptComponent + "/" + pl.arch.Deb,
		Debs:    files, Arch: pl.arch.Deb, Origin: "Docker", Label: "Docker CE", Signer: dockerKey,
	})
	if defs, err = kubeDefs(formatDeb); err != nil {
		return nil, err
	}
	if files, err = buildAll(defs, deb); err != nil {
		return nil, err
	}
	plan.apt = append(plan.apt, aptRepo{
		Dir: KubeDebPath, PoolDir: pl.arch.Deb, Debs: files, Arch: pl.arch.Deb,
		Origin: "obs://build.opensuse.org/isv:kubernetes:core:stable:v1.34/deb",
		Label:  "isv:kubernetes:core:stable:v1.34", Signer: kubeKey, KeyPath: "Release.key",
	})
	return plan, nil
}

// buildAll builds each definition, stopping at the first failure.
func buildAll(defs []pkgDef, build func(pkgDef) (string, error)) ([]string, error) {
	files := make([]string, 0, len(defs))
	for _, d := range defs {
		f, err := build(d)
		if err != nil {
			return nil, fmt.Errorf("package %s %s: %w", d.Name, d.Version, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// key names the laid-out tree: the package files (whose cache folders are
// named by their recipes), the repos' places and the signing keys.
func (p *repoPlan) key() string {
	parts := []string{"tree/1", p.arch.Go}
	for _, y := range p.yum {
		fpr := ""
		if y.Signer != nil {
			fpr = y.Signer.fingerprint
		}
		parts = append(parts, fmt.Sprintf("yum %s %s %s %t %s", y.Dir, y.Sub, fpr, y.ServeKey, strings.Join(y.RPMs, " ")))
	}
	for _, a := range p.apt {
		parts = append(parts, fmt.Sprintf("apt %s %s %s %s %s %s %s %s %s", a.Dir, a.Suite, a.Component, a.PoolDir,
			a.Origin, a.Label, a.Signer.fingerprint, a.KeyPath, strings.Join(a.Debs, " ")))
	}
	for _, k := range sortedKeys(p.keys) {
		parts = append(parts, "key "+k+" "+string(p.keys[k]))
	}
	return recipeKey(parts...)
}

// packageEntries are the package cache entries the plan uses.
func (p *repoPlan) packageEntries() []string {
	var out []string
	for _, y := range p.yum {
		for _, f := range y.RPMs {
			out = append(out, filepath.Base(filepath.Dir(f)))
		}
	}
	for _, a := range p.apt {
		for _, f := range a.Debs {
			out = append(out, filepath.Base(filepath.Dir(f)))
		}
	}
	return out
}

// assemble lays the tree out under root.
func (p *repoPlan) assemble(ctx context.Context, r *runner, root string, now time.Time) error {
	r.logf("laying out the repos in %s", root)
	for _, y := range p.yum {
		if err := makeYumRepo(ctx, r, root, y); err != nil {
			return err
		}
	}
	for _, a := range p.apt {
		if err := makeAptRepo(ctx, r, root, a, now); err != nil {
			return fmt.Errorf("apt repo %s: %w", a.Dir, err)
		}
	}
	for path, key := range p.keys {
		if err := writeFile(filepath.Join(root, path), key, 0o644); err != nil {
			return err
		}
	}
	return nil
}
