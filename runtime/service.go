package runtime

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// ServiceStep keeps containerd, docker and (with kubernetes.cri:
// cri-dockerd) cri-dockerd enabled, running, and running with the
// configuration on disk. It compares what RUNS with what is configured,
// not what this run wrote, so a run cut off between a write and a restart
// heals on the next one, and a rerun restarts nothing:
//   - docker: `docker info` against daemon.json (registry mirrors and
//     insecure registries need only a reload, SIGHUP; the log driver,
//     cgroup driver and data root a restart), and daemon.json against the
//     copy kprep recorded when dockerd last read it, which covers keys
//     docker info does not show, such as log-opts (the probe skips
//     `docker info` where that record names the running dockerd and
//     matches daemon.json: a converged host's check stays cheap);
//   - every daemon: the proxy variables of the running process against its
//     unit's, a binary replaced by an upgrade, unit files changed on disk;
//   - containerd: config.toml against the recorded copy;
//   - cri-dockerd: its command line against the unit's ExecStart.
//
// Without a record (a daemon started at boot or by hand), a config file
// newer than the daemon's start means a restart.
type ServiceStep struct{}

// Name implements provision.Step.
func (ServiceStep) Name() string { return "runtime/service" }

// managedUnits are the daemons in the order they start: containerd before
// dockerd, which uses it, and dockerd before cri-dockerd.
func managedUnits(c *inventory.Cluster) []managedUnit {
	units := []managedUnit{
		{Name: "containerd", Service: "containerd.service", Config: containerdConfigPath},
		{Name: "docker", Service: "docker.service", Config: daemonJSONPath, DockerInfo: true},
	}
	if c.Kubernetes.CRI == "cri-dockerd" {
		units = append(units, managedUnit{Name: "cri-docker", Service: "cri-docker.service", Socket: "cri-docker.socket", Cmdline: true})
	}
	return units
}

// Probe implements provision.Step.
func (ServiceStep) Probe(_ *inventory.Host, c *inventory.Cluster) string {
	var b strings.Builder
	for _, u := range managedUnits(c) {
		b.WriteString(unitSnippet(u))
	}
	return b.String()
}

// serviceOp is what a unit needs, in rising order of disruption.
type serviceOp int

const (
	opNone serviceOp = iota
	opReload
	opRestart
	opStart
)

// unitPlan is what Apply does to one unit.
type unitPlan struct {
	Unit   managedUnit
	Op     serviceOp
	Enable bool
	// Mirrors are the registry mirrors a reload must bring into effect.
	Mirrors []string
}

// serviceWork is what one change of ServiceStep does: make systemd read
// changed unit files, or act on one unit.
type serviceWork struct {
	DaemonReload bool
	Unit         *unitPlan
}

// Diff implements provision.Step.
func (ServiceStep) Diff(in provision.Input) ([]provision.Planned[serviceWork], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	var changes []provision.Planned[serviceWork]
	var reloadFor []string
	for _, u := range managedUnits(in.Cluster) {
		s := readUnitState(st, u)
		if s.UnitFileState == "masked" {
			return nil, fmt.Errorf("%s is masked, so it cannot run; kprep does not unmask units: run `systemctl unmask %s` if it should run", u.Service, u.Service)
		}
		if s.NeedReload {
			reloadFor = append(reloadFor, u.Service)
		}
		plan, reasons, err := planUnit(u, s)
		if err != nil {
			return nil, err
		}
		if plan.Op == opNone && !plan.Enable {
			continue
		}
		changes = append(changes, provision.Planned[serviceWork]{Key: u.Name, Summary: strings.Join(reasons, "; "),
			Action: plan.action(), Data: serviceWork{Unit: &plan}})
	}
	if len(reloadFor) > 0 {
		changes = append([]provision.Planned[serviceWork]{{Key: "daemon-reload",
			Summary: "systemd has not loaded the unit files changed on disk for " + strings.Join(reloadFor, ", "),
			Action:  "systemctl daemon-reload", Data: serviceWork{DaemonReload: true}}}, changes...)
	}
	return changes, nil
}

