package runtime

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/steptest"
)

// unitProbe is the probe output of one running, enabled unit.
type unitProbe struct {
	name        string
	active      bool
	enabled     string
	pid         int
	needReload  bool
	exe         string
	environ     string // NUL-separated
	environment string // systemctl show -p Environment
	execStart   string
	cmdline     string // NUL-separated
	started     int64
	config      string
	mtime       int64
	record      string // "" none
	info        string
	vouched     bool // the probe skipped docker info on kprep's record
}

func (u unitProbe) String() string {
	var b strings.Builder
	line := func(k, v string) { b.WriteString(u.name + "." + k + "=" + v + "\n") }
	active := "inactive"
	if u.active {
		active = "active"
	}
	line("LoadState", "loaded")
	line("ActiveState", active)
	line("UnitFileState", u.enabled)
	line("MainPID", itoa(u.pid))
	line("NeedDaemonReload", map[bool]string{true: "yes", false: "no"}[u.needReload])
	line("Environment", u.environment)
	line("ExecStart", u.execStart)
	if u.pid > 0 {
		line("exe", u.exe)
		b.WriteString(fileRecord(u.name+".environ", u.environ))
		b.WriteString(fileRecord(u.name+".cmdline", u.cmdline))
	}
	line("started", itoa(int(u.started)))
	if u.config != "" {
		b.WriteString(fileRecord(u.name+".config", u.config))
		line("mtime", itoa(int(u.mtime)))
	} else {
		b.WriteString("file " + u.name + ".config -\n")
	}
	if u.record != "" {
		b.WriteString(fileRecord(u.name+".loaded", u.record))
	} else {
		b.WriteString("file " + u.name + ".loaded -\n")
	}
	if u.info != "" {
		b.WriteString(fileRecord(u.name+".info", u.info))
	}
	if u.vouched {
		line("info_vouched", "1")
	}
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

// The daemon.json kprep writes for labCluster.
const labDaemonJSON = `{
  "exec-opts": ["native.cgroupdriver=systemd"],
  "insecure-registries": ["192.168.77.1:5000"],
  "log-driver": "json-file",
  "log-opts": {"max-file": "3", "max-size": "50m"},
  "registry-mirrors": ["http://192.168.77.1:5000"]
}
`

const containerdToml = "version = 2\n"

// converged returns a containerd and a docker that run exactly what is on
// disk, as kprep leaves them after an apply.
func converged(t *testing.T) (containerd, docker unitProbe) {
	containerd = unitProbe{name: "containerd", active: true, enabled: "enabled", pid: 800, exe: "/usr/bin/containerd",
		execStart: "{ path=/usr/bin/containerd ; argv[]=/usr/bin/containerd ; ignore_errors=no ; start_time=[n/a] }",
		cmdline:   "/usr/bin/containerd\x00", environ: "LANG=C\x00PATH=/usr/bin\x00",
		started: 1700000100, config: containerdToml, mtime: 1700000050, record: "800\n" + containerdToml}
	docker = unitProbe{name: "docker", active: true, enabled: "enabled", pid: 900, exe: "/usr/bin/dockerd",
		execStart: "{ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock ; ignore_errors=no }",
		cmdline:   "/usr/bin/dockerd\x00-H\x00fd://\x00--containerd=/run/containerd/containerd.sock\x00", environ: "LANG=C\x00",
		started: 1700000110, config: labDaemonJSON, mtime: 1700000060, record: "900\n" + labDaemonJSON,
		// Recorded on the lab's rocky9 host after kprep's apply (Debian's
		// dockerd 20.10 under the docker-ce name).
		info: readTestdata(t, "docker-info-20.10.json")}
	return containerd, docker
}

func serviceDiff(t *testing.T, c *inventory.Cluster, units ...unitProbe) []provision.Planned[serviceWork] {
	t.Helper()
	var state string
	for _, u := range units {
		state += u.String()
	}
	return mustDiff(t, ServiceStep{}, input(c, rocky9, state))
}

func TestServiceConvergedDoesNothing(t *testing.T) {
	cd, d := converged(t)
	if changes := serviceDiff(t, labCluster(), cd, d); len(changes) != 0 {
		t.Errorf("converged host: %v", summariesOf(changes))
	}
}

func TestServiceDecidesReloadOrRestart(t *testing.T) {
	withInfo := func(d unitProbe, from, to string) unitProbe {
		d.info = strings.Replace(d.info, from, to, 1)
		return d
	}
	tests := []struct {
		name   string
		edit   func(cd, d *unitProbe)
		ops    map[string]serviceOp
		reason string
	}{
		{"mirror removed from the running daemon", func(cd, d *unitProbe) {
			*d = withInfo(*d, `"Mirrors":["http://192.168.77.1:5000/"]},"NCPU"`, `"Mirrors":[]},"NCPU"`)
		}, map[string]serviceOp{"docker": opReload}, "docker runs with registry mirrors none, daemon.json says [http://192.168.77.1:5000]"},
		{"insecure registry not in effect", func(cd, d *unitProbe) {
			*d = withInfo(*d, `"Secure":false`, `"Secure":true`)
		}, map[string]serviceOp{"docker": opReload}, "docker runs with insecure registries none, daemon.json says [192.168.77.1:5000]"},
		{"cgroup driver", func(cd, d *unitProbe) {
			*d = withInfo(*d, `"CgroupDriver":"systemd"`, `"CgroupDriver":"cgroupfs"`)
		}, map[string]serviceOp{"docker": opRestart}, "docker runs with cgroup driver cgroupfs, daemon.json says systemd"},
		{"log-opts changed since dockerd read daemon.json", func(cd, d *unitProbe) {
			d.record = "900\n" + strings.Replace(labDaemonJSON, `"max-file": "3"`, `"max-file": "5"`, 1)
		}, map[string]serviceOp{"docker": opRestart}, "/etc/docker/daemon.json changed since dockerd read it: log-opts"},
		{"mirror changed since dockerd read daemon.json", func(cd, d *unitProbe) {
			d.record = "900\n" + strings.Replace(labDaemonJSON, `"registry-mirrors": ["http://192.168.77.1:5000"]`, `"registry-mirrors": []`, 1)
		}, map[string]serviceOp{"docker": opReload}, "/etc/docker/daemon.json changed since dockerd read it: registry-mirrors"},
		{"a reloadable key gone from daemon.json: a reload would keep it", func(cd, d *unitProbe) {
			d.record = "900\n" + strings.Replace(labDaemonJSON, `"log-driver"`, `"debug": true, "log-driver"`, 1)
		}, map[string]serviceOp{"docker": opRestart}, "/etc/docker/daemon.json changed since dockerd read it: debug"},
		{"no record, file older than the daemon", func(cd, d *unitProbe) {
			d.record = ""
		}, map[string]serviceOp{}, ""},
		{"no record, file newer than the daemon", func(cd, d *unitProbe) {
			d.record, d.mtime = "", d.started
		}, map[string]serviceOp{"docker": opRestart}, "/etc/docker/daemon.json was written after docker started"},
		{"record of an earlier dockerd", func(cd, d *unitProbe) {
			d.record, d.mtime = "17\n{}", d.started+5
		}, map[string]serviceOp{"docker": opRestart}, "/etc/docker/daemon.json was written after docker started"},
		{"containerd config changed", func(cd, d *unitProbe) {
			cd.record = "800\n# stock\n"
		}, map[string]serviceOp{"containerd": opRestart}, "/etc/containerd/config.toml changed since containerd read it"},
		{"proxy added to the unit", func(cd, d *unitProbe) {
			d.environment = `HTTP_PROXY=http://proxy:3128 "NO_PROXY=localhost,127.0.0.1"`
		}, map[string]serviceOp{"docker": opRestart}, "it runs with no proxy, its unit sets proxy variables HTTP_PROXY, NO_PROXY (other values)"},
		{"proxy in effect", func(cd, d *unitProbe) {
			d.environment = `HTTP_PROXY=http://proxy:3128 "NO_PROXY=localhost,127.0.0.1"`
			d.environ = "LANG=C\x00HTTP_PROXY=http://proxy:3128\x00NO_PROXY=localhost,127.0.0.1\x00"
		}, map[string]serviceOp{}, ""},
		{"binary upgraded under it", func(cd, d *unitProbe) {
			cd.exe = "/usr/bin/containerd (deleted)"
		}, map[string]serviceOp{"containerd": opRestart}, "it still runs the binary an upgrade replaced"},
		{"not running", func(cd, d *unitProbe) {
			d.active, d.pid, d.info = false, 0, ""
		}, map[string]serviceOp{"docker": opStart}, "docker.service is not running"},
		{"dockerd hangs", func(cd, d *unitProbe) {
			d.info = ""
		}, map[string]serviceOp{"docker": opRestart}, "dockerd does not answer `docker info`"},
		{"docker info skipped on kprep's record", func(cd, d *unitProbe) {
			d.info, d.vouched = "", true
		}, map[string]serviceOp{}, ""},
		{"docker info skipped, yet the unit's proxy moved", func(cd, d *unitProbe) {
			d.info, d.vouched = "", true
			d.environment = `HTTP_PROXY=http://proxy:3128`
		}, map[string]serviceOp{"docker": opRestart}, "it runs with no proxy, its unit sets proxy variables HTTP_PROXY (other values)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cd, d := converged(t)
			tt.edit(&cd, &d)
			changes := serviceDiff(t, labCluster(), cd, d)
			ops := map[string]serviceOp{}
			for _, c := range changes {
				ops[c.Key] = c.Data.Unit.Op
			}
			if diff := cmp.Diff(tt.ops, ops); diff != "" {
				t.Errorf("ops (-want +got):\n%s", diff)
			}
			if tt.reason != "" && (len(changes) == 0 || !strings.Contains(changes[0].Summary, tt.reason)) {
				t.Errorf("summary %v lacks %q", summariesOf(changes), tt.reason)
			}
		})
	}
}

