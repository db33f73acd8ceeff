package runtime

import (
	"context"
	"fmt"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// ContainerdStep makes containerd a CRI runtime Kubernetes can use (with
// kubernetes.cri: containerd): the CRI plugin on, runc with the systemd
// cgroup driver that kubelet uses, and the sandbox image from the
// inventory's image repository, in the table layout of the installed
// containerd (config version 2 for 1.x, 3 for 2.x). ServiceStep restarts
// containerd when the file changed.
type ContainerdStep struct{}

// Name implements provision.Step.
func (ContainerdStep) Name() string { return "runtime/containerd" }

// DependsOn implements provision.DependsOn: config.toml and the installed
// containerd (its version, its default config) are all it reads.
func (ContainerdStep) DependsOn() []string { return installSteps }

// AppliesTo implements provision.HostFilter: with cri-dockerd, containerd
// only serves dockerd and keeps its stock config.
func (ContainerdStep) AppliesTo(_ *inventory.Host, c *inventory.Cluster) bool {
	return c.Kubernetes.CRI == "containerd"
}

// Probe reads config.toml, containerd's version and, only when the current
// file cannot be the base of the new one, containerd's default config;
// nothing when containerd is not installed yet.
func (ContainerdStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return strings.Join([]string{
		shell.File("config", containerdConfigPath),
		shell.BinaryVersions("version_", "containerd"),
		containerdDefaultProbe,
	}, "\n")
}

// containerdDefaultProbe prints `containerd config default` when
// wantContainerdConfig needs it as a base: config.toml missing, without a
// top-level version (the stock file, version 1), or at version 3 under a
// containerd older than 2. The default is a fresh Go process of about
// 150 ms of host CPU, which a converged host (version 2, or 3 under
// containerd 2) is spared on every probe. The shell's read takes the
// top-level keys only, no process: they come before the first table
// header. containerd's version is $kprep_ver, which shell.BinaryVersions
// left just before (from the record, without running containerd again).
const containerdDefaultProbe = `if command -v containerd >/dev/null; then
kprep_cv=
if [ -r ` + containerdConfigPath + ` ]; then
  while IFS= read -r kprep_l || [ -n "$kprep_l" ]; do
    kprep_l=${kprep_l#"${kprep_l%%[![:space:]]*}"}
    case $kprep_l in
    '['*) break ;;
    version*)
      kprep_l=${kprep_l#version}; kprep_l=${kprep_l#"${kprep_l%%[![:space:]]*}"}
      case $kprep_l in =*)
        kprep_l=${kprep_l#=}; kprep_l=${kprep_l#"${kprep_l%%[![:space:]]*}"}
        kprep_cv=${kprep_l%%[[:space:]#]*}
        break ;;
      esac ;;
    esac
  done < ` + containerdConfigPath + `
fi
case $kprep_cv in
2) ;;
3) case $kprep_ver in *' v'[2-9].*|*' '[2-9].*) ;; *) kprep_cv=need ;; esac ;;
*) kprep_cv=need ;;
esac
if [ "$kprep_cv" = need ]; then printf 'file default %s\n' "$(containerd config default 2>/dev/null | base64 -w0)"; fi
fi`

// Diff implements provision.Step.
func (ContainerdStep) Diff(in provision.Input) ([]provision.Planned[[]byte], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	if st.Values["version_containerd"] == "" {
		// Only in a plan on a host without Docker CE yet: in apply, the
		// packages step has installed containerd before this diff runs.
		return []provision.Planned[[]byte]{{Key: "config",
			Summary: "containerd is not installed yet (runtime/packages installs containerd.io)",
			Action:  "write " + containerdConfigPath + " for the CRI once containerd is installed"}}, nil
	}
	raw, exists := st.File("config")
	cur := map[string]any{}
	if exists {
		if cur, err = parseContainerdConfig(raw); err != nil {
			return nil, fmt.Errorf("%s is not valid TOML (%v); kprep leaves it as it is: fix it or remove it, and run kprep again", containerdConfigPath, err)
		}
	}
	var defaults map[string]any
	if d, ok := st.File("default"); ok && len(d) > 0 {
		if defaults, err = parseContainerdConfig(d); err != nil {
			return nil, fmt.Errorf("`containerd config default` printed a config kprep cannot read (%v)", err)
		}
	}
	want, reasons, err := wantContainerdConfig(cur, exists, defaults, containerdMajor(st.Values["version_containerd"]),
		criSettings{Sandbox: sandboxImage(in.Cluster), RestrictOOMScoreAdj: in.Cluster.Kubernetes.Containerd.RestrictOOMScoreAdj})
	if err != nil {
		return nil, err
	}
	if len(reasons) == 0 {
		return nil, nil
	}
	return []provision.Planned[[]byte]{{Key: "config",
		Summary: containerdConfigPath + ": " + strings.Join(reasons, "; "),
		Action:  fmt.Sprintf("write %s (config version %d), checked with `containerd config dump` first", containerdConfigPath, configVersion(want)),
		Data:    encodeContainerdConfig(want)}}, nil
}

// checkContainerdConfig loads a candidate config.toml with the installed
// containerd, from a temporary file beside the real one.
var checkContainerdConfig = hostfile.CheckCandidate(containerdConfigPath, `containerd --config "$f" config dump >/dev/null`)

// Apply implements provision.Step.
func (ContainerdStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[[]byte]) error {
	for _, c := range changes {
		content := c.Data
		if content == nil {
			return fmt.Errorf("containerd is not installed, so %s cannot be written; runtime/packages should have installed containerd.io", containerdConfigPath)
		}
		if _, err := t.Run(ctx, transport.Command{Line: checkContainerdConfig, Stdin: content}); err != nil {
			return fmt.Errorf("containerd refused the new %s, which was not written: %w", containerdConfigPath, err)
		}
		if err := t.WriteFile(ctx, containerdConfigPath, content, transport.WriteOptions{Mode: 0o644}); err != nil {
			return err
		}
	}
	return nil
}
