package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kprep/kprep/provision/starter"
)

type initOptions struct {
	vagrant       bool
	multipass     bool
	controlPlanes int
	user          string
	key           string
	name          string
}

func newInitCommand(g *globalOptions) *cobra.Command {
	o := &initOptions{}
	cmd := &cobra.Command{
		Use:   "init [--vagrant [DIR] | --multipass | user@host[:port]...]",
		Short: "Print a commented starter inventory for your machines",
		Long: `init prints a commented starter inventory (cluster.yaml) to standard output.
It passes kprep validate as written; review it, then plan and apply.

  --vagrant [DIR]  the running machines of the Vagrant environment in DIR
                   (default: here), from vagrant ssh-config: kprep logs in
                   where Vagrant says (127.0.0.1, the forwarded port, the key
                   Vagrant made) and each machine's private address, read from
                   the machine itself, becomes its cluster address; the NAT
                   address (10.0.2.15 under VirtualBox) never does
  --multipass      the running multipass instances, at the first address
                   multipass lists; stopped ones are reported, not listed
  user@host[:port] any other machines, as arguments or as lines on standard
                   input; with none at all, an example to edit

The first machine runs the control plane (--control-planes N: the first N).
Docker and Kubernetes are pinned to the versions kprep is tested with.`,
		Example: `  vagrant up && kprep init --vagrant > cluster.yaml
  kprep init --multipass --user kprep --key ~/.ssh/id_ed25519 > cluster.yaml
  kprep init root@192.168.56.10 root@192.168.56.11:2222 > cluster.yaml
  printf 'root@10.0.0.%s\n' 1 2 3 | kprep init --control-planes 3 > cluster.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, notes, err := o.run(cmd, args)
			for _, n := range notes {
				fmt.Fprintln(g.stderr, "kprep init: "+n)
			}
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.vagrant, "vagrant", false, "read the running machines of the Vagrant environment in DIR (the one argument; default: here)")
	f.BoolVar(&o.multipass, "multipass", false, "read the running multipass instances")
	f.IntVar(&o.controlPlanes, "control-planes", 1, "how many machines, the first ones, run the control plane")
	f.StringVar(&o.user, "user", "", "login user for --multipass (default kprep, the user inventories/multipass/user-data creates) and for user@host without a user (default root)")
	f.StringVar(&o.key, "key", "", "private key file for --multipass and user@host (default ~/.ssh/id_ed25519 or ~/.ssh/id_rsa when there, else the SSH agent)")
	f.StringVar(&o.name, "name", "lab", "the cluster's name (metadata.name)")
	cmd.MarkFlagsMutuallyExclusive("vagrant", "multipass")
	return cmd
}

// run finds the machines and renders the inventory; notes are for stderr
// (machines left out), never for the inventory's stream.
func (o *initOptions) run(cmd *cobra.Command, args []string) ([]byte, []string, error) {
	ctx := cmd.Context()
	command := "kprep " + strings.Join(os.Args[1:], " ")
	if len(os.Args) < 2 || filepath.Base(os.Args[0]) != "kprep" {
		command = "kprep init " + strings.Join(args, " ")
	}
	var (
		found *starter.Found
		err   error
	)
	switch {
	case o.vagrant:
		if len(args) > 1 {
			return nil, nil, fmt.Errorf("--vagrant takes one folder, got %s", strings.Join(args, " "))
		}
		v := starter.Vagrant{}
		if len(args) == 1 {
			v.Dir = args[0]
		}
		found, err = v.Machines(ctx)
	case o.multipass:
		if len(args) > 0 {
			return nil, nil, fmt.Errorf("--multipass reads every running instance; it takes no arguments (got %s)", strings.Join(args, " "))
		}
		found, err = starter.Multipass{Login: o.login("kprep")}.Machines(ctx)
	case len(args) > 0:
		found, err = starter.Endpoints(args, o.login("root"))
	default:
		in := cmd.InOrStdin()
		if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			found = exampleMachines(o.login("root"))
		} else {
			found, err = starter.ReadEndpoints(in, o.login("root"))
		}
	}
	if err != nil {
		return nil, nil, err
	}
	out, err := starter.Render(found, starter.Options{Command: command, Name: o.name, ControlPlanes: o.controlPlanes})
	if err != nil {
		return nil, found.Skipped, err
	}
	var notes []string
	for _, s := range found.Skipped {
		notes = append(notes, "left out "+s)
	}
	return out, notes, nil
}

// login is the --user and --key login, with the key defaulting to the
// operator's usual one when it exists.
func (o *initOptions) login(defaultUser string) starter.Login {
	l := starter.Login{User: o.user, KeyFile: o.key}
	if l.User == "" {
		l.User = defaultUser
	}
	if l.KeyFile == "" {
		l.KeyFile = defaultKeyFile()
	} else if abs, err := filepath.Abs(l.KeyFile); err == nil && !strings.HasPrefix(l.KeyFile, "~") {
		l.KeyFile = abs
	}
	return l
}

// defaultKeyFile is the first of the operator's usual keys that exists,
// written with ~ so the file reads the same for everyone; "" means the
// agent.
func defaultKeyFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		if fi, err := os.Stat(filepath.Join(home, ".ssh", name)); err == nil && !fi.IsDir() {
			return "~/.ssh/" + name
		}
	}
	return ""
}

// exampleMachines is the starter for `kprep init` on a terminal with no
// machines given: three hosts on Vagrant's usual private network, to edit.
func exampleMachines(login starter.Login) *starter.Found {
	f := &starter.Found{Source: "no machines given: an example; replace the hosts with yours"}
	for i, name := range []string{"cp1", "w1", "w2"} {
		f.Machines = append(f.Machines, starter.Machine{Name: name, Address: fmt.Sprintf("192.168.56.%d", 10+i), Login: login})
	}
	return f
}
