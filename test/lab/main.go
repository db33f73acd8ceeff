// Command lab builds and runs kprep's test hosts on this machine (root
// needed): `go run ./test/lab up`, `status`, `exec HOST -- CMD...`,
// `ssh HOST`, `down`; `--id N` (or KPREP_LAB_ID) picks one of several labs
// side by side. See test/lab/README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kprep/kprep/test/lab/instance"
	"github.com/kprep/kprep/test/lab/lab"
)

func main() {
	// Up starts the mirror server by running this program again.
	lab.HelperMain()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(exitCodeOf(err))
	}
}

// exitStatus is an error that carries the exit status of a command run in
// a host, so that `lab exec` exits as the command did.
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func exitCodeOf(err error) int {
	var es exitStatus
	if errors.As(err, &es) {
		return es.code
	}
	return 1
}

// target is the lab a command works on: its instance and state folder,
// from --id and --state (or KPREP_LAB_ID and KPREP_LAB_STATE).
type target struct {
	id       instance.ID
	stateDir string
}

func newRootCmd() *cobra.Command {
	var tg target
	var idFlag string
	root := &cobra.Command{
		Use:           "lab",
		Short:         "Real systemd test hosts for kprep on this machine",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			id, err := instance.Parse(idFlag)
			if err != nil {
				return fmt.Errorf("--id (or %s): %w", instance.Env, err)
			}
			tg.id = id
			if tg.stateDir == "" {
				tg.stateDir = envOr("KPREP_LAB_STATE", id.StateDir())
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&idFlag, "id", envOr(instance.Env, "0"),
		fmt.Sprintf("lab instance, 0 to %d (env %s): its own bridge, subnet, state folder, cgroups and locks (test/lab/README.md)", instance.Max, instance.Env))
	root.PersistentFlags().StringVar(&tg.stateDir, "state", "", "state folder of the running lab (env KPREP_LAB_STATE; default "+
		instance.ID(0).StateDir()+" for instance 0, "+instance.ID(0).StateDir()+"-ID for the others)")
	root.AddCommand(newUpCmd(&tg), newStatusCmd(&tg), newExecCmd(&tg),
		newSSHCmd(&tg), newDownCmd(&tg), newInventoryCmd(&tg), newSudoPasswordCmd(&tg))
	return root
}

// envOr returns the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newUpCmd(tg *target) *cobra.Command {
	var o lab.Options
	var osList, vmList string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Build (or take from the cache) and boot the hosts; print the inventory's path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if osList != "" {
				o.OS = strings.Split(osList, ",")
			}
			if vmList != "" {
				o.VMs = strings.Split(vmList, ",")
			}
			o.Instance, o.StateDir = &tg.id, tg.stateDir
			o.Log = cmd.ErrOrStderr()
			l, err := lab.Up(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("%w\n(remove what was made with: go run ./test/lab --id %d down)", err, tg.id)
			}
			out := cmd.OutOrStdout()
			for _, h := range l.Hosts() {
				if h.SudoNeedsPassword {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s logs in as %s and its sudo asks for a password; for kprep:\n  export %s=\"$(cat %s)\"\n",
						h.Name, h.SSHUser, l.SudoPasswordEnv(), l.SudoPasswordFile())
				}
			}
			fmt.Fprintln(out, l.InventoryPath())
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Hosts, "hosts", 3, "number of hosts (lab1..labN)")
	cmd.Flags().StringVar(&osList, "os", strings.Join(lab.DefaultOS, ","),
		"personalities (or VM host kinds), cycled over the hosts: "+strings.Join(append(lab.PersonalityNames(), lab.VMNames()...), ", "))
	cmd.Flags().StringVar(&vmList, "vm", "",
		"VM hosts to add after the --hosts ones, one each (comma-separated): "+strings.Join(lab.VMNames(), ", ")+
			" (a real aarch64 machine under QEMU; its first build takes many minutes)")
	cmd.Flags().StringVar(&o.CacheDir, "cache", lab.CacheDirFromEnv(), "cache folder (env KPREP_LAB_CACHE)")
	cmd.Flags().BoolVar(&o.NoMirror, "no-mirror", false, "skip the package mirror and registry (hosts only)")
	return cmd
}

