package runtime

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/steptest"
)

func TestProxyDropin(t *testing.T) {
	c := labCluster()
	c.Docker.Proxy.HTTP = "http://user:p%40ss@proxy.corp.example:3128"
	c.Docker.Proxy.HTTPS = "http://proxy.corp.example:3128"
	c.Docker.Proxy.NoProxy = []string{".corp.example"}
	changes := mustDiff(t, ProxyStep{}, input(c, rocky9, "file docker -\nfile containerd -\n"))
	if diff := cmp.Diff([]string{"docker.service has no proxy drop-in", "containerd.service has no proxy drop-in"}, summariesOf(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	d := changes[0].Data
	if d.Path != "/etc/systemd/system/docker.service.d/http-proxy.conf" {
		t.Errorf("path %s", d.Path)
	}
	want := `# Written by kprep: the proxy this service pulls images through. Edits are
# overwritten; set docker.proxy in the inventory instead.
[Service]
Environment="HTTP_PROXY=http://user:p%%40ss@proxy.corp.example:3128"
Environment="HTTPS_PROXY=http://proxy.corp.example:3128"
Environment="NO_PROXY=localhost,127.0.0.1,192.168.77.11,cp1,192.168.77.12,w1,10.96.0.0/12,10.244.0.0/16,.svc,.cluster.local,.corp.example"
`
	if diff := cmp.Diff(want, string(d.Content)); diff != "" {
		t.Errorf("drop-in (-want +got):\n%s", diff)
	}
	if strings.Contains(changes[0].Action, "p%40ss") || !strings.Contains(changes[0].Action, "http://user:xxxxx@proxy.corp.example:3128") {
		t.Errorf("the action shows the proxy password: %s", changes[0].Action)
	}
	// Converged.
	state := fileRecord("docker", string(d.Content)) + fileRecord("containerd", string(d.Content))
	if again := mustDiff(t, ProxyStep{}, input(c, rocky9, state)); len(again) != 0 {
		t.Errorf("rerun: %v", summariesOf(again))
	}
	// The inventory drops the proxy: kprep's drop-ins go, a user's stays.
	c.Docker.Proxy.HTTP, c.Docker.Proxy.HTTPS = "", ""
	users := "[Service]\nEnvironment=HTTP_PROXY=http://their.proxy:3128\n"
	changes = mustDiff(t, ProxyStep{}, input(c, rocky9, fileRecord("docker", string(d.Content))+fileRecord("containerd", users)))
	if len(changes) != 1 || changes[0].Key != "docker" || changes[0].Data.Content != nil {
		t.Fatalf("removal: %+v", changes)
	}
	host := &steptest.FakeHost{}
	if err := (ProxyStep{}).Apply(context.Background(), host.Target(&c.Hosts[0]), input(c, rocky9, ""), changes); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"rm -f /etc/systemd/system/docker.service.d/http-proxy.conf", "systemctl daemon-reload"}, host.Ran); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEnvironmentSurvivesSystemd(t *testing.T) {
	// What systemctl show prints back for the drop-in's lines.
	got := splitEnvironment(`HTTP_PROXY=http://a:3128 "NO_PROXY=x,y" "WEIRD=a b\"c"`)
	if diff := cmp.Diff([]string{"HTTP_PROXY=http://a:3128", "NO_PROXY=x,y", `WEIRD=a b"c`}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if q := quoteEnvironment(`A=50% "x" \y`); q != `"A=50%% \"x\" \\y"` {
		t.Errorf("quoted %s", q)
	}
}
