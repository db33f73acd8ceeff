package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// NodeStep keeps each host's Node labelled and tainted as the inventory
// says (hosts[].labels, hosts[].taints, and the control-plane taint that
// follows the roles), putting back what was removed by hand. It owns only
// what it set: the keys it manages are recorded on the Node in the
// kprep.io/managed annotation, so a label or taint dropped from the
// inventory is removed and one set by someone else is left alone. It
// changes the Node through the first control plane (a kubelet may not
// label its own Node).
type NodeStep struct{}

// managedAnnotation records the label keys and taints kprep set on a Node.
const managedAnnotation = "kprep.io/managed"

// Name implements provision.Step.
func (NodeStep) Name() string { return "kube/node" }

// After implements provision.Sequenced: the Node must exist.
func (NodeStep) After() []string {
	return []string{"kube/init", "kube/join-control-plane", "kube/join-worker"}
}

// Probe reads the host's own Node as JSON.
func (NodeStep) Probe(h *inventory.Host, c *inventory.Cluster) string {
	kubeconfig := kubeconfigOf(c, h)
	return fmt.Sprintf(`if [ -s %[1]s ] && command -v kubectl >/dev/null; then
  out=$(%[2]s 2>/dev/null) && printf 'file node %%s\n' "$(printf '%%s' "$out" | base64 -w0)"
fi
true`, kubeconfig, kubectl(kubeconfig, "get", "node", h.Name, "-o", "json"))
}

// nodeMeta is the part of a Node the step reads.
type nodeMeta struct {
	Metadata struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Taints []nodeTaint `json:"taints"`
	} `json:"spec"`
}

type nodeTaint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

// id is what identifies a taint on a Node: key and effect.
func (t nodeTaint) id() string { return t.Key + ":" + t.Effect }

func (t nodeTaint) String() string {
	if t.Value == "" {
		return t.Key + ":" + t.Effect
	}
	return t.Key + "=" + t.Value + ":" + t.Effect
}

// managed is what kprep set on a Node, as the annotation records it.
type managed struct {
	Labels []string `json:"labels,omitempty"`
	Taints []string `json:"taints,omitempty"`
}

// nodeWork is the kubectl commands one change runs on the first control
// plane.
type nodeWork struct {
	Args [][]string
}

// Diff implements provision.Step.
func (NodeStep) Diff(in provision.Input) ([]provision.Planned[nodeWork], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	h := in.Host
	raw, ok := st.File("node")
	if !ok {
		// Not a member yet: the join steps say so in plan; in apply this
		// step runs after them and finds the Node.
		if len(h.Labels)+len(h.Taints) == 0 {
			return nil, nil // the control-plane taint comes with the join
		}
		return []provision.Planned[nodeWork]{{Key: "node", Summary: fmt.Sprintf("the Node %s is not in the cluster yet", h.Name),
			Action: "label and taint it once it is"}}, nil
	}
	var n nodeMeta
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("read the Node %s: %w", h.Name, err)
	}
	var owned managed
	if a := n.Metadata.Annotations[managedAnnotation]; a != "" {
		if err := json.Unmarshal([]byte(a), &owned); err != nil {
			return nil, fmt.Errorf("the Node's %s annotation is not kprep's JSON (%v); remove it, and kprep writes it again", managedAnnotation, err)
		}
	}
	node := "node/" + h.Name
	var changes []provision.Planned[nodeWork]

	// Labels: the inventory's, and the removal of those kprep set before
	// that the inventory no longer has.
	var setLabels, unsetLabels []string
	for _, k := range slices.Sorted(maps.Keys(h.Labels)) {
		if v, ok := n.Metadata.Labels[k]; !ok || v != h.Labels[k] {
			setLabels = append(setLabels, k+"="+h.Labels[k])
		}
	}
	for _, k := range owned.Labels {
		if _, want := h.Labels[k]; !want {
			if _, has := n.Metadata.Labels[k]; has {
				unsetLabels = append(unsetLabels, k+"-")
			}
		}
	}
	if len(setLabels)+len(unsetLabels) > 0 {
		var summary []string
		if len(setLabels) > 0 {
			summary = append(summary, "lacks the labels "+strings.Join(setLabels, ", "))
		}
		if len(unsetLabels) > 0 {
			summary = append(summary, "has labels kprep set and the inventory dropped: "+strings.Join(trimDash(unsetLabels), ", "))
		}
		args := append(append([]string{"label", node, "--overwrite"}, setLabels...), unsetLabels...)
		changes = append(changes, provision.Planned[nodeWork]{Key: "labels", Summary: "the Node " + h.Name + " " + strings.Join(summary, "; "),
			Action: "kubectl " + strings.Join(args, " "), Data: nodeWork{Args: [][]string{args}}})
	}

	// Taints: the inventory's and the control-plane taint where the roles
	// keep it; removed: those kprep set before and no longer wants, and the
	// control-plane taint on a control plane that is also a worker.
	want := map[string]nodeTaint{}
	for _, t := range h.Taints {
		nt := nodeTaint{Key: t.Key, Value: t.Value, Effect: t.Effect}
		want[nt.id()] = nt
	}
	cpTaint := nodeTaint{Key: inventory.ControlPlaneTaintKey, Effect: "NoSchedule"}
	if h.KeepsControlPlaneTaint() {
		want[cpTaint.id()] = cpTaint
	}
	have := map[string]nodeTaint{}
	for _, t := range n.Spec.Taints {
		have[t.id()] = t
	}
	var taintArgs [][]string
	var added, removed []string
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if t, ok := have[id]; !ok || t.Value != want[id].Value {
			taintArgs = append(taintArgs, []string{"taint", node, want[id].String(), "--overwrite"})
			added = append(added, want[id].String())
		}
	}
	drop := slices.Clone(owned.Taints)
	if h.HasRole(inventory.RoleControlPlane) && !h.KeepsControlPlaneTaint() {
		drop = append(drop, cpTaint.id())
	}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(drop))) {
		if _, keep := want[id]; keep {
			continue
		}
		if _, has := have[id]; has {
			taintArgs = append(taintArgs, []string{"taint", node, id + "-"})
			removed = append(removed, id)
		}
	}
	if len(taintArgs) > 0 {
		var summary []string
		if len(added) > 0 {
			summary = append(summary, "lacks the taints "+strings.Join(added, ", "))
		}
		if len(removed) > 0 {
			summary = append(summary, "has taints the inventory does not want: "+strings.Join(removed, ", "))
		}
		changes = append(changes, provision.Planned[nodeWork]{Key: "taints", Summary: "the Node " + h.Name + " " + strings.Join(summary, "; "),
			Action: fmt.Sprintf("kubectl taint (%d)", len(taintArgs)), Data: nodeWork{Args: taintArgs}})
	}

	// The record of what kprep owns follows the inventory.
	record := managed{Labels: slices.Sorted(maps.Keys(h.Labels))}
	for _, t := range h.Taints {
		record.Taints = append(record.Taints, nodeTaint{Key: t.Key, Effect: t.Effect}.id())
	}
	slices.Sort(record.Taints)
	if !slices.Equal(record.Labels, owned.Labels) || !slices.Equal(record.Taints, owned.Taints) {
		b, _ := json.Marshal(record)
		args := []string{"annotate", node, "--overwrite", managedAnnotation + "=" + string(b)}
		changes = append(changes, provision.Planned[nodeWork]{Key: "record", Summary: "the Node's " + managedAnnotation + " annotation does not list what kprep keeps there",
			Action: "kubectl annotate " + node + " " + managedAnnotation, Data: nodeWork{Args: [][]string{args}}})
	}
	return changes, nil
}

