package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kprep/kprep/kube/kubeadmconfig"
	"github.com/kprep/kprep/provision/inventory"
)

func newRenderCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Print a file apply would write, without touching any host",
	}
	cmd.AddCommand(newRenderKubeadmCommand(g))
	return cmd
}

func newRenderKubeadmCommand(g *globalOptions) *cobra.Command {
	var host string
	cmd := &cobra.Command{
		Use:   "kubeadm",
		Short: "Print the kubeadm configuration apply would use on a host",
		Long: `render kubeadm prints the kubeadm configuration the host gets: kubeadm
init's documents on the first control plane, a JoinConfiguration on every
other host. The join credentials (bootstrap token, CA hash, certificate key)
exist only while apply runs, so they are shown as marked placeholders.
It reads only the inventory and connects to nothing.`,
		Example: `  kprep render kubeadm -i cluster.yaml --host cp1
  kprep render kubeadm -i cluster.yaml --host w1 > w1-join.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := renderKubeadm(g, host)
			if err != nil {
				fmt.Fprintln(g.stderr, err)
				return &exitError{code: 1}
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "the host whose configuration to print (required)")
	_ = cmd.MarkFlagRequired("host")
	_ = cmd.RegisterFlagCompletionFunc("host", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return hostNames(g), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// renderKubeadm loads the inventory as a command that connects to nothing
// does (no key file or password variable is needed) and renders host's
// configuration.
func renderKubeadm(g *globalOptions, name string) ([]byte, error) {
	c, err := inventory.LoadWith(g.inventory, offlineOptions)
	if err != nil {
		return nil, err
	}
	hosts, err := c.Select([]string{name})
	if err != nil {
		return nil, err
	}
	h := hosts[0]
	if !h.HasRole(inventory.RoleControlPlane) && !h.HasRole(inventory.RoleWorker) {
		return nil, fmt.Errorf("host %s has neither the %s nor the %s role, so kubeadm does not run there and it has no kubeadm configuration",
			h.Name, inventory.RoleControlPlane, inventory.RoleWorker)
	}
	return kubeadmconfig.Render(c, h, nil)
}

// offlineOptions load an inventory for a command that connects to no host:
// key files and password variables are not needed, so not asked for.
var offlineOptions = inventory.Options{
	LookupEnv:  func(string) (string, bool) { return "", true },
	FileExists: func(string) bool { return true },
}

// hostNames lists the inventory's hosts for shell completion.
func hostNames(g *globalOptions) []string {
	c, err := inventory.LoadWith(g.inventory, offlineOptions)
	if err != nil {
		return nil
	}
	var names []string
	for _, h := range c.Hosts {
		names = append(names, h.Name)
	}
	return names
}
