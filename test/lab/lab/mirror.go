package lab

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kprep/kprep/test/lab/mirror"
)

// helperArg, as a program's first argument, makes it the lab's mirror
// server (see HelperMain).
const helperArg = "kprep-lab-serve-mirror"

// helperEnv marks the helper's environment, so that a program that forgot
// to call HelperMain fails in Up instead of running itself again (a test
// binary would run its tests).
const helperEnv = "KPREP_LAB_HELPER"

// HelperMain turns the running program into the lab's detached mirror
// server when it was started as one, and never returns then; otherwise it
// returns at once. Every program that calls Up (the lab command, test
// binaries) calls HelperMain first thing, because Up starts the server by
// running its own executable again.
func HelperMain() {
	if len(os.Args) < 2 || os.Args[1] != helperArg {
		return
	}
	fl := flag.NewFlagSet(helperArg, flag.ExitOnError)
	root := fl.String("root", "", "folder to serve")
	bin := fl.String("bin", "", "the mirror's binaries, held in the cache with the folder served")
	addr := fl.String("addr", "", "address to listen on")
	fl.String("state", "", "the lab's state folder (names the process for down)")
	_ = fl.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Fprintf(os.Stderr, "lab mirror: serving %s on %s\n", *root, *addr)
	// Builds of other labs (other code) must not prune what this lab uses.
	for _, dir := range []string{*root, *bin} {
		if dir == "" {
			continue
		}
		if err := mirror.HoldInUse(dir); err != nil {
			fmt.Fprintf(os.Stderr, "lab mirror: %v\n", err)
			os.Exit(1)
		}
	}
	if err := mirror.Serve(ctx, *root, *addr); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "lab mirror: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// startMirror serves the built mirror tree over HTTP on the bridge address
// from a detached copy of this program.
func startMirror(ctx context.Context, st *state, tree *mirror.Tree) (Proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return Proc{}, fmt.Errorf("find this program to run the mirror server: %w", err)
	}
	addr := st.Instance.MirrorAddr()
	argv := []string{exe, helperArg, "--state", st.StateDir, "--root", tree.Root, "--bin", tree.BinDir, "--addr", addr}
	logPath := filepath.Join(st.StateDir, "mirror.log")
	p, err := startDetached(argv, []string{helperEnv + "=1"}, logPath)
	if err != nil {
		return Proc{}, err
	}
	if err := waitHTTP(ctx, p, "http://"+addr+"/", 0, 30*time.Second); err != nil {
		return p, fmt.Errorf("mirror server: %w; see %s", err, logPath)
	}
	return p, nil
}

// startRegistry runs Debian's docker-registry on the bridge address with
// its data in the state folder, and pushes the mirror's images into it.
func startRegistry(ctx context.Context, st *state, tree *mirror.Tree) (Proc, error) {
	addr := st.Instance.RegistryAddr()
	dir := filepath.Join(st.StateDir, "registry")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return Proc{}, err
	}
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, mirror.RegistryConfig(filepath.Join(dir, "data"), addr), 0o644); err != nil {
		return Proc{}, fmt.Errorf("write the registry's config: %w", err)
	}
	logPath := filepath.Join(st.StateDir, "registry.log")
	p, err := startDetached([]string{"/usr/bin/docker-registry", "serve", config}, nil, logPath)
	if err != nil {
		return Proc{}, fmt.Errorf("start the registry (Debian package docker-registry): %w", err)
	}
	if err := waitHTTP(ctx, p, "http://"+addr+"/v2/", http.StatusOK, 30*time.Second); err != nil {
		return p, fmt.Errorf("registry: %w; see %s", err, logPath)
	}
	return p, nil
}

// waitHTTP waits until url answers (with status want, if not 0) while the
// server process p lives.
func waitHTTP(ctx context.Context, p Proc, url string, want int, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if !p.Alive() {
			return fmt.Errorf("the server (pid %d) exited", p.PID)
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if want == 0 || resp.StatusCode == want {
				return nil
			}
			last = fmt.Errorf("%s answered %s", url, resp.Status)
		} else {
			last = err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no answer from %s within %s: %v", url, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
