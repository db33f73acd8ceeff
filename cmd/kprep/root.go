package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/report"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	inventory   string
	hosts       []string
	phases      []string
	output      string
	concurrency int
	verbose     bool
	noColor     bool

	stdout, stderr io.Writer
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "kprep",
		Short: "Turn bare Linux hosts into a Kubernetes cluster over SSH",
		Long: `kprep prepares hosts for Kubernetes over SSH: it turns off what kubeadm
cannot live with (firewalld, SELinux enforcing, swap), installs Docker CE and
the CRI runtime from your mirror, and brings the cluster up with kubeadm.

Every apply is a drift repair: kprep probes each host in one round trip,
shows what differs, changes only that and reports changed/unchanged per host
and step. plan shows the same without touching anything.`,
		Example: `  # check an inventory without touching any host
  kprep validate -i cluster.yaml

  # see what apply would change, then change it
  kprep plan -i cluster.yaml
  kprep apply -i cluster.yaml

  # only host preparation, only on two hosts, as JSON
  kprep apply -i cluster.yaml --phase hostprep --hosts w1,w2 -o json`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVarP(&g.inventory, "inventory", "i", "cluster.yaml", "inventory file")
	pf.StringSliceVar(&g.hosts, "hosts", nil, "work on these hosts only (comma-separated names)")
	pf.StringSliceVar(&g.phases, "phase", nil, "run only these phases: "+strings.Join(phaseNames(), ", ")+" (repeatable, or comma-separated)")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	pf.IntVar(&g.concurrency, "concurrency", 0, "hosts worked on at once (default: the inventory's concurrency)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "show every command run on the hosts")
	pf.BoolVar(&g.noColor, "no-color", false, "do not colour the output (NO_COLOR is honoured too)")

	registerCompletions(root, g)
	root.AddCommand(
		newValidateCommand(g),
		newInitCommand(g),
		newFactsCommand(g),
		newPlanCommand(g),
		newApplyCommand(g),
		newRenderCommand(g),
		newKubeconfigCommand(g),
		newResetCommand(g),
		newVersionCommand(g),
	)
	return root
}

// check validates the flags common to every command.
func (g *globalOptions) check() error {
	switch g.output {
	case "text", "json":
	default:
		return fmt.Errorf("--output %q: want text or json", g.output)
	}
	for _, p := range g.phases {
		if !knownPhase(p) {
			return fmt.Errorf("--phase %q: want one of %s", p, strings.Join(phaseNames(), ", "))
		}
	}
	if g.concurrency < 0 {
		return fmt.Errorf("--concurrency %d: want 1 or more", g.concurrency)
	}
	return nil
}

// loadInventory reads and validates the inventory and the --hosts selection.
func (g *globalOptions) loadInventory() (*inventory.Cluster, []*inventory.Host, error) {
	if err := g.check(); err != nil {
		return nil, nil, err
	}
	c, err := inventory.Load(g.inventory)
	if err != nil {
		return nil, nil, err
	}
	hosts, err := c.Select(g.hosts)
	if err != nil {
		return nil, nil, err
	}
	return c, hosts, nil
}

// style decides on colour: only on a terminal, never with --no-color or NO_COLOR.
func (g *globalOptions) style() report.Style {
	_, noColorEnv := os.LookupEnv("NO_COLOR")
	return report.Style{Color: !g.noColor && !noColorEnv && isTerminal(g.stdout)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// registerCompletions completes --phase with the phases and --hosts with the
// host names of the inventory given with -i.
func registerCompletions(root *cobra.Command, g *globalOptions) {
	_ = root.RegisterFlagCompletionFunc("phase", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return phaseNames(), cobra.ShellCompDirectiveNoFileComp
	})
	_ = root.RegisterFlagCompletionFunc("hosts", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		names := hostNames(g)
		if names == nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	_ = root.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp
	})
}
