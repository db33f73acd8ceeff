package main

import (
	"github.com/spf13/cobra"

	"github.com/kprep/kprep/provision"
)

func newPlanCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "plan",
		Short: "Show, per host and step, what apply would change and why; changes nothing",
		Long: `plan connects to every host, probes its state in one round trip and shows
what differs from the inventory, per host and step, in words. It changes
nothing. Exit status: 0 nothing to do, 2 changes pending, 1 an error.`,
		Example: `  kprep plan -i cluster.yaml
  kprep plan -i cluster.yaml --phase hostprep -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := g.runEngine(provision.ModePlan, false)
			switch {
			case err != nil:
				return err
			case rep.Failed():
				return &exitError{code: 1}
			case rep.Pending():
				return &exitError{code: 2}
			}
			return nil
		},
	}
}

func newApplyCommand(g *globalOptions) *cobra.Command {
	var failFast bool
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Converge every host; reruns repair drift and change nothing else",
		Long: `apply probes every host, changes only what differs from the inventory,
then probes again to verify. Hosts are worked on in parallel; a host that
fails does not stop the others unless --fail-fast is given. Exit status: 0
converged, 1 a host failed.`,
		Example: `  kprep apply -i cluster.yaml
  kprep apply -i cluster.yaml --phase hostprep --phase runtime -v`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := g.runEngine(provision.ModeApply, failFast)
			if err != nil {
				return err
			}
			if rep.Failed() {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&failFast, "fail-fast", false, "stop every host at the first failure")
	return cmd
}

func newFactsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "facts",
		Short: "Connect and print what kprep learns of each host",
		Long: `facts connects to every host and prints its OS, family, architecture,
kernel, cgroup version and package manager, learned in one round trip.`,
		Example: `  kprep facts -i cluster.yaml
  kprep facts -i cluster.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := g.runEngine(provision.ModeFacts, false)
			if err != nil {
				return err
			}
			if rep.Failed() {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}
