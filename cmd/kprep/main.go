// Command kprep turns bare Linux hosts into a working Kubernetes cluster
// over SSH: it prepares each host, installs the container runtime and
// brings up the cluster with kubeadm, and every rerun repairs drift.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	cmd := newRootCommand(os.Stdout, os.Stderr)
	err := cmd.Execute()
	if err == nil {
		return
	}
	var exit *exitError
	if errors.As(err, &exit) {
		if exit.msg != "" {
			fmt.Fprintln(os.Stderr, "Error:", exit.msg)
		}
		os.Exit(exit.code)
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	os.Exit(1)
}

// exitError ends the program with a status other than 1 (plan's 2), or with
// 1 after the output already said what went wrong (msg empty).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d: %s", e.code, e.msg) }