// planUnit decides what one unit needs, and says why.
func planUnit(u managedUnit, s unitState) (unitPlan, []string, error) {
	p := unitPlan{Unit: u}
	var reasons []string
	need := func(op serviceOp, why string) {
		p.Op = max(p.Op, op)
		reasons = append(reasons, why)
	}
	switch {
	case !s.Loaded:
		p.Op, p.Enable = opStart, true
		return p, []string{u.Service + " is not installed yet (an earlier runtime step installs it); it will be enabled and started"}, nil
	case !s.Active:
		need(opStart, u.Service+" is not running")
	}
	if s.UnitFileState == "disabled" || (u.Socket != "" && s.SocketEnabled == "disabled") {
		p.Enable = true
		reasons = append(reasons, u.Service+" is not enabled at boot")
	}
	if u.Socket != "" && !s.SocketActive && p.Op < opStart {
		need(opStart, u.Socket+" is not listening")
	}
	if !s.Active {
		p.Enable = p.Enable || s.UnitFileState != "enabled"
		return p, reasons, nil
	}
	if s.NeedReload {
		need(opRestart, "its unit files changed on disk since it started")
	}
	if s.ExeDeleted {
		need(opRestart, "it still runs the binary an upgrade replaced")
	}
	if !maps.Equal(s.RunningEnv, s.ConfiguredEnv) {
		need(opRestart, "it runs with "+describeEnv(s.RunningEnv)+", its unit sets "+describeEnv(s.ConfiguredEnv))
	}
	if u.Cmdline && len(s.ExecArgv) > 0 && !strings.Contains(strings.Join(s.ExecArgv, " "), "$") && !slices.Equal(s.Cmdline, s.ExecArgv) {
		need(opRestart, "it runs as `"+strings.Join(s.Cmdline, " ")+"`, its unit says `"+strings.Join(s.ExecArgv, " ")+"`")
	}
	if u.Config != "" {
		op, why, err := configChange(u, s)
		if err != nil {
			return p, nil, err
		}
		if op != opNone {
			need(op, why)
		}
	}
	if u.DockerInfo {
		cur, err := parseDaemonJSON(s.Config)
		if err != nil {
			return p, nil, fmt.Errorf("%s is not valid JSON (%v)", daemonJSONPath, err)
		}
		want := effectiveDaemonSettings(cur)
		p.Mirrors = want.Mirrors
		switch {
		case s.InfoVouched:
			// The probe skipped `docker info`: kprep's record says this
			// very dockerd read daemon.json as it is now. Held against
			// the record and file the probe sent, in case either moved
			// between the probe's check and its reads.
			if !s.HasRecord || s.Record.PID != s.PID || !bytes.Equal(s.Record.Content, s.Config) {
				return p, nil, fmt.Errorf("the probe found kprep's record %s matching this dockerd, then read a different one: something changed %s while it ran; run again", loadedPath(u.Name), daemonJSONPath)
			}
		case !s.HasInfo:
			need(opRestart, "dockerd does not answer `docker info`")
		default:
			info, err := parseDockerInfo(s.Info)
			if err != nil {
				need(opRestart, err.Error())
				break
			}
			reload, restart := dockerInfoDiff(info, want)
			for _, r := range restart {
				need(opRestart, r)
			}
			for _, r := range reload {
				need(opReload, r)
			}
		}
	}
	return p, reasons, nil
}

// configChange compares a daemon's config file with what the daemon read.
func configChange(u managedUnit, s unitState) (serviceOp, string, error) {
	if s.HasRecord && s.Record.PID == s.PID {
		if !u.DockerInfo {
			if !bytes.Equal(s.Record.Content, s.Config) {
				return opRestart, u.Config + " changed since " + u.Name + " read it", nil
			}
			return opNone, "", nil
		}
		loaded, err1 := parseDaemonJSON(s.Record.Content)
		now, err2 := parseDaemonJSON(s.Config)
		if err1 != nil || err2 != nil {
			return opRestart, u.Config + " changed since dockerd read it", nil
		}
		keys := changedKeys(loaded, now)
		if len(keys) == 0 {
			return opNone, "", nil
		}
		op := opReload
		for _, k := range keys {
			// A reload leaves a key the file no longer has as it was.
			if _, still := now[k]; !reloadableKeys[k] || !still {
				op = opRestart
			}
		}
		return op, fmt.Sprintf("%s changed since dockerd read it: %s", u.Config, strings.Join(keys, ", ")), nil
	}
	// No record of what this process read: a file written after it started
	// (to the second) may not be in effect.
	if s.ConfigExists && s.Started > 0 && s.ConfigMtime >= s.Started {
		return opRestart, u.Config + " was written after " + u.Name + " started", nil
	}
	return opNone, "", nil
}

