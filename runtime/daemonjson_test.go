package runtime

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/steptest"
)

// A daemon.json a user wrote by hand, with keys kprep does not own, a
// number, a mirror list kprep will replace, and another exec-opt.
const userDaemonJSON = `{
    "debug": true,
    "max-concurrent-downloads": 10,
    "registry-mirrors": ["https://old.example.com"],
    "exec-opts": ["native.umask=normal", "native.cgroupdriver=cgroupfs"],
    "log-opts": {"max-file": 5},
    "storage-driver": "overlay2"
}
`

func TestDaemonJSONMergeKeepsUserKeys(t *testing.T) {
	c := labCluster()
	c.Docker.DataRoot = "/data/docker"
	c.Docker.LiveRestore = true
	changes := mustDiff(t, DaemonJSONStep{}, input(c, rocky9, fileRecord("daemon", userDaemonJSON)+"validate=1\n"))
	if len(changes) != 1 {
		t.Fatalf("changes %v", summariesOf(changes))
	}
	w := changes[0].Data
	want := `{
  "data-root": "/data/docker",
  "debug": true,
  "exec-opts": [
    "native.umask=normal",
    "native.cgroupdriver=systemd"
  ],
  "insecure-registries": [
    "192.168.77.1:5000"
  ],
  "live-restore": true,
  "log-driver": "json-file",
  "log-opts": {
    "max-file": "3",
    "max-size": "50m"
  },
  "max-concurrent-downloads": 10,
  "registry-mirrors": [
    "http://192.168.77.1:5000"
  ],
  "storage-driver": "overlay2"
}
`
	if diff := cmp.Diff(want, string(w.Content)); diff != "" {
		t.Errorf("daemon.json (-want +got):\n%s", diff)
	}
	if !strings.Contains(changes[0].Action, "dockerd --validate first where dockerd has it") {
		t.Errorf("action %q", changes[0].Action)
	}
	for _, part := range []string{`exec-opts is ["native.umask=normal","native.cgroupdriver=cgroupfs"], want ["native.umask=normal","native.cgroupdriver=systemd"]`,
		`registry-mirrors is ["https://old.example.com"], want ["http://192.168.77.1:5000"]`, `live-restore is not set, want true`} {
		if !strings.Contains(changes[0].Summary, part) {
			t.Errorf("summary lacks %q:\n%s", part, changes[0].Summary)
		}
	}
	// What kprep wrote, read back: nothing to do, so a rerun is a no-op.
	if again := mustDiff(t, DaemonJSONStep{}, input(c, rocky9, fileRecord("daemon", string(w.Content)))); len(again) != 0 {
		t.Errorf("rerun: %v", summariesOf(again))
	}
	// Formatting alone is never a reason to rewrite the user's file.
	oneLine := strings.Join(strings.Fields(string(w.Content)), "")
	if again := mustDiff(t, DaemonJSONStep{}, input(c, rocky9, fileRecord("daemon", oneLine))); len(again) != 0 {
		t.Errorf("reformatted file: %v", summariesOf(again))
	}
}

