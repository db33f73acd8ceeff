package kube

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// ReadyStep waits, on every host, until its Node is Ready (the CNI is
// running there), and on the first control plane until the cluster's DNS
// answers (CoreDNS available). A node still not Ready after
// kubernetes.readyTimeout is a failure that says why: the Node's
// conditions, the pods on it that are not running, and the kubelet's last
// log lines.
type ReadyStep struct{}

// Name implements provision.Step.
func (ReadyStep) Name() string { return "kube/ready" }

// After implements provision.Sequenced: Ready needs the CNI, and a host's
// Node needs its join.
func (ReadyStep) After() []string {
	return []string{"kube/init", "kube/cni", "kube/join-control-plane", "kube/join-worker"}
}

// readyWork is what ReadyStep waits for.
type readyWork struct {
	Node    bool // the host's Node Ready
	CoreDNS bool // every CoreDNS replica available (first control plane)
	// Replicas is the CoreDNS Deployment's replica count as probed, ""
	// when the probe could not read it.
	Replicas string
}

// kubeconfigOf is the file a host reads the API server with: admin.conf
// on the first control plane, kubelet.conf elsewhere.
func kubeconfigOf(c *inventory.Cluster, h *inventory.Host) string {
	if c.FirstControlPlane() == h {
		return adminConf
	}
	return kubeletConf
}

// Probe reads the Node's Ready condition and, on the first control plane,
// CoreDNS's available replicas.
func (ReadyStep) Probe(h *inventory.Host, c *inventory.Cluster) string {
	probe := nodeProbe(kubeconfigOf(c, h), h.Name)
	if c.FirstControlPlane() == h {
		probe += "\n" + shell.Value("coredns", "[ -s "+adminConf+" ] && "+
			kubectl(adminConf, "-n", "kube-system", "get", "deployment", "coredns", "-o", "jsonpath={.status.availableReplicas}/{.spec.replicas}"))
	}
	return probe
}

// Diff implements provision.Step.
func (ReadyStep) Diff(in provision.Input) ([]provision.Planned[readyWork], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	node := parseNode(st)
	var changes []provision.Planned[readyWork]
	switch {
	case !node.Found:
		// Not a member yet: in plan, the join steps say so; in apply this
		// step runs after them and finds the Node.
		changes = append(changes, provision.Planned[readyWork]{Key: "node", Summary: fmt.Sprintf("%s is not in the cluster yet", in.Host.Name),
			Action: "wait for the Node to be Ready", Data: readyWork{Node: true}})
	case node.Ready != "True":
		changes = append(changes, provision.Planned[readyWork]{Key: "node",
			Summary: fmt.Sprintf("the Node %s is not Ready (%s)", in.Host.Name, strings.TrimSpace(node.Ready+" "+node.Reason)),
			Action:  fmt.Sprintf("wait up to %s for it to be Ready", in.Cluster.Kubernetes.ReadyTimeout), Data: readyWork{Node: true}})
	}
	if in.Cluster.FirstControlPlane() == in.Host {
		avail, want, _ := strings.Cut(st.Values["coredns"], "/")
		if avail == "" || avail == "0" || avail != want {
			changes = append(changes, provision.Planned[readyWork]{Key: "coredns",
				Summary: fmt.Sprintf("CoreDNS is not available (%s replicas ready)", orZero(st.Values["coredns"])),
				Action:  "wait for every CoreDNS replica to be available", Data: readyWork{CoreDNS: true, Replicas: want}})
		}
	}
	return changes, nil
}

// coreDNSCondition is what kubectl wait waits for: every replica available,
// as the probe that verifies the wait asks. The Deployment's Available
// condition alone is met with one of two replicas (its maxUnavailable),
// and the verify then found CoreDNS still short of a replica.
func coreDNSCondition(replicas string) string {
	if replicasKnown(replicas) {
		return "--for=jsonpath={.status.availableReplicas}=" + replicas
	}
	return "--for=condition=Available"
}

