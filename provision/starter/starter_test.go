package starter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/inventory"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeRunner answers each command line with canned output; an absent one
// is "not installed".
type fakeRunner map[string]struct {
	stdout, stderr string
	exit           int
}

func (f fakeRunner) run(_ context.Context, _, name string, args ...string) ([]byte, []byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	r, ok := f[line]
	if !ok {
		return nil, nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	var err error
	if r.exit != 0 {
		// A real *exec.ExitError, from a real process that exits so.
		err = exec.Command("sh", "-c", fmt.Sprintf("exit %d", r.exit)).Run()
	}
	return []byte(r.stdout), []byte(r.stderr), err
}

// allFiles checks the rendered inventory as `kprep validate` would, on a
// machine where the fixtures' key files exist.
var allFiles = inventory.Options{
	FileExists: func(string) bool { return true },
	LookupEnv:  func(string) (string, bool) { return "", false },
	HomeDir:    func() (string, error) { return "/home/op", nil },
}

func render(t *testing.T, f *Found, o Options) *inventory.Cluster {
	t.Helper()
	o.Check = allFiles
	out, err := Render(f, o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := inventory.Parse("cluster.yaml", out, allFiles)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return c
}

type hostLine struct {
	Name, Address, Login string
	Port                 int
	User, Key            string
	Roles                string
}

// sameHosts checks the hosts of an inventory, login included.
func sameHosts(t *testing.T, c *inventory.Cluster, want []hostLine) {
	t.Helper()
	if diff := cmp.Diff(want, hostLines(c)); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}

func hostLines(c *inventory.Cluster) []hostLine {
	var out []hostLine
	for i := range c.Hosts {
		h := &c.Hosts[i]
		out = append(out, hostLine{h.Name, h.Address, h.LoginAddress(), h.Connection.Port, h.Connection.User,
			h.Connection.PrivateKeyFile, strings.Join(h.Roles, ",")})
	}
	return out
}

func TestVagrantLogsInWhereVagrantSaysAndUsesThePrivateAddress(t *testing.T) {
	run := fakeRunner{"vagrant ssh-config": {stdout: string(fixture(t, "vagrant-ssh-config.txt"))}}
	probes := map[string]string{"node1": "ip-virtualbox.txt", "NODE_2": "ip-libvirt.txt"}
	var (
		mu    sync.Mutex
		asked []string
	)
	probe := func(_ context.Context, name string, l Login, insecure bool, command string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, fmt.Sprintf("%s %s@%s:%d key=%s insecure=%v %s", name, l.User, l.Address, l.Port, l.KeyFile, insecure, command))
		return string(fixture(t, probes[name])), nil
	}
	found, err := Vagrant{Dir: "/home/op/lab", Run: run.run, Probe: probe}.Machines(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantAsked := []string{ // sorted: the machines are probed side by side
		"NODE_2 vagrant@127.0.0.1:2200 key=/home/op/my lab/.vagrant/machines/NODE_2/virtualbox/private_key insecure=true " + addressProbe,
		"node1 vagrant@127.0.0.1:2222 key=/home/op/lab/.vagrant/machines/node1/virtualbox/private_key insecure=true " + addressProbe,
	}
	slices.Sort(asked)
	if diff := cmp.Diff(wantAsked, asked); diff != "" {
		t.Errorf("probes (-want +got):\n%s", diff)
	}
	c := render(t, found, Options{Command: "kprep init --vagrant"})
	want := []hostLine{
		{"node1", "192.168.56.10", "127.0.0.1", 2222, "vagrant", "/home/op/lab/.vagrant/machines/node1/virtualbox/private_key", "control-plane"},
		{"node-2", "192.168.56.11", "127.0.0.1", 2200, "vagrant", "/home/op/my lab/.vagrant/machines/NODE_2/virtualbox/private_key", "worker"},
	}
	sameHosts(t, c, want)
	if c.SSH.HostKeyPolicy != "insecure" {
		t.Errorf("hostKeyPolicy = %q, want insecure, as vagrant ssh-config says", c.SSH.HostKeyPolicy)
	}
	out, _ := Render(found, Options{Command: "kprep init --vagrant", Check: allFiles})
	for _, want := range []string{"not eth0's 10.0.2.15 (the default route's: Vagrant's NAT)", "not eth0's 192.168.121.57"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the inventory does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "address: 10.0.2.15") {
		t.Errorf("the NAT address became a host address:\n%s", out)
	}
}

func TestPrivateAddress(t *testing.T) {
	tests := []struct {
		fixture, addr, nat, err string
	}{
		{"ip-virtualbox.txt", "192.168.56.10", "eth0", ""},
		{"ip-libvirt.txt", "192.168.56.11", "eth0", ""},
		{"ip-nat-only.txt", "", "", "it has no address besides the default route's eth0 (10.0.2.15), Vagrant's NAT"},
	}
	for _, tt := range tests {
		got, err := privateAddress(string(fixture(t, tt.fixture)))
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), `config.vm.network "private_network"`) {
				t.Errorf("%s: err = %v, want one saying %q and how to add a private network", tt.fixture, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.fixture, err)
		case got.addr != tt.addr || got.natIface != tt.nat:
			t.Errorf("%s: picked %s (NAT %s), want %s (NAT %s)", tt.fixture, got.addr, got.natIface, tt.addr, tt.nat)
		}
	}
	// A machine with no default route at all (a plain private network).
	got, err := privateAddress("2: eth0    inet 192.168.56.20/24 brd 192.168.56.255 scope global eth0\\       valid_lft forever\n")
	if err != nil || got.addr != "192.168.56.20" {
		t.Errorf("no default route: %+v, %v", got, err)
	}
	if _, err := privateAddress("Welcome to your box!\n"); err == nil || !strings.Contains(err.Error(), "printed no IPv4 address") {
		t.Errorf("garbage: err = %v", err)
	}
}

