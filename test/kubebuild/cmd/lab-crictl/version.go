package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runVersion prints what the runtime says about itself, like `crictl version`.
func runVersion(ctx context.Context, c *client, w io.Writer, asJSON bool) error {
	v, err := c.runtime.Version(ctx, &runtimeapi.VersionRequest{Version: "v1"})
	if err != nil {
		return fmt.Errorf("Version: %w", err)
	}
	if asJSON {
		return writeJSON(w, map[string]string{
			"version":           v.Version,
			"runtimeName":       v.RuntimeName,
			"runtimeVersion":    v.RuntimeVersion,
			"runtimeApiVersion": v.RuntimeApiVersion,
		})
	}
	_, err = fmt.Fprintf(w, "Version:  %s\nRuntimeName:  %s\nRuntimeVersion:  %s\nRuntimeApiVersion:  %s\n",
		v.Version, v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion)
	return err
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
