package kube

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/steptest"
)

// nodeState is the probe's record of a Node with these labels, taints and
// kprep's annotation.
func nodeRecord(t *testing.T, labels map[string]string, taints []nodeTaint, owned *managed) string {
	t.Helper()
	var n nodeMeta
	n.Metadata.Labels = labels
	n.Spec.Taints = taints
	if owned != nil {
		b, _ := json.Marshal(owned)
		n.Metadata.Annotations = map[string]string{managedAnnotation: string(b)}
	}
	raw, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return steptest.FileRecord("node", string(raw))
}

func TestNodeLabelsAndTaints(t *testing.T) {
	c := cluster()
	w := &c.Hosts[2]
	w.Labels = map[string]string{"tier": "web"}
	w.Taints = []inventory.Taint{{Key: "dedicated", Value: "web", Effect: "NoSchedule"}}
	base := map[string]string{"kubernetes.io/hostname": "w1"}

	// A fresh node: label, taint and record.
	changes, err := NodeStep{}.Diff(inputFor(c, 2, nodeRecord(t, base, nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"the Node w1 lacks the labels tier=web",
		"the Node w1 lacks the taints dedicated=web:NoSchedule",
		"the Node's kprep.io/managed annotation does not list what kprep keeps there",
	}
	if diff := cmp.Diff(want, steptest.Summaries(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if got := changes[0].Data.Args[0]; !cmp.Equal(got, []string{"label", "node/w1", "--overwrite", "tier=web"}) {
		t.Errorf("label args %q", got)
	}

	// Converged: nothing. A user's own label and taint are not kprep's.
	owned := &managed{Labels: []string{"tier"}, Taints: []string{"dedicated:NoSchedule"}}
	labels := map[string]string{"kubernetes.io/hostname": "w1", "tier": "web", "team": "a"}
	taints := []nodeTaint{{Key: "dedicated", Value: "web", Effect: "NoSchedule"}, {Key: "mine", Effect: "NoExecute"}}
	if changes, _ := (NodeStep{}).Diff(inputFor(c, 2, nodeRecord(t, labels, taints, owned))); len(changes) != 0 {
		t.Errorf("converged: %q", steptest.Summaries(changes))
	}

	// The inventory drops them: kprep removes its own, keeps the user's.
	w.Labels, w.Taints = nil, nil
	changes, _ = NodeStep{}.Diff(inputFor(c, 2, nodeRecord(t, labels, taints, owned)))
	got := strings.Join(steptest.Summaries(changes), "\n")
	for _, s := range []string{"has labels kprep set and the inventory dropped: tier", "has taints the inventory does not want: dedicated:NoSchedule"} {
		if !strings.Contains(got, s) {
			t.Errorf("summaries lack %q:\n%s", s, got)
		}
	}
	if strings.Contains(got, "team") || strings.Contains(got, "mine") {
		t.Errorf("a user's label or taint would be touched:\n%s", got)
	}
}

func TestControlPlaneTaintFollowsTheRoles(t *testing.T) {
	c := cluster()
	cp := nodeTaint{Key: inventory.ControlPlaneTaintKey, Effect: "NoSchedule"}
	// cp2 is only a control plane: the taint stays.
	if changes, _ := (NodeStep{}).Diff(inputFor(c, 1, nodeRecord(t, nil, []nodeTaint{cp}, nil))); len(changes) != 0 {
		t.Errorf("a control plane with its taint: %q", steptest.Summaries(changes))
	}
	// Removed by hand: put back.
	changes, _ := NodeStep{}.Diff(inputFor(c, 1, nodeRecord(t, nil, nil, nil)))
	if len(changes) != 1 || changes[0].Summary != "the Node cp2 lacks the taints node-role.kubernetes.io/control-plane:NoSchedule" {
		t.Errorf("%q", steptest.Summaries(changes))
	}
	// Also a worker: the taint goes.
	c.Hosts[1].Roles = []string{inventory.RoleControlPlane, inventory.RoleWorker}
	changes, _ = NodeStep{}.Diff(inputFor(c, 1, nodeRecord(t, nil, []nodeTaint{cp}, nil)))
	if len(changes) != 1 || !cmp.Equal(changes[0].Data.Args, [][]string{{"taint", "node/cp2", "node-role.kubernetes.io/control-plane:NoSchedule-"}}) {
		t.Errorf("%+v", changes)
	}
}

func TestNamespacesDiff(t *testing.T) {
	c := cluster()
	c.Kubernetes.Namespaces = []string{"apps", "monitoring"}
	changes, err := NamespacesStep{}.Diff(inputFor(c, 0, "namespaces=default kube-system apps\n"))
	if err != nil || len(changes) != 1 || !cmp.Equal(changes[0].Data, []string{"monitoring"}) {
		t.Fatalf("%+v %v", changes, err)
	}
}
