package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerRow is one line of `lab-crictl ps`.
type containerRow struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"`
	Image string `json:"image"`
	PodID string `json:"podId"`
	Pod   string `json:"pod"`
}

// runPs lists containers with their pod's name, running ones unless all is set.
func runPs(ctx context.Context, c *client, w io.Writer, all, asJSON bool) error {
	req := &runtimeapi.ListContainersRequest{}
	if !all {
		req.Filter = &runtimeapi.ContainerFilter{
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		}
	}
	cs, err := c.runtime.ListContainers(ctx, req)
	if err != nil {
		return fmt.Errorf("ListContainers: %w", err)
	}
	pods, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("ListPodSandbox: %w", err)
	}
	podNames := map[string]string{}
	for _, p := range pods.Items {
		podNames[p.Id] = p.GetMetadata().GetName()
	}
	rows := []containerRow{}
	for _, ctr := range cs.Containers {
		rows = append(rows, containerRow{
			ID:    ctr.Id,
			Name:  ctr.GetMetadata().GetName(),
			State: strings.TrimPrefix(ctr.State.String(), "CONTAINER_"),
			Image: ctr.GetImage().GetImage(),
			PodID: ctr.PodSandboxId,
			Pod:   podNames[ctr.PodSandboxId],
		})
	}
	if asJSON {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tNAME\tSTATE\tPOD ID\tPOD")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", short(r.ID), r.Name, r.State, short(r.PodID), r.Pod)
	}
	return tw.Flush()
}

// podRow is one line of `lab-crictl pods`.
type podRow struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	State     string `json:"state"`
}

// runPods lists pod sandboxes.
func runPods(ctx context.Context, c *client, w io.Writer, asJSON bool) error {
	pods, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("ListPodSandbox: %w", err)
	}
	rows := []podRow{}
	for _, p := range pods.Items {
		rows = append(rows, podRow{
			ID:        p.Id,
			Name:      p.GetMetadata().GetName(),
			Namespace: p.GetMetadata().GetNamespace(),
			State:     strings.TrimPrefix(p.State.String(), "SANDBOX_"),
		})
	}
	if asJSON {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "POD ID\tNAME\tNAMESPACE\tSTATE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", short(r.ID), r.Name, r.Namespace, r.State)
	}
	return tw.Flush()
}

// imageRow is one line of `lab-crictl images`.
type imageRow struct {
	ID          string   `json:"id"`
	RepoTags    []string `json:"repoTags"`
	RepoDigests []string `json:"repoDigests"`
	Size        uint64   `json:"size"`
	Pinned      bool     `json:"pinned"`
}

// runImages lists the images the runtime holds.
func runImages(ctx context.Context, c *client, w io.Writer, asJSON bool) error {
	imgs, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return fmt.Errorf("ListImages: %w", err)
	}
	rows := []imageRow{}
	for _, im := range imgs.Images {
		rows = append(rows, imageRow{ID: im.Id, RepoTags: im.RepoTags, RepoDigests: im.RepoDigests, Size: im.Size, Pinned: im.Pinned})
	}
	if asJSON {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tIMAGE ID\tSIZE")
	for _, r := range rows {
		tags := r.RepoTags
		if len(tags) == 0 {
			tags = []string{"<none>"}
		}
		for _, t := range tags {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", t, short(strings.TrimPrefix(r.ID, "sha256:")), r.Size)
		}
	}
	return tw.Flush()
}

// short cuts an id to 13 characters, as crictl's table output does.
func short(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}