// replicasKnown tells whether a Deployment's replica count was read: a
// positive number, not the empty answer of a probe that found none.
func replicasKnown(replicas string) bool {
	n, err := strconv.Atoi(replicas)
	return err == nil && n > 0
}

func orZero(s string) string {
	if s == "" || strings.HasPrefix(s, "/") {
		return "none"
	}
	return s
}

// Apply waits; on a timeout it gathers why, on the host and through the
// first control plane.
func (ReadyStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[readyWork]) error {
	c, h := in.Cluster, in.Host
	timeout := c.Kubernetes.ReadyTimeout
	kubeconfig := kubeconfigOf(c, h)
	// kubectl wait's own --timeout ends it; the command's bound is a
	// little longer so that its message, not ours, says what happened.
	wait := func(line string) error {
		_, err := t.Run(ctx, transport.Command{Line: strings.Replace(line, "--request-timeout="+kubectlTimeout, "--request-timeout=0", 1),
			Timeout: timeout + time.Minute})
		return err
	}
	for _, ch := range changes {
		var err error
		switch {
		case ch.Data.Node:
			err = wait(kubectl(kubeconfig, "wait", "--for=condition=Ready", "node/"+h.Name, "--timeout="+timeout.String()))
		case ch.Data.CoreDNS:
			// wait, not rollout status: a Deployment past its progress
			// deadline (pods waiting for a CNI longer than 10 minutes)
			// makes rollout status fail at once, even as its pods come up.
			coreDNSWait := func(replicas string) error {
				return wait(kubectl(adminConf, "-n", "kube-system", "wait", coreDNSCondition(replicas), "deployment/coredns", "--timeout="+timeout.String()))
			}
			err = coreDNSWait(ch.Data.Replicas)
			if err == nil && !replicasKnown(ch.Data.Replicas) {
				// The probe did not see the Deployment (before kubeadm
				// init, or the API server not answering yet): Available is
				// met with one of two replicas, and the verify asks for all.
				err = waitAllCoreDNSReplicas(ctx, t, coreDNSWait)
			}
		}
		if err != nil {
			return fmt.Errorf("%w\n%s", err, whyNotReady(ctx, t, c, h))
		}
	}
	return nil
}

// waitAllCoreDNSReplicas reads how many replicas CoreDNS's Deployment
// wants, now that it exists, and waits until that many are available.
func waitAllCoreDNSReplicas(ctx context.Context, t provision.Executor, wait func(replicas string) error) error {
	res, err := t.Run(ctx, transport.Command{Line: kubectl(adminConf, "-n", "kube-system", "get", "deployment", "coredns", "-o", "jsonpath={.spec.replicas}")})
	if err != nil {
		return err
	}
	replicas := strings.TrimSpace(string(res.Stdout))
	if !replicasKnown(replicas) {
		return nil // scaled to zero or unreadable: Available is all there is to wait for
	}
	return wait(replicas)
}

// whyNotReady collects what tells why a node is not Ready: its conditions,
// the pods on it that do not run (the CNI's first), and the kubelet's log.
func whyNotReady(ctx context.Context, t provision.Target, c *inventory.Cluster, h *inventory.Host) string {
	var b strings.Builder
	say := func(title string, ex provision.Executor, line string) {
		if ex == nil {
			return
		}
		res, err := ex.Run(ctx, transport.Command{Line: line + " 2>&1", Timeout: time.Minute})
		out := strings.TrimSpace(string(res.Stdout))
		if err != nil && out == "" {
			out = err.Error()
		}
		fmt.Fprintf(&b, "%s:\n%s\n", title, indent(out))
	}
	cp, _ := t.Peer(c.FirstControlPlane().Name)
	say("the Node's conditions", cp, kubectl(adminConf, "get", "node", h.Name, "-o",
		`jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}`))
	say("pods on "+h.Name+" that are not Running", cp, kubectl(adminConf, "get", "pods", "-A", "-o", "wide",
		"--field-selector", "spec.nodeName="+h.Name+",status.phase!=Running"))
	say("the kubelet's last log lines", t, "journalctl -u kubelet.service -n 20 --no-pager")
	return b.String()
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
