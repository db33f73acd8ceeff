package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kprep/kprep/kube"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/report"
)

func newKubeconfigCommand(g *globalOptions) *cobra.Command {
	var write string
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the cluster admin's kubeconfig, or write it to a file (mode 0600)",
		Long: `kubeconfig reads the cluster admin's kubeconfig (/etc/kubernetes/admin.conf)
from the first control plane over SSH and prints it, or writes it to FILE
with mode 0600 (a temporary file beside it, renamed over it, so a reader
never sees half a file).

The server it names is one your own machine can reach. Behind a load
balancer (kubernetes.controlPlaneEndpoint set) it is that endpoint, as
kubeadm wrote it. In local mode (the default) the endpoint is a name that
only the cluster's hosts resolve, so the kubeconfig names the first control
plane's address and the API servers' port instead,
https://<address>:<localEndpoint.port>; the API server certificate names
every control plane's address, so TLS is checked as through the name. While
the first control plane is down, point it at another one:
kubectl config set-cluster kubernetes --server https://<cp2>:6443.

The file holds the admin's private key: keep it as you would a password.`,
		Example: `  kprep kubeconfig -i cluster.yaml --write ~/.kube/lab.conf
  KUBECONFIG=~/.kube/lab.conf kubectl get nodes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := adminKubeconfig(g)
			if err != nil {
				return err
			}
			if write == "" {
				_, err = g.stdout.Write(data)
				return err
			}
			if err := writeFileAtomic(write, data, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "wrote the admin kubeconfig to %s (mode 0600)\n", write)
			return nil
		},
	}
	cmd.Flags().StringVar(&write, "write", "", "write the kubeconfig to this file, mode 0600, instead of printing it")
	return cmd
}

// adminKubeconfig connects to the first control plane and reads its
// admin kubeconfig, with the server the operator's machine reaches.
func adminKubeconfig(g *globalOptions) ([]byte, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	c, err := inventory.Load(g.inventory)
	if err != nil {
		return nil, err
	}
	ctx, stop := interruptContext()
	defer stop()
	first := c.FirstControlPlane()
	var logger commandLogger
	if g.verbose {
		// stdout may be the kubeconfig itself.
		logger = report.NewLines(g.stderr, report.Style{}, len(first.Name))
	}
	conn, err := newDialer(logger).Dial(ctx, first)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", first.Name, err)
	}
	defer conn.Close()
	return kube.AdminKubeconfig(ctx, conn, c)
}

// writeFileAtomic writes data to path with mode: to a temporary file in the
// same folder, synced, then renamed over path, so path is never half
// written and never readable by others, even for a moment.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".kprep-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp makes the file 0600 already; Chmod also narrows a wider mode.
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