func TestDaemonJSONDropsWhatTheInventoryDrops(t *testing.T) {
	c := labCluster()
	c.Docker.RegistryMirrors, c.Docker.InsecureRegistries, c.Docker.LogOpts = nil, nil, nil
	have := `{"registry-mirrors": ["http://a"], "insecure-registries": ["b:5000"], "log-opts": {"max-size": "1m"}, "live-restore": true, "data-root": "/x", "log-driver": "json-file", "exec-opts": ["native.cgroupdriver=systemd"]}`
	changes := mustDiff(t, DaemonJSONStep{}, input(c, rocky9, fileRecord("daemon", have)))
	// Reloadable keys stay, emptied: a reload would not clear a removed one.
	want := "{\n  \"exec-opts\": [\n    \"native.cgroupdriver=systemd\"\n  ],\n  \"insecure-registries\": [],\n  \"live-restore\": false,\n" +
		"  \"log-driver\": \"json-file\",\n  \"registry-mirrors\": []\n}\n"
	if diff := cmp.Diff(want, string(changes[0].Data.Content)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDaemonJSONFresh(t *testing.T) {
	changes := mustDiff(t, DaemonJSONStep{}, input(labCluster(), rocky9, "file daemon -\nvalidate=\n"))
	if diff := cmp.Diff([]string{"/etc/docker/daemon.json is missing"}, summariesOf(changes)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if w := changes[0].Data; w.Snapshot != nil {
		t.Errorf("fresh write: snapshot %v", w.Snapshot)
	}
}

func TestBadDaemonJSONIsLeftAlone(t *testing.T) {
	tests := []struct{ content, want string }{
		{"{\n  \"debug\": true,\n  \"log-driver\": \"json-file\",\n}\n", "line 4, column 1: invalid character '}' looking for beginning of object key string"},
		{"{\"debug\": true", "line 1, column 15: unexpected EOF"},
		{"[\"a\"]", "it holds a list, not an object"},
		{"{} {}", "there is more after the closing }"},
	}
	for _, tt := range tests {
		_, err := (DaemonJSONStep{}).Diff(input(labCluster(), rocky9, fileRecord("daemon", tt.content)))
		want := "/etc/docker/daemon.json is not valid JSON (" + tt.want + "); kprep leaves it as it is: fix it or remove it, and run kprep again"
		if err == nil || err.Error() != want {
			t.Errorf("%q:\n got %v\nwant %s", tt.content, err, want)
		}
	}
}

func TestHostsKeyWithDashH(t *testing.T) {
	state := fileRecord("daemon", `{"hosts": ["unix:///var/run/docker.sock"]}`) +
		"execstart=ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n"
	_, err := (DaemonJSONStep{}).Diff(input(labCluster(), rocky9, state))
	if err == nil || !strings.Contains(err.Error(), `sets "hosts" while docker.service starts dockerd with -H`) {
		t.Errorf("err = %v", err)
	}
	if hasHostFlag("ExecStart=/usr/bin/dockerd --host-gateway-ip=10.0.0.1") {
		t.Error("--host-gateway-ip taken for -H")
	}
}

func TestDaemonJSONSnapshotsWhatDockerdRead(t *testing.T) {
	c := labCluster()
	old := `{"registry-mirrors": ["http://192.168.77.1:5000"], "log-driver": "json-file"}`
	base := fileRecord("daemon", old) + "pid=4242\nstarted=1700000100\n"
	tests := []struct {
		name, state string
		want        bool
	}{
		{"file older than dockerd: it read it", base + "mtime=1700000000\nfile loaded -\n", true},
		{"file written since: unknown", base + "mtime=1700000100\nfile loaded -\n", false},
		{"kprep has a record for this dockerd", base + "mtime=1700000000\n" + fileRecord("loaded", "4242\n{}"), false},
		{"a record of an earlier dockerd", base + "mtime=1700000000\n" + fileRecord("loaded", "17\n{}"), true},
		{"dockerd not running", fileRecord("daemon", old) + "pid=0\nstarted=\nmtime=1700000000\n", false},
	}
	for _, tt := range tests {
		changes := mustDiff(t, DaemonJSONStep{}, input(c, rocky9, tt.state))
		snap := changes[0].Data.Snapshot
		if (snap != nil) != tt.want {
			t.Errorf("%s: snapshot %v, want %v", tt.name, snap, tt.want)
			continue
		}
		if snap != nil && (snap.PID != 4242 || string(snap.Content) != old) {
			t.Errorf("%s: snapshot %d %q", tt.name, snap.PID, snap.Content)
		}
	}
}

func TestDaemonJSONApplyValidatesFirst(t *testing.T) {
	c := labCluster()
	changes := mustDiff(t, DaemonJSONStep{}, input(c, rocky9, "file daemon -\nvalidate=1\n"))
	host := &steptest.FakeHost{Fail: map[string]string{"mkdir -p /etc/docker": "unable to configure the Docker daemon with file ...: invalid log-opts"}}
	err := (DaemonJSONStep{}).Apply(context.Background(), host.Target(&c.Hosts[0]), input(c, rocky9, ""), changes)
	if err == nil || !strings.Contains(err.Error(), "dockerd --validate refused the new /etc/docker/daemon.json, which was not written") {
		t.Fatalf("err = %v", err)
	}
	if len(host.Written) != 0 {
		t.Errorf("written despite the refusal: %v", host.Written)
	}
}
