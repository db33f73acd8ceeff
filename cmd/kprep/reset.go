package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kprep/kprep/kube"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
)

func newResetCommand(g *globalOptions) *cobra.Command {
	var yes, force bool
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Undo the kube phase on hosts: drain, delete the Node, kubeadm reset and its leftovers",
		Long: `reset takes hosts out of the cluster and undoes the kube phase on them, so
that apply can bring them back as if new. On each host, in this order: its
Node is drained and deleted through a control plane that stays, kubeadm
reset runs (a control plane's etcd member goes with it), then what kubeadm
reset leaves is removed: the CNI's configuration and state (/etc/cni/net.d,
/var/lib/cni), the kube and CNI iptables chains (KUBE-*, FLANNEL*, CNI-*;
other chains stay), the flannel.1 and cni0 links, the kubelet's state
(/var/lib/kubelet), /etc/kubernetes and kprep's line for the API endpoint
in /etc/hosts. The packages, the runtime and hostprep's changes stay.

Workers go first, all at once; then the control planes, one at a time.
Before each control plane, reset asks etcd (through a control plane that
stays) whether its members would keep a healthy majority without it, and
refuses if not. It also refuses to reset the last control plane, which
ends the cluster. --force does both anyway, and goes on when a Node cannot
be drained or no control plane that stays answers: to tear a whole cluster
down, reset every host with --force.

reset asks for confirmation on a terminal; elsewhere it needs --yes.
Without --hosts it resets every host of the inventory. Exit status: 0
done, 1 a host failed or nothing was done.`,
		Example: `  # take a worker out; apply brings it back
  kprep reset -i cluster.yaml --hosts w3
  kprep apply -i cluster.yaml

  # remove a control plane in a script
  kprep reset -i cluster.yaml --hosts cp3 --yes

  # tear the whole cluster down
  kprep reset -i cluster.yaml --yes --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(g.phases) > 0 {
				return fmt.Errorf("--phase does not apply to reset, which undoes the kube phase only")
			}
			c, hosts, err := g.loadInventory()
			if err != nil {
				return err
			}
			if err := refuseLastControlPlane(c, hosts, force); err != nil {
				return err
			}
			if !yes {
				in := cmd.InOrStdin()
				if err := confirmReset(in, g.stderr, isTerminalReader(in), c, hosts); err != nil {
					return err
				}
			}
			names := make([]string, len(hosts))
			for i, h := range hosts {
				names[i] = h.Name
			}
			steps := kube.ResetSteps(kube.ResetOptions{Resetting: names, Force: force})
			rep, err := g.runSteps(c, hosts, runSpec{mode: provision.ModeApply, steps: steps, command: "reset"})
			if err != nil {
				return err
			}
			if rep.Failed() {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (needed without a terminal)")
	cmd.Flags().BoolVar(&force, "force", false, "also reset the last control plane and control planes etcd cannot lose, and go on when a Node cannot be drained")
	return cmd
}

// refuseLastControlPlane refuses, without force, a reset that leaves the
// cluster no control plane.
func refuseLastControlPlane(c *inventory.Cluster, hosts []*inventory.Host, force bool) error {
	if force {
		return nil
	}
	selected := map[string]bool{}
	for _, h := range hosts {
		selected[h.Name] = true
	}
	var cps []string
	for _, cp := range c.ControlPlanes() {
		if !selected[cp.Name] {
			return nil
		}
		cps = append(cps, cp.Name)
	}
	return fmt.Errorf("refusing to reset every control plane (%s): the cluster and its etcd data would be gone. "+
		"Leave one out with --hosts, or add --force to tear the whole cluster down", strings.Join(cps, ", "))
}

// confirmReset asks on a terminal for "yes"; without a terminal it refuses
// (a script says --yes).
func confirmReset(in io.Reader, out io.Writer, terminal bool, c *inventory.Cluster, hosts []*inventory.Host) error {
	if !terminal {
		return fmt.Errorf("reset needs a confirmation: run it on a terminal, or add --yes")
	}
	var what []string
	for _, h := range hosts {
		role := "worker"
		if h.HasRole(inventory.RoleControlPlane) {
			role = "control plane"
		}
		what = append(what, fmt.Sprintf("%s (%s, %s)", h.Name, h.Address, role))
	}
	fmt.Fprintf(out, "kprep reset takes %d host(s) of cluster %q out of it and undoes the kube phase there:\n  %s\n"+
		"Their Nodes are drained and deleted, kubeadm reset runs, and their CNI files, kube iptables chains,\n"+
		"kubelet state and /etc/kubernetes are removed.\nType yes to go on: ",
		len(hosts), c.Metadata.Name, strings.Join(what, "\n  "))
	answer, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && answer == "" {
		return fmt.Errorf("reset cancelled: no answer (%v)", err)
	}
	if strings.TrimSpace(answer) != "yes" {
		return fmt.Errorf("reset cancelled: the answer was %q, not yes", strings.TrimSpace(answer))
	}
	return nil
}

// isTerminalReader reports whether r is a terminal.
func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
