package runtime

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/steptest"
)

func TestConflicts(t *testing.T) {
	c := labCluster()
	// rpm -q prints "package X is not installed" for the others; the
	// snippet's grep leaves only installed ones.
	el := "rpm podman 4:4.9.4-rhel.el9\nrpm runc 4:1.1.12-1.el9\ndeb docker.io 20.10.24+dfsg1-1+b3 ii \n"
	changes := mustDiff(t, ConflictsStep{}, input(c, rocky9, el))
	if diff := cmp.Diff([]string{"installed, and in Docker CE's way: podman 4:4.9.4-rhel.el9, runc 4:1.1.12-1.el9"}, summariesOf(changes)); diff != "" {
		t.Errorf("EL (-want +got):\n%s", diff)
	}
	if changes[0].Action != "yum remove -y podman runc" {
		t.Errorf("action %q", changes[0].Action)
	}
	oe := "rpm docker-engine (none):18.09.0-328.oe2203sp3\n"
	if changes := mustDiff(t, ConflictsStep{}, input(c, openEuler, oe)); len(changes) != 1 || changes[0].Action != "yum remove -y docker-engine" {
		t.Errorf("openEuler: %+v", changes)
	}
	deb := "deb docker.io 24.0.7-0ubuntu2~22.04.1 ii \ndeb runc 1.1.7-0ubuntu1 rc \ndeb containerd 1.7.2-0ubuntu1 un \nrpm podman 4.9.4-1.el9\n"
	changes = mustDiff(t, ConflictsStep{}, input(c, ubuntu, deb))
	if len(changes) != 1 || changes[0].Action != "DEBIAN_FRONTEND=noninteractive apt-get remove -y docker.io" {
		t.Errorf("ubuntu: %+v", changes)
	}
	if changes := mustDiff(t, ConflictsStep{}, input(c, rocky9, "")); len(changes) != 0 {
		t.Errorf("nothing installed: %v", summariesOf(changes))
	}
}