// errorSays checks that err is an error whose text has every piece of want.
func errorSays(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestVagrantErrorsNameTheCommandAndWhatItPrinted(t *testing.T) {
	noProbe := func(context.Context, string, Login, bool, string) (string, error) {
		return "", errors.New("connection refused")
	}
	tests := []struct {
		name string
		run  fakeRunner
		want []string
	}{
		{"missing", fakeRunner{}, []string{"`vagrant ssh-config` (in /lab) cannot run: vagrant is not installed (not found on PATH)"}},
		{"not running", fakeRunner{
			"vagrant ssh-config": {stdout: "Host node1\n  HostName 127.0.0.1\n  Port 2222\n", exit: 1,
				stderr: "The provider for this Vagrant-managed machine is reporting that it\nis not yet ready for SSH."},
			"vagrant status --machine-readable": {stdout: "1700000000,node1,metadata,provider,virtualbox\n1700000000,node1,state,running\n" +
				"1700000000,node2,metadata,provider,virtualbox\n1700000000,node2,state,poweroff\n1700000000,node3,state,not_created\n"},
		}, []string{"`vagrant ssh-config` (in /lab) exited 1; it printed:", "is not yet ready for SSH",
			"not running: node2 (poweroff), node3 (not_created); start them with `vagrant up`"}},
		{"garbage", fakeRunner{"vagrant ssh-config": {stdout: "  HostName 127.0.0.1\n"}},
			[]string{"`vagrant ssh-config` (in /lab) printed what kprep cannot read (line 1: HostName comes before any Host line)", "HostName 127.0.0.1"}},
		{"none", fakeRunner{"vagrant ssh-config": {stdout: "\n"}}, []string{"printed no machines", "vagrant up"}},
		{"proxy", fakeRunner{"vagrant ssh-config": {stdout: "Host a\n  HostName 10.0.0.5\n  ProxyCommand ssh -W %h:%p jump\n"}},
			[]string{"reaches a through a ProxyCommand (ssh -W %h:%p jump), which kprep cannot use"}},
		{"unreachable", fakeRunner{"vagrant ssh-config": {stdout: "Host a\n  HostName 127.0.0.1\n  Port 2222\n  User vagrant\n"}},
			[]string{"vagrant machine a: reading its addresses with `" + addressProbe + "` over SSH (vagrant@127.0.0.1 port 2222, as vagrant ssh-config says): connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Vagrant{Dir: "/lab", Run: tt.run.run, Probe: noProbe}.Machines(context.Background())
			errorSays(t, err, tt.want)
		})
	}
}

func TestMultipassListsRunningInstancesAtTheirFirstAddress(t *testing.T) {
	run := fakeRunner{"multipass list --format json": {stdout: string(fixture(t, "multipass-list.json"))}}
	found, err := Multipass{Run: run.run, Login: Login{User: "kprep", KeyFile: "/home/op/.ssh/id_ed25519"}}.Machines(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantSkipped := []string{
		"bombastic: Stopped (start it with `multipass start bombastic`)",
		"trusty-190611-1529: Deleted (start it with `multipass start trusty-190611-1529`)",
	}
	if diff := cmp.Diff(wantSkipped, found.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	c := render(t, found, Options{Command: "kprep init --multipass"})
	want := []hostLine{
		{"cp1", "10.21.124.56", "10.21.124.56", 22, "kprep", "/home/op/.ssh/id_ed25519", "control-plane"},
		{"noteworthy-alewife", "10.130.108.191", "10.130.108.191", 22, "kprep", "/home/op/.ssh/id_ed25519", "worker"},
	}
	sameHosts(t, c, want)
	out, _ := Render(found, Options{Command: "kprep init --multipass", Check: allFiles})
	for _, w := range []string{"# left out: bombastic: Stopped", "noteworthy-alewife also has 192.168.1.102"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("the inventory does not say %q:\n%s", w, out)
		}
	}
}

func TestMultipassErrors(t *testing.T) {
	tests := []struct {
		name, stdout string
		exit         int
		missing      bool
		want         []string
	}{
		{"missing", "", 0, true, []string{"`multipass list --format json` cannot run: multipass is not installed"}},
		{"only stopped", "", 0, false, []string{"listed no running instance", "none is running: bombastic: Stopped"}},
		{"not json", "Name State IPv4\ncp1 Running 10.0.0.1\n", 0, false, []string{"printed what kprep cannot read (not JSON:", "cp1 Running 10.0.0.1"}},
		{"no list", `{"info": {}}`, 0, false, []string{`printed what kprep cannot read (no "list" in it)`}},
		{"bad address", `{"list": [{"name": "a", "state": "Running", "ipv4": ["10.0.0"]}]}`, 0, false, []string{`a's address "10.0.0" is not an IP address`}},
		{"daemon down", "", 2, false, []string{"`multipass list --format json` exited 2; it printed:", "cannot connect to the multipass socket"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := fakeRunner{}
			if !tt.missing {
				out := tt.stdout
				if tt.name == "only stopped" {
					out = string(fixture(t, "multipass-stopped.json"))
				}
				run["multipass list --format json"] = struct {
					stdout, stderr string
					exit           int
				}{out, "list failed: cannot connect to the multipass socket", tt.exit}
			}
			_, err := Multipass{Run: run.run}.Machines(context.Background())
			errorSays(t, err, tt.want)
		})
	}
}

func TestEndpoints(t *testing.T) {
	found, err := Endpoints([]string{"192.168.56.10", "vagrant@Node2.example.com:2222", "admin@[fd00::5]:22", "[fd00::6]"},
		Login{User: "root", KeyFile: "/home/op/.ssh/id_ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	c := render(t, found, Options{Command: "kprep init", ControlPlanes: 2})
	want := []hostLine{
		{"cp1", "192.168.56.10", "192.168.56.10", 22, "root", "/home/op/.ssh/id_ed25519", "control-plane"},
		{"node2", "Node2.example.com", "Node2.example.com", 2222, "vagrant", "/home/op/.ssh/id_ed25519", "control-plane"},
		{"w1", "fd00::5", "fd00::5", 22, "admin", "/home/op/.ssh/id_ed25519", "worker"},
		{"w2", "fd00::6", "fd00::6", 22, "root", "/home/op/.ssh/id_ed25519", "worker"},
	}
	sameHosts(t, c, want)
	if c.Kubernetes.ControlPlaneEndpoint != "192.168.56.10:6443" {
		t.Errorf("controlPlaneEndpoint = %q, want the first control plane's", c.Kubernetes.ControlPlaneEndpoint)
	}
	if c.Docker.Version != DockerVersion || c.Kubernetes.Version != KubernetesVersion {
		t.Errorf("versions %s/%s, want the tested %s/%s", c.Docker.Version, c.Kubernetes.Version, DockerVersion, KubernetesVersion)
	}

	for spec, want := range map[string]string{
		"root@":               `"" is not an IP address or host name`,
		"@10.0.0.1":           `the user "" is not a user name`,
		"root@10.0.0.1:0":     `"0" is not a port`,
		"root@10.0.0.1:ssh":   `"ssh" is not a port`,
		"root@192.168.56":     `"192.168.56" is not an IP address or host name`,
		"root@bad_host!":      `"bad_host!" is not an IP address or host name`,
		"ro ot@10.0.0.1":      `the user "ro ot" is not a user name`,
		"root@10.0.0.1:22:22": `"10.0.0.1:22:22" is not an IP address or host name`,
	} {
		if _, err := Endpoints([]string{spec}, Login{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", spec, err, want)
		}
	}
}

func TestReadEndpointsNamesTheLine(t *testing.T) {
	found, err := ReadEndpoints(strings.NewReader("# the lab\nroot@10.0.0.1\n\n  root@10.0.0.2:2222  \n"), Login{User: "root"})
	if err != nil || len(found.Machines) != 2 || found.Machines[1].Login.Port != 2222 {
		t.Fatalf("found %+v, %v", found, err)
	}
	_, err = ReadEndpoints(strings.NewReader("root@10.0.0.1\nroot@10.0.0.2:x\n"), Login{})
	if err == nil || !strings.Contains(err.Error(), `standard input, line 2: "root@10.0.0.2:x": "x" is not a port`) {
		t.Errorf("err = %v", err)
	}
	if _, err := ReadEndpoints(strings.NewReader("# nothing\n"), Login{}); err == nil {
		t.Error("no lines was not an error")
	}
}

func TestRenderRefusesWhatWouldNotValidate(t *testing.T) {
	two := &Found{Machines: []Machine{{Address: "10.0.0.1"}, {Address: "10.0.0.2"}}}
	if _, err := Render(two, Options{ControlPlanes: 3, Check: allFiles}); err == nil || !strings.Contains(err.Error(), "--control-planes 3: there are 2 machines") {
		t.Errorf("err = %v", err)
	}
	dup := &Found{Machines: []Machine{{Name: "a", Address: "10.0.0.1"}, {Name: "a", Address: "10.0.0.2"}}}
	if _, err := Render(dup, Options{Check: allFiles}); err == nil || !strings.Contains(err.Error(), "two machines would both be named a") {
		t.Errorf("err = %v", err)
	}
	// The validator is the last word: a key file that is not there.
	noKeys := allFiles
	noKeys.FileExists = func(string) bool { return false }
	keyed := &Found{Machines: []Machine{{Address: "10.0.0.1", Login: Login{KeyFile: "/nowhere/key"}}}}
	if _, err := Render(keyed, Options{Check: noKeys}); err == nil || !strings.Contains(err.Error(), "key file /nowhere/key does not exist") {
		t.Errorf("err = %v", err)
	}
	// A host address inside the default pod range fails validation too.
	inPods := &Found{Machines: []Machine{{Address: "10.244.1.5"}}}
	if _, err := Render(inPods, Options{Check: allFiles}); err == nil || !strings.Contains(err.Error(), "kubernetes.podSubnet") {
		t.Errorf("err = %v", err)
	}
}

func TestOneMachineRunsWorkloadsToo(t *testing.T) {
	c := render(t, &Found{Machines: []Machine{{Address: "10.0.0.1"}}}, Options{})
	if got := strings.Join(c.Hosts[0].Roles, ","); got != "control-plane,worker" {
		t.Errorf("roles = %s", got)
	}
}
