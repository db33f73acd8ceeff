package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kprep/kprep/provision/hostfile"
	"github.com/pelletier/go-toml/v2"
)

// This file is containerd's config.toml as data: where the CRI settings
// live in each config version, and the edit that turns any config into
// one Kubernetes can use. The TOML is decoded and encoded by a TOML
// library, never edited as text: a sed that misses a table writes a file
// containerd reads without complaint and Kubernetes cannot use.

// criKeys are the places of the CRI settings kprep sets in one config
// version.
type criKeys struct {
	sandbox  []string // the pod sandbox (pause) image
	oomAdj   []string // restrict_oom_score_adj
	cni      []string // the CNI table: bin_dir, conf_dir
	registry []string // the CRI's registry table (config_path, mirrors)
	runc     []string // the runc runtime's table
	disabled []string // plugin names that, disabled, switch CRI off
}

// criKeysFor returns the places for config version 2 (containerd 1.x) or
// 3 (containerd 2.x, whose CRI plugin is split into images and runtime).
func criKeysFor(version int64) criKeys {
	if version >= 3 {
		return criKeys{
			sandbox:  []string{"plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox"},
			oomAdj:   []string{"plugins", "io.containerd.cri.v1.runtime", "restrict_oom_score_adj"},
			cni:      []string{"plugins", "io.containerd.cri.v1.runtime", "cni"},
			registry: []string{"plugins", "io.containerd.cri.v1.images", "registry"},
			runc:     []string{"plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc"},
			disabled: []string{"cri", "io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images"},
		}
	}
	return criKeys{
		sandbox:  []string{"plugins", "io.containerd.grpc.v1.cri", "sandbox_image"},
		oomAdj:   []string{"plugins", "io.containerd.grpc.v1.cri", "restrict_oom_score_adj"},
		cni:      []string{"plugins", "io.containerd.grpc.v1.cri", "cni"},
		registry: []string{"plugins", "io.containerd.grpc.v1.cri", "registry"},
		runc:     []string{"plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc"},
		disabled: []string{"cri", "io.containerd.grpc.v1.cri"},
	}
}

// parseContainerdConfig decodes config.toml, placing a syntax error.
func parseContainerdConfig(raw []byte) (map[string]any, error) {
	m := map[string]any{}
	if err := toml.Unmarshal(raw, &m); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d, column %d: %v", row, col, de)
		}
		return nil, err
	}
	return m, nil
}

// configVersion is the config's version key; 0 when it has none (the
// version 1 format, and containerd.io's stock file).
func configVersion(m map[string]any) int64 {
	v, _ := m["version"].(int64)
	return v
}

// containerdVersion matches the version in `containerd --version`, which
// prints "containerd containerd.io 1.6.33 d2d58213...", "containerd
// github.com/containerd/containerd/v2 v2.0.0 ..." or a distribution's
// "1.6.20~ds1".
var containerdVersion = regexp.MustCompile(`(?:^|\s)v?(\d+)\.\d+`)

