package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/kprep/kprep/provision/inventory"
)

// This file is daemon.json as data: the keys kprep owns, the merge that
// keeps everything else the user wrote, and the comparison with what a
// running dockerd reports.

// cgroupDriverOpt is the exec-opt that makes dockerd use systemd's cgroup
// driver, the one kubelet uses by default since Kubernetes 1.22.
const cgroupDriverOpt = "native.cgroupdriver=systemd"

// Defaults dockerd uses for keys daemon.json leaves out.
const (
	defaultDockerRoot   = "/var/lib/docker"
	defaultLoggerDriver = "json-file"
)

// daemonSettings are the daemon.json keys kprep owns, as the inventory
// sets them.
type daemonSettings struct {
	RegistryMirrors    []string
	InsecureRegistries []string
	LogDriver          string
	LogOpts            map[string]string
	DataRoot           string
	LiveRestore        bool
}

// desiredDaemonSettings reads the owned keys from the inventory.
func desiredDaemonSettings(c *inventory.Cluster) daemonSettings {
	d := c.Docker
	return daemonSettings{
		RegistryMirrors:    d.RegistryMirrors,
		InsecureRegistries: d.InsecureRegistries,
		LogDriver:          d.LogDriver,
		LogOpts:            d.LogOpts,
		DataRoot:           d.DataRoot,
		LiveRestore:        d.LiveRestore,
	}
}

// parseDaemonJSON reads daemon.json. Numbers stay json.Number, so a value
// the user wrote comes back out exactly as written. An empty file counts
// as an empty object.
func parseDaemonJSON(raw []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonErrorAt(raw, err)
	}
	if dec.More() {
		return nil, errors.New("there is more after the closing }")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("it holds %s, not an object", jsonKind(v))
	}
	return m, nil
}

// jsonErrorAt says where in raw a decoding error is, as line and column.
func jsonErrorAt(raw []byte, err error) error {
	var offset int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset - 1 // the decoder counts the offending byte as read
	case errors.As(err, &typ):
		offset = typ.Offset
	case errors.Is(err, io.ErrUnexpectedEOF):
		offset = int64(len(raw))
	}
	if offset < 0 {
		return err
	}
	if offset > int64(len(raw)) {
		offset = int64(len(raw))
	}
	before := raw[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	return fmt.Errorf("line %d, column %d: %v", line, col, err)
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case nil:
		return "null"
	}
	return "a " + fmt.Sprintf("%T", v)
}

// mergeDaemonJSON returns cur with the owned keys set from s. The keys a
// reload applies (mirrors, insecure registries, live-restore) are always
// written, empty or false if need be: dockerd's reload changes only the keys
// the file has, so a removed key would keep its old value until a restart.
// log-opts and data-root, which need a restart anyway, are removed when the
// inventory leaves them empty, so dockerd's defaults apply. exec-opts keeps
// the user's other options and replaces only the cgroup driver.
func mergeDaemonJSON(cur map[string]any, s daemonSettings) map[string]any {
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]any{}
	}
	setList := func(key string, vals []string) {
		list := make([]any, len(vals))
		for i, v := range vals {
			list[i] = v
		}
		out[key] = list
	}
	setList("registry-mirrors", s.RegistryMirrors)
	setList("insecure-registries", s.InsecureRegistries)
	out["log-driver"] = s.LogDriver
	if len(s.LogOpts) == 0 {
		delete(out, "log-opts")
	} else {
		opts := map[string]any{}
		for k, v := range s.LogOpts {
			opts[k] = v // strings: dockerd refuses to start on a number here
		}
		out["log-opts"] = opts
	}
	var execOpts []any
	if list, ok := cur["exec-opts"].([]any); ok {
		for _, o := range list {
			if str, ok := o.(string); ok && isCgroupDriverOpt(str) {
				continue
			}
			execOpts = append(execOpts, o)
		}
	}
	out["exec-opts"] = append(execOpts, cgroupDriverOpt)
	if s.DataRoot == "" {
		delete(out, "data-root")
	} else {
		out["data-root"] = s.DataRoot
	}
	out["live-restore"] = s.LiveRestore
	return out
}

func isCgroupDriverOpt(o string) bool {
	k, _, _ := strings.Cut(o, "=")
	return strings.EqualFold(strings.TrimSpace(k), "native.cgroupdriver")
}

// encodeDaemonJSON writes daemon.json with sorted keys and two-space
// indents, so the same settings always give the same bytes.
func encodeDaemonJSON(m map[string]any) []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		// Only values decoded from JSON or built from strings are here.
		panic("daemon.json: " + err.Error())
	}
	return append(b, '\n')
}

// canonicalJSON is a value's encoding, for comparing two values.
func canonicalJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// changedKeys lists the top-level keys whose values differ, sorted.
func changedKeys(a, b map[string]any) []string {
	var keys []string
	for k, v := range a {
		if w, ok := b[k]; !ok || canonicalJSON(v) != canonicalJSON(w) {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// describeValue shows a daemon.json value in a change's summary.
func describeValue(m map[string]any, key string) string {
	v, ok := m[key]
	if !ok {
		return "not set"
	}
	return canonicalJSON(v)
}

// effectiveDaemon is what dockerd runs with for the settings ServiceStep
// compares with `docker info`, given a daemon.json (defaults filled in).
type effectiveDaemon struct {
	Mirrors      []string
	Insecure     []string
	LogDriver    string
	CgroupDriver string
	DataRoot     string
	LiveRestore  bool
}

// effectiveDaemonSettings reads those settings out of daemon.json's keys.
func effectiveDaemonSettings(m map[string]any) effectiveDaemon {
	e := effectiveDaemon{LogDriver: defaultLoggerDriver, CgroupDriver: "cgroupfs", DataRoot: defaultDockerRoot}
	e.Mirrors = stringList(m["registry-mirrors"])
	e.Insecure = stringList(m["insecure-registries"])
	if s, ok := m["log-driver"].(string); ok && s != "" {
		e.LogDriver = s
	}
	for _, o := range stringList(m["exec-opts"]) {
		if isCgroupDriverOpt(o) {
			_, v, _ := strings.Cut(o, "=")
			e.CgroupDriver = strings.TrimSpace(v)
		}
	}
	if s, ok := m["data-root"].(string); ok && s != "" {
		e.DataRoot = s
	}
	e.LiveRestore, _ = m["live-restore"].(bool)
	return e
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// reloadableKeys are the daemon.json keys dockerd applies on SIGHUP
// (`systemctl reload docker`); any other key needs a restart.
var reloadableKeys = map[string]bool{
	"debug": true, "labels": true, "live-restore": true, "max-concurrent-downloads": true,
	"max-concurrent-uploads": true, "max-download-attempts": true, "default-runtime": true,
	"runtimes": true, "authorization-plugins": true, "insecure-registries": true,
	"registry-mirrors": true, "shutdown-timeout": true, "features": true,
	"allow-nondistributable-artifacts": true,
}
