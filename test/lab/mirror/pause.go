package mirror

import (
	"context"
	"path/filepath"
)

// pauseSource is the pod sandbox program of the lab's pause image. It does
// what Kubernetes' pause.c does: hold the pod's namespaces by staying
// alive, reap children (it is PID 1 when the pod shares its PID
// namespace), and exit 0 on SIGINT or SIGTERM. It is Go rather than C so
// that an arm64 image needs no cross C toolchain.
const pauseSource = `// Command pause is the kprep lab's pod sandbox process.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (kprep lab) 3.10")
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", s)
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
`

// buildPause compiles the pause program for a into the cache and returns its path.
func buildPause(ctx context.Context, r *runner, cacheDir string, a arch) (string, error) {
	goV, err := goVersion(ctx, r)
	if err != nil {
		return "", err
	}
	key := recipeKey("pause/1", pauseSource, a.Go, goV)
	dir, err := cached(ctx, filepath.Join(cacheDir, "pause"), key, func(ctx context.Context, tmp string) error {
		r.logf("building the pause program for %s", a.Go)
		if err := writeFile(filepath.Join(tmp, "pause.go"), []byte(pauseSource), 0o644); err != nil {
			return err
		}
		b := *r
		b.env = append(append([]string{}, r.env...), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+a.Go, "GOWORK=off", "GOFLAGS=", "GO111MODULE=off")
		_, err := b.run(ctx, tmp, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(tmp, "pause"), "pause.go")
		return err
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "pause"), nil
}
