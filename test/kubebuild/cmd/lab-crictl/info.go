package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// infoReport is what `lab-crictl info` prints. The raw config and info
// entries are kept whole so a check can look at anything the runtime says;
// the summary fields pull out what kprep's checks look at most.
type infoReport struct {
	Conditions      []*runtimeapi.RuntimeCondition `json:"conditions"`
	RuntimeHandlers []string                       `json:"runtimeHandlers,omitempty"`
	// CgroupDriver comes from the RuntimeConfig call ("systemd" or
	// "cgroupfs"); runtimes older than containerd 1.7 do not implement it.
	CgroupDriver string `json:"cgroupDriver,omitempty"`
	// SystemdCgroup maps each runtime handler to its SystemdCgroup option,
	// for handlers whose config sets it.
	SystemdCgroup map[string]bool `json:"systemdCgroup,omitempty"`
	// SandboxImage is the pause image the runtime uses for pods.
	SandboxImage string `json:"sandboxImage,omitempty"`
	// Config is the runtime's parsed "config" entry (containerd's CRI config).
	Config json.RawMessage `json:"config,omitempty"`
	// Info holds the other verbose status entries, parsed when they are JSON.
	Info map[string]json.RawMessage `json:"info,omitempty"`
}

// runInfo prints the runtime's verbose status as JSON, like `crictl info`.
func runInfo(ctx context.Context, c *client, w io.Writer) error {
	st, err := c.runtime.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return fmt.Errorf("Status: %w", err)
	}
	r := infoReport{Info: map[string]json.RawMessage{}}
	if st.Status != nil {
		r.Conditions = st.Status.Conditions
	}
	for _, h := range st.RuntimeHandlers {
		r.RuntimeHandlers = append(r.RuntimeHandlers, h.Name)
	}
	sort.Strings(r.RuntimeHandlers)
	for k, v := range st.Info {
		raw := json.RawMessage(v)
		if !json.Valid(raw) {
			raw, _ = json.Marshal(v) // keep plain strings as JSON strings
		}
		if k == "config" {
			r.Config = raw
			continue
		}
		r.Info[k] = raw
	}
	if r.Config != nil {
		sum, err := summarizeConfig(r.Config)
		if err != nil {
			return fmt.Errorf("runtime config: %w", err)
		}
		r.SystemdCgroup, r.SandboxImage = sum.SystemdCgroup, sum.SandboxImage
	}
	rc, err := c.runtime.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	switch {
	case err == nil:
		if l := rc.GetLinux(); l != nil {
			r.CgroupDriver = cgroupDriverName(l.CgroupDriver)
		}
	case status.Code(err) == codes.Unimplemented:
		// containerd 1.6 and cri-dockerd answer Unimplemented: say nothing.
	default:
		return fmt.Errorf("RuntimeConfig: %w", err)
	}
	return writeJSON(w, r)
}

// cgroupDriverName turns the CRI enum into the words kubelet's config uses.
func cgroupDriverName(d runtimeapi.CgroupDriver) string {
	switch d {
	case runtimeapi.CgroupDriver_SYSTEMD:
		return "systemd"
	case runtimeapi.CgroupDriver_CGROUPFS:
		return "cgroupfs"
	}
	return d.String()
}

// configSummary is what summarizeConfig pulls out of a runtime's config.
type configSummary struct {
	SystemdCgroup map[string]bool
	SandboxImage  string
}

// runtimeConfigJSON is the part of containerd's CRI config JSON (1.6, 1.7 and
// 2.x) that the summary needs.
type runtimeConfigJSON struct {
	SandboxImage string `json:"sandboxImage"` // containerd 1.x
	PinnedImages struct {
		Sandbox string `json:"sandbox"` // containerd 2.x
	} `json:"pinnedImages"`
	Containerd struct {
		Runtimes map[string]struct {
			Options map[string]any `json:"options"`
		} `json:"runtimes"`
	} `json:"containerd"`
}

// summarizeConfig finds SystemdCgroup per runtime handler and the sandbox
// image in a containerd CRI config as reported in the CRI verbose status.
func summarizeConfig(raw []byte) (configSummary, error) {
	var cfg runtimeConfigJSON
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return configSummary{}, err
	}
	sum := configSummary{SandboxImage: cfg.SandboxImage}
	if sum.SandboxImage == "" {
		sum.SandboxImage = cfg.PinnedImages.Sandbox
	}
	for name, rt := range cfg.Containerd.Runtimes {
		v, ok := rt.Options["SystemdCgroup"].(bool)
		if !ok {
			continue
		}
		if sum.SystemdCgroup == nil {
			sum.SystemdCgroup = map[string]bool{}
		}
		sum.SystemdCgroup[name] = v
	}
	return sum, nil
}