func newStatusCmd(tg *target) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the running lab's hosts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := lab.Open(tg.stateDir)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "HOST\tADDRESS\tOS\tARCH\tROLES\tSSH USER\tSTATE")
			for _, h := range l.Hosts() {
				state := "stopped"
				if out, _, err := l.Exec(cmd.Context(), h.Name, "systemctl", "is-system-running"); err == nil || len(out) > 0 {
					state = strings.TrimSpace(string(out))
				}
				user := h.SSHUser
				if h.SudoNeedsPassword {
					user += " (sudo password)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Address, h.OS, h.Arch, strings.Join(h.Roles, ","), user, state)
			}
			w.Flush()
			mirror := "not served (--no-mirror)"
			if l.MirrorServed() {
				mirror = l.MirrorURL() + ", registry " + l.RegistryAddr()
			}
			id := l.Instance()
			fmt.Fprintf(cmd.OutOrStdout(), "\ninstance:  %d (bridge %s, %s)\nmirror:    %s\ninventory: %s\nkey:       %s\n",
				int(id), id.Bridge(), id.Subnet(), mirror, l.InventoryPath(), l.KeyFile())
			return nil
		},
	}
}

func newExecCmd(tg *target) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec HOST -- CMD...",
		Short: "Run a command as root inside a host (nsenter, no SSH)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(dropDashes(args[1:])) == 0 {
				return fmt.Errorf("exec %s: no command given", args[0])
			}
			l, err := lab.Open(tg.stateDir)
			if err != nil {
				return err
			}
			// Piped input goes to the command (exec lab1 -- sh -c 'cat >f' <f).
			var stdin []byte
			if !term.IsTerminal(int(os.Stdin.Fd())) {
				if stdin, err = io.ReadAll(os.Stdin); err != nil {
					return fmt.Errorf("read stdin: %w", err)
				}
			}
			stdout, stderr, err := l.ExecInput(cmd.Context(), args[0], stdin, dropDashes(args[1:])...)
			os.Stdout.Write(stdout)
			os.Stderr.Write(stderr)
			if code := lab.ExitCode(err); code > 0 {
				return exitStatus{code}
			}
			return err
		},
	}
	// Flags after HOST belong to the command: exec lab1 ls -la.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// dropDashes removes the "--" that separates a host from its command
// (cobra keeps it once flags stop being parsed after the host).
func dropDashes(args []string) []string {
	if len(args) > 0 && args[0] == "--" {
		return args[1:]
	}
	return args
}

func newSSHCmd(tg *target) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ssh HOST [-- CMD...]",
		Short: "Log into a host over SSH as its inventory user, with the lab key",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lab.Open(tg.stateDir)
			if err != nil {
				return err
			}
			h, err := l.Host(args[0])
			if err != nil {
				return err
			}
			argv := []string{"ssh", "-i", l.KeyFile(), "-o", "IdentitiesOnly=yes",
				"-o", "UserKnownHostsFile=" + l.KnownHostsFile(), "-o", "StrictHostKeyChecking=accept-new",
				h.SSHUser + "@" + h.Address}
			argv = append(argv, dropDashes(args[1:])...)
			path, err := exec.LookPath("ssh")
			if err != nil {
				return fmt.Errorf("ssh (Debian package openssh-client): %w", err)
			}
			return syscall.Exec(path, argv, os.Environ())
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func newInventoryCmd(tg *target) *cobra.Command {
	return &cobra.Command{
		Use:   "inventory",
		Short: "Print the path of the running lab's inventory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := lab.Open(tg.stateDir)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), l.InventoryPath())
			return nil
		},
	}
}

func newSudoPasswordCmd(tg *target) *cobra.Command {
	return &cobra.Command{
		Use:   "sudo-password",
		Short: "Print the sudo password of the host that asks for one (for export " + lab.SudoPasswordEnv + "=$(...))",
		Long: "Prints the lab's generated sudo password on stdout, and nothing else, for\n" +
			"  export " + lab.SudoPasswordEnv + "=\"$(go run ./test/lab sudo-password)\"\n" +
			"It is a throw-away secret of a test host; it is never printed otherwise.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := lab.Open(tg.stateDir)
			if err != nil {
				return err
			}
			pw, err := l.SudoPassword()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), pw)
			return nil
		},
	}
}

func newDownCmd(tg *target) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove every host, link, mount and process of the lab (keeps the caches)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lab.DownInstance(cmd.Context(), tg.id, tg.stateDir, cmd.ErrOrStderr()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s is down\n", tg.id)
			return nil
		},
	}
}