func TestPackagesDiff(t *testing.T) {
	installed := func(v string) string {
		return "rpm docker-ce 3:" + v + "-1.el9\nrpm docker-ce-cli 1:" + v + "-1.el9\nrpm containerd.io (none):1.6.33-3.1.el9\n"
	}
	tests := []struct {
		name, pin, state string
		want             []string
	}{
		{name: "fresh", pin: "24.0.9", state: "", want: []string{
			"docker-ce is not installed (the inventory pins 24.0.9)",
			"docker-ce-cli is not installed (the inventory pins 24.0.9)",
			"containerd.io is not installed"}},
		{name: "converged", pin: "24.0.9", state: installed("24.0.9")},
		{name: "pin written short", pin: "24.0", state: installed("24.0.0")},
		{name: "upgrade", pin: "26.1.4", state: installed("24.0.9"), want: []string{
			"docker-ce 24.0.9 is installed; the inventory pins 26.1.4 (upgrade)",
			"docker-ce-cli 24.0.9 is installed; the inventory pins 26.1.4 (upgrade)"}},
		{name: "downgrade", pin: "24.0.9", state: installed("26.1.4"), want: []string{
			"docker-ce 26.1.4 is installed; the inventory pins 24.0.9 (downgrade)",
			"docker-ce-cli 26.1.4 is installed; the inventory pins 24.0.9 (downgrade)"}},
		{name: "newest: any installed version will do", pin: "", state: installed("20.10.24")},
		{name: "ubuntu", pin: "24.0.9", state: "deb docker-ce 5:24.0.9-1~ubuntu.22.04~jammy ii \ndeb docker-ce-cli 5:26.1.4-1~ubuntu.22.04~jammy ii \ndeb containerd.io 1.6.33-1 ii \n",
			want: []string{"docker-ce-cli 26.1.4 is installed; the inventory pins 24.0.9 (downgrade)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := labCluster()
			c.Docker.Version = tt.pin
			f := rocky9
			if tt.name == "ubuntu" {
				f = ubuntu
			}
			changes := mustDiff(t, PackagesStep{}, input(c, f, tt.state))
			if diff := cmp.Diff(tt.want, summariesOf(changes)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Output of `yum -q list --showduplicates docker-ce docker-ce-cli` as dnf
// prints it, and as yum 3 does with a column wrapped onto the next line.
const yumList = `Installed Packages
docker-ce.x86_64                 3:24.0.9-1.el9                  @docker-ce-stable
Available Packages
docker-ce.x86_64                 3:24.0.9-1.el9                  docker-ce-stable
docker-ce.x86_64                 3:26.1.4-1.el9                  docker-ce-stable
docker-ce-cli.x86_64             1:24.0.9-1.el9                  docker-ce-stable
docker-ce-cli.x86_64
                                 1:26.1.4-1.el9                  docker-ce-stable
`

func TestParseRepoVersions(t *testing.T) {
	got := parseYumList(yumList, dockerPackages)
	want := map[string][]string{
		"docker-ce":     {"3:24.0.9-1.el9", "3:24.0.9-1.el9", "3:26.1.4-1.el9"},
		"docker-ce-cli": {"1:24.0.9-1.el9", "1:26.1.4-1.el9"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("yum (-want +got):\n%s", diff)
	}
	madison := ` docker-ce | 5:26.1.4-1~ubuntu.22.04~jammy | http://192.168.77.1:8080/docker-ce/linux/ubuntu jammy/stable amd64 Packages
 docker-ce | 5:24.0.9-1~ubuntu.22.04~jammy | http://192.168.77.1:8080/docker-ce/linux/ubuntu jammy/stable amd64 Packages
docker-ce-cli | 5:24.0.9-1~ubuntu.22.04~jammy | http://192.168.77.1:8080/docker-ce/linux/ubuntu jammy/stable amd64 Packages
`
	if diff := cmp.Diff(map[string][]string{
		"docker-ce":     {"5:26.1.4-1~ubuntu.22.04~jammy", "5:24.0.9-1~ubuntu.22.04~jammy"},
		"docker-ce-cli": {"5:24.0.9-1~ubuntu.22.04~jammy"},
	}, parseMadison(madison)); diff != "" {
		t.Errorf("madison (-want +got):\n%s", diff)
	}
	for pv, want := range map[string]string{"3:24.0.9-1.el9": "24.0.9", "5:24.0.9-1~ubuntu.22.04~jammy": "24.0.9", "20.10.24-3.el7": "20.10.24", "1.6.33-1": "1.6.33"} {
		if got := upstreamVersion(pv); got != want {
			t.Errorf("upstreamVersion(%s) = %s, want %s", pv, got, want)
		}
	}
}

func TestYumInstallPinsAndDowngrades(t *testing.T) {
	c := labCluster()
	c.Docker.Version = "24.0.9"
	state := "rpm docker-ce 3:26.1.4-1.el9\nrpm docker-ce-cli 1:26.1.4-1.el9\n"
	changes := mustDiff(t, PackagesStep{}, input(c, rocky9, state))
	host := &steptest.FakeHost{Replies: map[string]string{"yum -q": yumList}}
	if err := (PackagesStep{}).Apply(context.Background(), host.Target(&c.Hosts[0]), input(c, rocky9, state), changes); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"yum -q '--disablerepo=*' --enablerepo=docker-ce-stable list --showduplicates docker-ce docker-ce-cli",
		YumTransaction("downgrade", []string{"docker-ce-stable"}, []string{"docker-ce-3:24.0.9-1.el9", "docker-ce-cli-1:24.0.9-1.el9"}),
		YumTransaction("install", []string{"docker-ce-stable"}, []string{"containerd.io"}),
	}
	if diff := cmp.Diff(want, host.Ran); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestUnknownVersionListsTheRepos(t *testing.T) {
	c := labCluster()
	c.Docker.Version = "25.0.0"
	changes := mustDiff(t, PackagesStep{}, input(c, openEuler, ""))
	host := &steptest.FakeHost{Replies: map[string]string{"yum -q": yumList}}
	err := (PackagesStep{}).Apply(context.Background(), host.Target(&c.Hosts[0]), input(c, openEuler, ""), changes)
	want := "docker-ce 25.0.0 is not in the Docker CE repo http://192.168.77.1:8080/docker-ce/linux/centos/8/$basearch/stable, which has these versions: 24.0.9, 26.1.4; set docker.version to one of them"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	for _, line := range host.Ran {
		if strings.Contains(line, "install") {
			t.Errorf("installed something after all: %s", line)
		}
	}
}

func TestAptInstall(t *testing.T) {
	c := labCluster()
	changes := mustDiff(t, PackagesStep{}, input(c, ubuntu, ""))
	madison := " docker-ce | 5:26.1.4-1~ubuntu.22.04~jammy | x\n docker-ce | 5:24.0.9-1~ubuntu.22.04~jammy | x\n docker-ce-cli | 5:24.0.9-1~ubuntu.22.04~jammy | x\n"
	host := &steptest.FakeHost{Replies: map[string]string{"apt-cache madison": madison}}
	if err := (PackagesStep{}).Apply(context.Background(), host.Target(&c.Hosts[0]), input(c, ubuntu, ""), changes); err != nil {
		t.Fatal(err)
	}
	want := []string{
		aptUpdateDocker,
		"apt-cache madison docker-ce docker-ce-cli",
		"DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades -o Dpkg::Options::=--force-confold 'docker-ce=5:24.0.9-1~ubuntu.22.04~jammy' 'docker-ce-cli=5:24.0.9-1~ubuntu.22.04~jammy' containerd.io",
	}
	if diff := cmp.Diff(want, host.Ran); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The transaction runs under a real shell: kprep's repo alone first, every
// repo (short timeouts) only when that fails, and the first error shown.
func TestYumTransactionFallsBackToEveryRepo(t *testing.T) {
	dir := t.TempDir()
	// A yum that fails while --disablerepo is given, and logs its calls.
	fake := "#!/bin/sh\necho \"$*\" >> " + dir + "/calls\ncase \"$*\" in *--disablerepo*) echo 'nothing provides container-selinux' >&2; exit 1;; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "yum"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", YumTransaction("install", []string{"docker-ce-stable"}, []string{"docker-ce-26.1.5"}))
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "nothing provides container-selinux") {
		t.Errorf("the first error is not shown: %s", out)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	want := "install -y --disablerepo=* --enablerepo=docker-ce-stable docker-ce-26.1.5\n" +
		"install -y --setopt=skip_if_unavailable=1 --setopt=timeout=10 --setopt=retries=1 docker-ce-26.1.5\n"
	if string(calls) != want {
		t.Errorf("calls:\n%s\nwant:\n%s", calls, want)
	}
}
