package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newValidateCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the inventory; touches no host",
		Long: `validate reads the inventory strictly and prints every problem it finds,
each with file:line:column and the field path. It connects to nothing.`,
		Example: `  kprep validate -i cluster.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, hosts, err := g.loadInventory()
			if err != nil {
				fmt.Fprintln(g.stderr, err)
				return &exitError{code: 1}
			}
			fmt.Fprintf(g.stdout, "%s: valid (%d hosts, %d selected)\n", c.Path, len(c.Hosts), len(hosts))
			return nil
		},
	}
}
