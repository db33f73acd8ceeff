// Command lab-crictl is the lab's small CRI client: it asks a container
// runtime (containerd, cri-dockerd, CRI-O) over its CRI socket what the lab's
// checks need to see. The real crictl (sigs.k8s.io/cri-tools) is not served
// by the module proxy here, so this is a separate, deliberately small tool
// with its own name; it speaks the same k8s.io/cri-api v1 protocol.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// defaultEndpoint is containerd's socket, the runtime the lab's hosts use.
const defaultEndpoint = "unix:///run/containerd/containerd.sock"

// usage lists the subcommands; each prints JSON with -o json.
const usage = `usage: lab-crictl [-r ENDPOINT] [-timeout D] COMMAND [-o table|json] [-a]

Commands:
  info      runtime status, conditions, cgroup driver and the runtime's config
            (SystemdCgroup per runtime handler, sandbox image) when it reports them
  ps        containers: id, name, state, pod (-a: also exited ones)
  pods      pod sandboxes: id, name, namespace, state
  images    images: id, tags, size
  version   runtime name and version, CRI API version
  pull REF  pull an image through the CRI (the runtime's own registry
            configuration: mirrors, insecure registries); prints its id

ENDPOINT defaults to $CONTAINER_RUNTIME_ENDPOINT, then ` + defaultEndpoint + `.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses the command line and runs one subcommand; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("lab-crictl", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() { fmt.Fprint(stderr, usage) }
	endpoint := global.String("r", envOr("CONTAINER_RUNTIME_ENDPOINT", defaultEndpoint), "CRI endpoint (unix:///path or a socket path)")
	timeout := global.Duration("timeout", 10*time.Second, "time limit for the whole command")
	if err := global.Parse(args); err != nil {
		return 2
	}
	if global.NArg() == 0 {
		global.Usage()
		return 2
	}
	name, rest := global.Arg(0), global.Args()[1:]
	cmdFlags := flag.NewFlagSet("lab-crictl "+name, flag.ContinueOnError)
	cmdFlags.SetOutput(stderr)
	output := cmdFlags.String("o", "table", "output format: table or json")
	all := cmdFlags.Bool("a", false, "ps: list containers in every state, not only running ones")
	if err := cmdFlags.Parse(rest); err != nil {
		return 2
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "lab-crictl: -o %q: want table or json\n", *output)
		return 2
	}

	switch name {
	case "info", "ps", "pods", "images", "version":
	case "pull":
		if cmdFlags.NArg() != 1 {
			fmt.Fprintf(stderr, "lab-crictl pull: want one image reference\n")
			return 2
		}
	default:
		fmt.Fprintf(stderr, "lab-crictl: unknown command %q\n\n%s", name, usage)
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := dial(*endpoint)
	if err != nil {
		fmt.Fprintf(stderr, "lab-crictl: %v\n", err)
		return 1
	}
	defer c.Close()

	asJSON := *output == "json"
	switch name {
	case "info":
		err = runInfo(ctx, c, stdout)
	case "ps":
		err = runPs(ctx, c, stdout, *all, asJSON)
	case "pods":
		err = runPods(ctx, c, stdout, asJSON)
	case "images":
		err = runImages(ctx, c, stdout, asJSON)
	case "version":
		err = runVersion(ctx, c, stdout, asJSON)
	case "pull":
		err = runPull(ctx, c, stdout, cmdFlags.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(stderr, "lab-crictl %s: %v (endpoint %s)\n", name, err, *endpoint)
		return 1
	}
	return 0
}

// envOr returns the environment variable key, or def when it is unset or empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
