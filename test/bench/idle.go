package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kprep/kprep/test/lab/lab"
)

// Every SSH login of a user with no session yet starts systemd's manager
// for that user (user@UID.service, pam_systemd), and systemd stops it
// 10 s after the last logout (UserStopDelaySec). Timed back to back, the
// first tool of a round paid every host's manager start, and the next one
// its stop, whichever tools those were: at 200 hosts the plan after the
// floor cost the hosts 40 s of CPU and the apply after it 31 s. Each
// timed run starts from hosts where no user has a session or a manager
// left, as an operator's run on idle hosts does.

// idleTimeout bounds the wait: a manager kept by lingering, or a session
// someone left open, never ends.
const idleTimeout = 2 * time.Minute

// userSlices returns the user slices alive on the lab's hosts, from their
// cgroups (under nspawn's payload group, cgroup v2 or the hybrid layout's
// unified tree).
func userSlices(l *lab.Lab) []string {
	var out []string
	root := l.Instance().CgroupRoot()
	for _, base := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(base, root)); err != nil {
			continue
		}
		for _, h := range l.Hosts() {
			for _, pattern := range []string{"user.slice/user-*.slice", "*/user.slice/user-*.slice"} {
				m, _ := filepath.Glob(filepath.Join(base, root, h.Name, pattern))
				out = append(out, m...)
			}
		}
		return out
	}
	return nil
}

// waitIdle waits until no host has a user slice left, checking every
// 200 ms, and says so when it gives up (the run is then timed anyway).
func waitIdle(ctx context.Context, l *lab.Lab) error {
	deadline := time.Now().Add(idleTimeout)
	for {
		left := userSlices(l)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			logf("hosts not idle after %s, timing anyway: %d user slices left, e.g. %s", idleTimeout, len(left), left[0])
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for idle hosts: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