// describeEnv names proxy variables without their values, which may
// carry a password.
func describeEnv(env map[string]string) string {
	if len(env) == 0 {
		return "no proxy"
	}
	keys := slices.Sorted(maps.Keys(env))
	return "proxy variables " + strings.Join(keys, ", ") + " (other values)"
}

// action says what Apply does to the unit.
func (p unitPlan) action() string {
	s := shell.Quote(p.Unit.Service)
	units := s
	if p.Unit.Socket != "" {
		units = shell.Quote(p.Unit.Socket) + " " + s
	}
	switch p.Op {
	case opStart:
		return "systemctl enable --now " + units
	case opRestart:
		if p.Enable {
			return "systemctl enable " + units + "; systemctl restart " + s
		}
		return "systemctl restart " + s
	case opReload:
		line := "systemctl reload " + s + " (SIGHUP: mirrors and insecure registries need no restart)"
		if p.Enable {
			line = "systemctl enable " + units + "; " + line
		}
		return line
	}
	return "systemctl enable " + units
}

// reloadWait bounds the wait for dockerd to show reloaded settings: SIGHUP
// returns at once, and dockerd reloads behind it.
const reloadWait = 20 * time.Second

// Apply implements provision.Step.
func (ServiceStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[serviceWork]) error {
	for _, c := range changes {
		if c.Data.DaemonReload {
			if _, err := t.Run(ctx, transport.Command{Line: "systemctl daemon-reload"}); err != nil {
				return err
			}
		}
	}
	for _, c := range changes {
		if c.Data.Unit == nil {
			continue
		}
		if err := applyUnit(ctx, t, *c.Data.Unit); err != nil {
			return err
		}
	}
	return nil
}

func applyUnit(ctx context.Context, t provision.Target, p unitPlan) error {
	u := p.Unit
	s := shell.Quote(u.Service)
	units := s
	if u.Socket != "" {
		units = shell.Quote(u.Socket) + " " + s
	}
	var lines []string
	if p.Enable && p.Op != opStart {
		lines = append(lines, "systemctl enable "+units)
	}
	switch p.Op {
	case opStart:
		lines = append(lines, "systemctl enable --now "+units)
	case opRestart:
		lines = append(lines, "systemctl restart "+s)
	case opReload:
		lines = append(lines, "systemctl reload "+s)
	}
	for _, line := range lines {
		if _, err := t.Run(ctx, transport.Command{Line: line, Timeout: 5 * time.Minute}); err != nil {
			return fmt.Errorf("%w%s", err, journalTail(ctx, t, u.Service))
		}
	}
	if p.Op == opReload && u.DockerInfo {
		if err := waitForMirrors(ctx, t, p.Mirrors); err != nil {
			return err
		}
	}
	if p.Op != opNone && u.Config != "" {
		if _, err := t.Run(ctx, transport.Command{Line: recordLoadedCommand(u.Name, u.Service, u.Config)}); err != nil {
			return err
		}
	}
	return nil
}

// journalTail returns the unit's last log lines, for an error that says
// why a daemon did not start.
func journalTail(ctx context.Context, t provision.Target, service string) string {
	res, err := t.Run(ctx, transport.Command{Line: "journalctl -u " + shell.Quote(service) + " -n 15 --no-pager 2>&1 || true"})
	if err != nil || len(bytes.TrimSpace(res.Stdout)) == 0 {
		return ""
	}
	return "\nlast lines of its journal:\n" + strings.TrimRight(string(res.Stdout), "\n")
}

// waitForMirrors waits until dockerd reports the mirrors daemon.json asks
// for, which it does a moment after SIGHUP.
func waitForMirrors(ctx context.Context, t provision.Target, mirrors []string) error {
	var want []string
	for _, m := range mirrors {
		want = append(want, normalizeMirror(m))
	}
	deadline := time.Now().Add(reloadWait)
	var got []string
	for {
		res, err := t.Run(ctx, transport.Command{Line: `docker info --format '{{json .}}'`, Timeout: 30 * time.Second})
		if err == nil {
			if info, err := parseDockerInfo(res.Stdout); err == nil {
				got = got[:0]
				for _, m := range info.RegistryConfig.Mirrors {
					got = append(got, normalizeMirror(m))
				}
				if slices.Equal(got, want) {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after systemctl reload docker, dockerd still reports registry mirrors %s, not %s; see journalctl -u docker", listOrNone(got), listOrNone(want))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
