package runtime

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// DaemonJSONStep keeps the daemon.json keys kprep owns (registry mirrors,
// insecure registries, logging, the systemd cgroup driver, data-root,
// live-restore) as the inventory sets them, and every other key as the
// user wrote it. A new file is checked with `dockerd --validate` where the
// installed dockerd has it, before it replaces the old one. A daemon.json
// that is not JSON is reported and left alone: kprep does not guess what
// the user meant.
type DaemonJSONStep struct{}

// Name implements provision.Step.
func (DaemonJSONStep) Name() string { return "runtime/daemon-json" }

// DependsOn implements provision.DependsOn: what it decides comes from
// daemon.json and the dockerd installed (its defaults, its unit), which
// only the conflicts and packages steps change; the proxy drop-in, the
// registries' files and hostprep's settings are not what it reads.
func (DaemonJSONStep) DependsOn() []string { return installSteps }

// Probe reads daemon.json, the unit's ExecStart where the file has a
// "hosts" key (a -H flag there forbids it), and what the running dockerd
// read (see loaded.go). Whether dockerd can validate a file is asked only
// when one is written (see validateDaemonJSON).
func (DaemonJSONStep) Probe(*inventory.Host, *inventory.Cluster) string {
	return strings.Join([]string{
		shell.File("daemon", daemonJSONPath),
		// docker.service's ExecStart matters only beside a "hosts" key.
		// Looked for with the shell's read, no process.
		`kprep_h=
if [ -r ` + daemonJSONPath + ` ]; then while IFS= read -r kprep_l || [ -n "$kprep_l" ]; do case $kprep_l in *'"hosts"'*) kprep_h=1; break ;; esac; done <` + daemonJSONPath + `; fi
if [ -n "$kprep_h" ]; then ` +
			shell.Value("execstart", "systemctl cat docker.service 2>/dev/null | grep '^ExecStart=.' | tail -n 1") + `; fi`,
		// The running dockerd's PID and start, from the probe's one
		// systemctl call; its start and the file's mtime only where
		// kprep has no record for this dockerd (loadedSnapshot).
		shell.Show("docker.service", "MainPID", "ActiveEnterTimestamp") + `
echo "pid=$kprep_MainPID"
` + startUnlessRecorded("", "docker", "kprep_MainPID", "kprep_ActiveEnterTimestamp", daemonJSONPath),
		shell.File("loaded", loadedPath("docker")),
	}, "\n")
}

// daemonWrite is the new daemon.json and the record of what the running
// dockerd read, to keep before replacing it.
type daemonWrite struct {
	Content  []byte
	Snapshot *loadedRecord
}

// Diff implements provision.Step.
func (DaemonJSONStep) Diff(in provision.Input) ([]provision.Planned[daemonWrite], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	raw, exists := st.File("daemon")
	cur, err := parseDaemonJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not valid JSON (%v); kprep leaves it as it is: fix it or remove it, and run kprep again", daemonJSONPath, err)
	}
	want := mergeDaemonJSON(cur, desiredDaemonSettings(in.Cluster))
	if _, ok := want["hosts"]; ok && hasHostFlag(st.Values["execstart"]) {
		return nil, fmt.Errorf(`%s sets "hosts" while docker.service starts dockerd with -H; dockerd refuses to start with both: remove "hosts" from %s, or give docker.service an ExecStart without -H in a drop-in`, daemonJSONPath, daemonJSONPath)
	}
	if exists && canonicalJSON(cur) == canonicalJSON(want) {
		return nil, nil
	}
	summary := daemonJSONPath + " is missing"
	if exists {
		var diffs []string
		for _, k := range changedKeys(cur, want) {
			diffs = append(diffs, fmt.Sprintf("%s is %s, want %s", k, describeValue(cur, k), describeValue(want, k)))
		}
		summary = daemonJSONPath + ": " + strings.Join(diffs, "; ")
	}
	action := "write " + daemonJSONPath + ", keeping the keys kprep does not own; dockerd --validate first where dockerd has it"
	return []provision.Planned[daemonWrite]{{Key: "daemon.json", Summary: summary, Action: action,
		Data: daemonWrite{Content: encodeDaemonJSON(want), Snapshot: loadedSnapshot(st, raw, exists)}}}, nil
}

// loadedSnapshot returns a record of the daemon.json the running dockerd
// read, when kprep has none for it and the file has not changed since the
// daemon started (so it is what the daemon read). Kept before the file is
// replaced, it lets ServiceStep reload rather than restart dockerd for a
// change that a reload covers, even for a dockerd kprep did not start.
func loadedSnapshot(st shell.State, raw []byte, exists bool) *loadedRecord {
	pid, _ := strconv.Atoi(st.Values["pid"])
	started, _ := strconv.ParseInt(st.Values["started"], 10, 64)
	mtime, _ := strconv.ParseInt(st.Values["mtime"], 10, 64)
	if pid <= 0 || !exists || started == 0 || mtime == 0 || mtime >= started {
		return nil
	}
	loadedRaw, loadedExists := st.File("loaded")
	if rec, ok := parseLoaded(loadedRaw, loadedExists); ok && rec.PID == pid {
		return nil // kprep knows already
	}
	return &loadedRecord{PID: pid, Content: raw}
}

// hasHostFlag reports whether an ExecStart line passes dockerd -H/--host.
func hasHostFlag(execStart string) bool {
	for _, f := range strings.Fields(execStart) {
		if strings.HasPrefix(f, "-H") || f == "--host" || strings.HasPrefix(f, "--host=") {
			return true
		}
	}
	return false
}

// validateDaemonJSON checks a candidate daemon.json with the installed
// dockerd, from a temporary file beside the real one, where dockerd has
// --validate (23.0 and later; 20.10 has not). Asking dockerd whether it
// has the flag costs a tenth of a second of the host's CPU, so it is
// asked here, when a file is written, and never by the probe.
var validateDaemonJSON = hostfile.CheckCandidate(daemonJSONPath,
	`if dockerd --help 2>&1 | grep -q -e '--validate'; then dockerd --validate --config-file "$f"; fi`)

// Apply implements provision.Step.
func (DaemonJSONStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[daemonWrite]) error {
	for _, c := range changes {
		w := c.Data
		if _, err := t.Run(ctx, transport.Command{Line: validateDaemonJSON, Stdin: w.Content}); err != nil {
			return fmt.Errorf("dockerd --validate refused the new %s, which was not written: %w", daemonJSONPath, err)
		}
		if w.Snapshot != nil {
			if err := t.WriteFile(ctx, loadedPath("docker"), encodeLoaded(*w.Snapshot), transport.WriteOptions{Mode: 0o600, NoBackup: true}); err != nil {
				return err
			}
		}
		if err := t.WriteFile(ctx, daemonJSONPath, w.Content, transport.WriteOptions{Mode: 0o644}); err != nil {
			return err
		}
	}
	return nil
}
