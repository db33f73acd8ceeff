package main

import (
	"context"
	"fmt"
	"io"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runPull pulls ref through the CRI image service, as the kubelet does, so
// the runtime's registry configuration (hosts.toml, mirrors) is what is
// tested, not a client's own.
func runPull(ctx context.Context, c *client, w io.Writer, ref string) error {
	resp, err := c.images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return fmt.Errorf("PullImage %s: %w", ref, err)
	}
	_, err = fmt.Fprintln(w, resp.ImageRef)
	return err
}