// A probe that skipped docker info on kprep's record, then read a record
// or daemon.json that does not match it, raced a change: the diff refuses
// to guess rather than restart or trust a stale record.
func TestServiceVouchedRecordMustMatch(t *testing.T) {
	for name, edit := range map[string]func(d *unitProbe){
		"record of another dockerd": func(d *unitProbe) { d.record = "17\n" + labDaemonJSON },
		"record of another file":    func(d *unitProbe) { d.record = "900\n{}" },
		"no record":                 func(d *unitProbe) { d.record = "" },
	} {
		t.Run(name, func(t *testing.T) {
			cd, d := converged(t)
			d.info, d.vouched = "", true
			edit(&d)
			_, err := ServiceStep{}.Diff(input(labCluster(), rocky9, cd.String()+d.String()))
			if err == nil || !strings.Contains(err.Error(), "run again") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestServiceEnableAndDaemonReload(t *testing.T) {
	cd, d := converged(t)
	d.enabled = "disabled"
	cd.needReload = true
	changes := serviceDiff(t, labCluster(), cd, d)
	if diff := cmp.Diff([]string{"daemon-reload", "containerd", "docker"}, keysOf(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if p := changes[2].Data.Unit; p.Op != opNone || !p.Enable || changes[2].Action != "systemctl enable docker.service" {
		t.Errorf("docker: %+v %q", p, changes[2].Action)
	}
	host := &steptest.FakeHost{}
	c := labCluster()
	if err := (ServiceStep{}).Apply(context.Background(), host.Target(&c.Hosts[0]), input(c, rocky9, ""), changes); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"systemctl daemon-reload",
		"systemctl restart containerd.service",
		recordLoadedCommand("containerd", "containerd.service", containerdConfigPath),
		"systemctl enable docker.service",
	}
	if diff := cmp.Diff(want, host.Ran); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	cd.enabled = "masked"
	if _, err := (ServiceStep{}).Diff(input(c, rocky9, cd.String()+d.String())); err == nil || !strings.Contains(err.Error(), "systemctl unmask containerd.service") {
		t.Errorf("masked: %v", err)
	}
}

func TestServiceReloadWaitsForTheMirrors(t *testing.T) {
	cd, d := converged(t)
	info := d.info
	d.info = strings.Replace(info, `"Mirrors":["http://192.168.77.1:5000/"]},"NCPU"`, `"Mirrors":[]},"NCPU"`, 1)
	c := labCluster()
	changes := serviceDiff(t, c, cd, d)
	host := &steptest.FakeHost{Replies: map[string]string{"docker info": info}}
	if err := (ServiceStep{}).Apply(context.Background(), host.Target(&c.Hosts[0]), input(c, rocky9, ""), changes); err != nil {
		t.Fatal(err)
	}
	want := []string{"systemctl reload docker.service", `docker info --format '{{json .}}'`, recordLoadedCommand("docker", "docker.service", daemonJSONPath)}
	if diff := cmp.Diff(want, host.Ran); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestServiceRestartFailureShowsTheJournal(t *testing.T) {
	cd, d := converged(t)
	d.info = strings.Replace(d.info, `"LoggingDriver":"json-file"`, `"LoggingDriver":"journald"`, 1)
	c := labCluster()
	changes := serviceDiff(t, c, cd, d)
	host := &steptest.FakeHost{Fail: map[string]string{"systemctl restart docker": "Job for docker.service failed"},
		Replies: map[string]string{"journalctl": "dockerd[901]: failed to start daemon: invalid log-opts\n"}}
	err := (ServiceStep{}).Apply(context.Background(), host.Target(&c.Hosts[0]), input(c, rocky9, ""), changes)
	if err == nil || !strings.Contains(err.Error(), "Job for docker.service failed") || !strings.Contains(err.Error(), "invalid log-opts") {
		t.Errorf("err = %v", err)
	}
}

func TestCRIDockerdUnitFollowsItsCommandLine(t *testing.T) {
	c := labCluster()
	c.Kubernetes.CRI = "cri-dockerd"
	cd, d := converged(t)
	argv := "/usr/bin/cri-dockerd --container-runtime-endpoint fd:// --pod-infra-container-image=192.168.77.1:5000/google_containers/pause:3.10.1"
	cri := unitProbe{name: "cri-docker", active: true, enabled: "enabled", pid: 1000, exe: criDockerdBinary,
		execStart: "{ path=/usr/bin/cri-dockerd ; argv[]=" + argv + " ; ignore_errors=no }",
		cmdline:   strings.ReplaceAll(argv, " ", "\x00") + "\x00"}
	socket := "cri-docker.socket.ActiveState=active\ncri-docker.socket.UnitFileState=enabled\n"
	state := cd.String() + d.String() + cri.String() + socket
	if changes := mustDiff(t, ServiceStep{}, input(c, rocky9, state)); len(changes) != 0 {
		t.Errorf("converged: %v", summariesOf(changes))
	}
	cri.cmdline = strings.Replace(cri.cmdline, "3.10.1", "3.9", 1)
	changes := mustDiff(t, ServiceStep{}, input(c, rocky9, cd.String()+d.String()+cri.String()+socket))
	if len(changes) != 1 || changes[0].Data.Unit.Op != opRestart {
		t.Errorf("old command line: %v", summariesOf(changes))
	}
	changes = mustDiff(t, ServiceStep{}, input(c, rocky9, cd.String()+d.String()+cri.String()))
	if len(changes) != 1 || changes[0].Action != "systemctl enable --now cri-docker.socket cri-docker.service" {
		t.Errorf("socket down: %+v", changes)
	}
}