// containerdMajor returns containerd's major version, 0 when unknown.
func containerdMajor(versionOutput string) int {
	fields := strings.Fields(versionOutput)
	if len(fields) < 2 {
		return 0
	}
	for _, f := range fields[1:] {
		if m := containerdVersion.FindStringSubmatch(f); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return 0
}

// wantContainerdConfig returns the config containerd must have for
// Kubernetes, and what is wrong with the current one, in words. A config
// that cannot serve as a base (missing, containerd.io's stock file that
// disables CRI, the old version 1 format, or a version the installed
// containerd cannot read) is replaced by `containerd config default`'s
// output; any other keeps every key the user set, and only the CRI
// settings change.
// Where the CNI plugins and their configuration live, for kubeadm's
// kubernetes-cni package, flannel and Calico alike.
const (
	cniBinDir  = "/opt/cni/bin"
	cniConfDir = "/etc/cni/net.d"
)

// criSettings are the inventory's CRI settings kprep keeps in config.toml.
type criSettings struct {
	Sandbox             string
	RestrictOOMScoreAdj bool
}

func wantContainerdConfig(cur map[string]any, exists bool, defaults map[string]any, major int, cri criSettings) (map[string]any, []string, error) {
	sandbox := cri.Sandbox
	var reasons []string
	base := cur
	switch {
	case !exists:
		reasons = append(reasons, "missing")
	case slices.Contains(stringList(cur["disabled_plugins"]), "cri") && configVersion(cur) == 0:
		reasons = append(reasons, "containerd.io's stock file, which disables the CRI plugin Kubernetes needs")
	case configVersion(cur) == 0:
		reasons = append(reasons, "in the version 1 format, which has no place for the CRI settings kprep sets")
	case configVersion(cur) >= 3 && major > 0 && major < 2:
		reasons = append(reasons, fmt.Sprintf("version %d, which containerd %d.x cannot read", configVersion(cur), major))
	}
	if len(reasons) > 0 {
		if defaults == nil {
			return nil, nil, errors.New("`containerd config default` printed no config to start from (the probe reads it when config.toml has no usable top-level version); is containerd installed?")
		}
		base = defaults
		reasons[0] += ": replaced by `containerd config default` with the settings below"
	}
	want := deepCopy(base)
	keys := criKeysFor(configVersion(want))

	if disabled := stringList(want["disabled_plugins"]); len(disabled) > 0 {
		var kept []any
		var dropped []string
		for _, p := range disabled {
			if slices.Contains(keys.disabled, p) {
				dropped = append(dropped, p)
			} else {
				kept = append(kept, p)
			}
		}
		if len(dropped) > 0 {
			if kept == nil {
				kept = []any{}
			}
			want["disabled_plugins"] = kept
			reasons = append(reasons, "disabled_plugins switches off "+strings.Join(dropped, ", "))
		}
	}
	if got, _ := lookup(want, keys.sandbox).(string); got != sandbox {
		reasons = append(reasons, fmt.Sprintf("the sandbox image is %s, want %s", orNotSet(got), sandbox))
		set(want, keys.sandbox, sandbox)
	}
	// Registry mirrors and insecure registries live in hosts.toml files
	// under config_path (runtime/registries writes them). containerd
	// refuses config_path beside the old inline mirrors table, so a config
	// that uses that table is left to its owner.
	configPath := append(slices.Clone(keys.registry), "config_path")
	if mirrors, _ := lookup(want, append(slices.Clone(keys.registry), "mirrors")).(map[string]any); len(mirrors) == 0 {
		if got, _ := lookup(want, configPath).(string); got != containerdCertsDir {
			reasons = append(reasons, fmt.Sprintf("registry.config_path is %s, want %s (where kprep writes the CRI's mirrors and insecure registries)", orNotSet(got), containerdCertsDir))
			set(want, configPath, containerdCertsDir)
		}
	}
	if got, _ := lookup(want, keys.oomAdj).(bool); got != cri.RestrictOOMScoreAdj {
		reasons = append(reasons, fmt.Sprintf("restrict_oom_score_adj is %v, want %v (kubernetes.containerd.restrictOOMScoreAdj)", got, cri.RestrictOOMScoreAdj))
		set(want, keys.oomAdj, cri.RestrictOOMScoreAdj)
	}
	// Where kubernetes-cni and the CNI's own installer put the plugins and
	// their configuration; a distribution's containerd may look elsewhere
	// (Debian's looks in /usr/lib/cni), and then no pod gets a network.
	for _, kv := range [][2]string{{"bin_dir", cniBinDir}, {"conf_dir", cniConfDir}} {
		key, dir := kv[0], kv[1]
		path := append(slices.Clone(keys.cni), key)
		if got, _ := lookup(want, path).(string); got != dir {
			reasons = append(reasons, fmt.Sprintf("the CRI's cni.%s is %s, want %s", key, orNotSet(got), dir))
			set(want, path, dir)
		}
	}
	runc := append(slices.Clone(keys.runc), "runtime_type")
	if lookup(want, runc) == nil {
		reasons = append(reasons, "no runc runtime is defined")
		set(want, runc, "io.containerd.runc.v2")
	}
	cgroup := append(slices.Clone(keys.runc), "options", "SystemdCgroup")
	if got, _ := lookup(want, cgroup).(bool); !got {
		reasons = append(reasons, "runc's SystemdCgroup is not true (kubelet uses the systemd cgroup driver)")
		set(want, cgroup, true)
	}
	if exists && reflect.DeepEqual(cur, want) {
		return want, nil, nil
	}
	return want, reasons, nil
}

func orNotSet(s string) string {
	if s == "" {
		return "not set"
	}
	return s
}

// lookup returns the value at path in nested tables, nil when absent.
func lookup(m map[string]any, path []string) any {
	var cur any = m
	for _, k := range path {
		t, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = t[k]
	}
	return cur
}

// set puts v at path, making the tables on the way (and replacing a
// non-table that stands where a table must be).
func set(m map[string]any, path []string, v any) {
	t := m
	for _, k := range path[:len(path)-1] {
		next, ok := t[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			t[k] = next
		}
		t = next
	}
	t[path[len(path)-1]] = v
}

// deepCopy copies nested tables and arrays, so editing the copy leaves the
// probed config as it was for the comparison.
func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return deepCopy(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopyValue(e)
		}
		return out
	}
	return v
}

// encodeContainerdConfig writes the config with sorted keys and indented
// tables: the same config always gives the same bytes.
func encodeContainerdConfig(m map[string]any) []byte {
	var b bytes.Buffer
	b.WriteString(hostfile.Header("containerd for Kubernetes (CRI plugin on, runc with the systemd",
		"cgroup driver, the inventory's sandbox image). Other keys may be edited;",
		"kprep keeps them. The first file kprep replaced is kept as config.toml.kprep-orig."))
	enc := toml.NewEncoder(&b)
	enc.SetIndentTables(true)
	if err := enc.Encode(m); err != nil {
		panic("config.toml: " + err.Error()) // only values decoded from TOML are here
	}
	return b.Bytes()
}