func trimDash(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = strings.TrimSuffix(s, "-")
	}
	return out
}

// Apply runs the kubectl commands as the cluster admin on the first
// control plane.
func (NodeStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[nodeWork]) error {
	first := in.Cluster.FirstControlPlane()
	cp, err := t.Peer(first.Name)
	if err != nil {
		return err
	}
	for _, c := range changes {
		if c.Key == "node" {
			return fmt.Errorf("the Node %s is still not in the cluster after its join", in.Host.Name)
		}
		for _, args := range c.Data.Args {
			if _, err := cp.Run(ctx, transport.Command{Line: kubectl(adminConf, args...)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// NamespacesStep makes the inventory's namespaces (kubernetes.namespaces)
// once the cluster is up, and again if one is deleted. It never deletes a
// namespace: one taken off the list keeps its workloads.
type NamespacesStep struct{}

// Name implements provision.Step.
func (NamespacesStep) Name() string { return "kube/namespaces" }

// After implements provision.Sequenced.
func (NamespacesStep) After() []string { return []string{"kube/init"} }

// AppliesTo implements provision.HostFilter: the first control plane.
func (NamespacesStep) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	return c.FirstControlPlane() == h && len(c.Kubernetes.Namespaces) > 0
}

// Probe lists the cluster's namespaces.
func (NamespacesStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return shell.Value("namespaces", "[ -s "+adminConf+" ] && "+kubectl(adminConf, "get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}"))
}

// Diff implements provision.Step.
func (NamespacesStep) Diff(in provision.Input) ([]provision.Planned[[]string], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	have := strings.Fields(st.Values["namespaces"])
	var missing []string
	for _, ns := range in.Cluster.Kubernetes.Namespaces {
		if !slices.Contains(have, ns) {
			missing = append(missing, ns)
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	return []provision.Planned[[]string]{{Key: "namespaces", Summary: "the cluster lacks the namespaces " + strings.Join(missing, ", "),
		Action: "kubectl create namespace " + strings.Join(missing, " "), Data: missing}}, nil
}

// Apply implements provision.Step.
func (NamespacesStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[[]string]) error {
	for _, c := range changes {
		for _, ns := range c.Data {
			if _, err := t.Run(ctx, transport.Command{Line: kubectl(adminConf, "create", "namespace", ns)}); err != nil {
				return err
			}
		}
	}
	return nil
}
