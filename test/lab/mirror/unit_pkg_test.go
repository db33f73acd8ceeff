package mirror

import (
	"strings"
	"testing"
)

// testPayload is a payload whose files need not exist: the spec and control
// writers only name them.
func testPayload() payload {
	return payload{
		debian: map[string]*debianPayload{
			"bookworm": {Root: "/payload", Versions: map[string]string{"docker.io": "20.10.24+dfsg1-1", "containerd": "1.6.20~ds1-1", "runc": "1.1.5+ds1-1"}},
			"trixie":   {Root: "/trixie", Versions: map[string]string{"docker.io": "26.1.5+dfsg1-9+deb13u1+b1", "docker-cli": "26.1.5+dfsg1-9+deb13u1+b1", "containerd": "1.7.24~ds1-6+deb13u1"}},
		},
		kube: "/kube",
		arch: arch{Go: "amd64", RPM: "x86_64", Deb: "amd64"},
	}
}

func TestFileNames(t *testing.T) {
	pl := testPayload()
	tests := []struct {
		def    pkgDef
		format string
		want   string
	}{
		{pl.dockerCE(formatRPM, "26.1.5", "el9"), formatRPM, "docker-ce-26.1.5-1.el9.x86_64.rpm"},
		{pl.dockerCE(formatRPM, "20.10.24", "el7"), formatRPM, "docker-ce-20.10.24-3.el7.x86_64.rpm"},
		{pl.dockerCECLI(formatRPM, "20.10.24", "el7"), formatRPM, "docker-ce-cli-20.10.24-3.el7.x86_64.rpm"},
		{pl.dockerCE(formatDeb, "26.1.5", dockerDebDist), formatDeb, "docker-ce_26.1.5-1~ubuntu.22.04~jammy_amd64.deb"},
		{pl.dockerCE(formatDeb, "20.10.24", dockerDebDist), formatDeb, "docker-ce_20.10.24~3-0~ubuntu-jammy_amd64.deb"},
		{pl.containerdIO(formatRPM, ContainerdReleases[0], "el7"), formatRPM, "containerd.io-1.6.20-3.1.el7.x86_64.rpm"},
		{pl.containerdIO(formatDeb, ContainerdReleases[1], ""), formatDeb, "containerd.io_1.7.24-1_amd64.deb"},
		{pl.kubeadm(formatRPM, "1.34.4"), formatRPM, "kubeadm-1.34.4-150500.1.1.x86_64.rpm"},
		{pl.kubelet(formatDeb, "1.34.3"), formatDeb, "kubelet_1.34.3-1.1_amd64.deb"},
	}
	for _, tt := range tests {
		if got := tt.def.fileName(tt.format); got != tt.want {
			t.Errorf("fileName = %q, want %q", got, tt.want)
		}
	}
}

func TestDebVersionNoEpoch(t *testing.T) {
	for in, want := range map[string]string{
		"5:24.0.9-1~ubuntu.22.04~jammy": "24.0.9-1~ubuntu.22.04~jammy",
		"1.34.4-1.1":                    "1.34.4-1.1",
		"1.6.33-1":                      "1.6.33-1",
	} {
		if got := debVersionNoEpoch(in); got != want {
			t.Errorf("debVersionNoEpoch(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDockerCEVersionsAndRelations(t *testing.T) {
	pl := testPayload()
	rpm := pl.dockerCE(formatRPM, "26.1.5", "el8")
	if rpm.Epoch != "3" || rpm.Version != "26.1.5" || rpm.Release != "1.el8" {
		t.Errorf("rpm EVR = %s:%s-%s, want 3:26.1.5-1.el8", rpm.Epoch, rpm.Version, rpm.Release)
	}
	if !contains(rpm.Relations["Requires"], "containerd.io >= 1.6.24") {
		t.Errorf("docker-ce 26.1.5 Requires %v, want containerd.io >= 1.6.24", rpm.Relations["Requires"])
	}
	if rpm.Files[0].Src != "/trixie/usr/sbin/dockerd" || !strings.Contains(rpm.Description, "dockerd 26.1.5+dfsg1") {
		t.Errorf("docker-ce 26.1.5 carries %s (%q), want trixie's dockerd", rpm.Files[0].Src, rpm.Description)
	}
	if cli := pl.dockerCECLI(formatRPM, "26.1.5", "el8"); cli.Epoch != "1" || cli.Files[0].Src != "/trixie/usr/bin/docker" || !strings.Contains(cli.Description, "docker-cli 26.1.5") {
		t.Errorf("docker-ce-cli 26.1.5: epoch %s, %s, %q", cli.Epoch, cli.Files[0].Src, cli.Description)
	}
	old := pl.dockerCE(formatRPM, "20.10.24", "el7")
	if !contains(old.Relations["Requires"], "containerd.io >= 1.4.1") || old.Release != "3.el7" || old.Files[0].Src != "/payload/usr/sbin/dockerd" {
		t.Errorf("docker-ce 20.10.24: Requires %v, release %s, dockerd %s", old.Relations["Requires"], old.Release, old.Files[0].Src)
	}
	deb := pl.dockerCE(formatDeb, "26.1.5", dockerDebDist)
	if deb.Version != "5:26.1.5-1~ubuntu.22.04~jammy" {
		t.Errorf("deb version = %q", deb.Version)
	}
	if old := pl.dockerCE(formatDeb, "20.10.24", dockerDebDist); old.Version != "5:20.10.24~3-0~ubuntu-jammy" {
		t.Errorf("20.10 deb version = %q, want Docker's old scheme 5:20.10.24~3-0~ubuntu-jammy", old.Version)
	}
	if !contains(deb.Relations["Conflicts"], "docker.io") {
		t.Errorf("deb Conflicts %v lack docker.io: Ubuntu's docker.io must make way", deb.Relations["Conflicts"])
	}
}

func TestRPMSpecDockerCE(t *testing.T) {
	spec := rpmSpec(testPayload().dockerCE(formatRPM, "20.10.24", "el9"), "/data")
	for _, want := range []string{
		"AutoReqProv: no\n",
		"Name: docker-ce\nEpoch: 3\nVersion: 20.10.24\nRelease: 3.el9\n",
		"Requires: docker-ce-cli\n",
		"install -D -p -m 0755 '/payload/usr/sbin/dockerd' '%{buildroot}/usr/bin/dockerd'\n",
		"install -D -p -m 0755 '/payload/usr/bin/tini-static' '%{buildroot}/usr/bin/docker-init'\n",
		"%attr(0644,root,root) /usr/lib/systemd/system/docker.service\n",
		"\n%post -p <lua>\nrpm.execute(\"/bin/sh\", \"-c\", [==[\nsystemctl daemon-reload",
		"groupadd --system docker",
		"\n%preun -p <lua>\nrpm.execute(\"/bin/sh\", \"-c\", [==[\nif [ $1 -eq 0 ]; then\n    systemctl --no-reload disable --now docker.service docker.socket",
		"]==], \"sh\", tostring(arg[2]))\n",
	} {
		if !strings.Contains(spec, want) {
			t.Errorf("spec lacks %q:\n%s", want, spec)
		}
	}
	// EL's docker-ce leaves the service off: nothing may enable, preset or start it.
	for _, bad := range []string{"systemctl enable", "systemctl start", "preset"} {
		if strings.Contains(spec, bad) {
			t.Errorf("spec contains %q: EL packages do not enable or start docker", bad)
		}
	}
}

func TestRPMSpecContainerdConfigIsKept(t *testing.T) {
	spec := rpmSpec(testPayload().containerdIO(formatRPM, ContainerdReleases[1], "el9"), "/data")
	if !strings.Contains(spec, "%config(noreplace) %attr(0644,root,root) /etc/containerd/config.toml\n") {
		t.Errorf("config.toml is not %%config(noreplace):\n%s", spec)
	}
	if !strings.Contains(spec, "install -D -p -m 0755 '/payload/usr/sbin/runc' '%{buildroot}/usr/bin/runc'") {
		t.Errorf("runc is not installed at /usr/bin/runc:\n%s", spec)
	}
	for _, rel := range []string{"Provides: runc", "Obsoletes: runc", "Conflicts: containerd"} {
		if !strings.Contains(spec, rel+"\n") {
			t.Errorf("spec lacks %q", rel)
		}
	}
	if !strings.Contains(containerdConfig, "\ndisabled_plugins = [\"cri\"]\n") {
		t.Error("containerd.io's config.toml must disable the CRI plugin, as the real one does")
	}
}

func TestKubeadmDropInPerFormat(t *testing.T) {
	pl := testPayload()
	for format, env := range map[string]string{formatRPM: "/etc/sysconfig/kubelet", formatDeb: "/etc/default/kubelet"} {
		d := pl.kubeadm(format, "1.34.4")
		var dropIn *pkgFile
		for i := range d.Files {
			if d.Files[i].Dst == "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf" {
				dropIn = &d.Files[i]
			}
		}
		if dropIn == nil {
			t.Fatalf("%s kubeadm has no 10-kubeadm.conf", format)
		}
		if !strings.Contains(dropIn.Data, "EnvironmentFile=-"+env+"\n") {
			t.Errorf("%s drop-in does not read %s", format, env)
		}
	}
}

func TestDebControl(t *testing.T) {
	d := testPayload().dockerCE(formatDeb, "26.1.5", dockerDebDist)
	got := debControl(d, 1234)
	for _, want := range []string{
		"Package: docker-ce\nVersion: 5:26.1.5-1~ubuntu.22.04~jammy\nArchitecture: amd64\n",
		"Installed-Size: 1234\n",
		"Depends: containerd.io (>= 1.6.24), docker-ce-cli\n",
		"Description: The open-source application container engine\n Docker is",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("control lacks %q:\n%s", want, got)
		}
	}
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if l == "" {
			t.Errorf("control has an empty line, which ends the stanza:\n%s", got)
		}
	}
}

func TestDebServiceScripts(t *testing.T) {
	s := debServiceScripts([]string{"docker.service", "docker.socket"}, dockerGroupScript)
	post := s["postinst"]
	for _, want := range []string{
		"#!/bin/sh\nset -e\n",
		"groupadd --system docker",
		"deb-systemd-helper enable 'docker.service'",
		"deb-systemd-helper enable 'docker.socket'",
		"deb-systemd-invoke $_dh_action 'docker.service' 'docker.socket'",
	} {
		if !strings.Contains(post, want) {
			t.Errorf("postinst lacks %q:\n%s", want, post)
		}
	}
	if !strings.Contains(s["prerm"], "deb-systemd-invoke stop 'docker.service' 'docker.socket'") {
		t.Errorf("prerm does not stop the units:\n%s", s["prerm"])
	}
}

func TestPackageKeysFollowTheRecipe(t *testing.T) {
	pl := testPayload()
	a, b := pl.dockerCE(formatRPM, "26.1.5", "el9"), pl.dockerCE(formatRPM, "26.1.5", "el9")
	if a.key(formatRPM) != b.key(formatRPM) {
		t.Fatal("the same recipe gave two keys")
	}
	b.Files[0].Src = "/other/dockerd"
	if a.key(formatRPM) == b.key(formatRPM) {
		t.Error("a different payload gave the same key")
	}
	if a.key(formatRPM) == a.key(formatDeb) {
		t.Error("the rpm and deb builds share a key")
	}
}

func TestDockerYumTreesCarryBothReleases(t *testing.T) {
	seen := map[string]bool{}
	for _, tr := range DockerYumTrees {
		seen[tr.Path] = true
		for _, v := range tr.Versions {
			if _, ok := dockerReleases[v]; !ok {
				t.Errorf("%s carries %s, a version the mirror has no programs of", tr.Path, v)
			}
		}
		if len(tr.Versions) < 2 {
			t.Errorf("%s carries %v: two versions are needed to test pinning and upgrades", tr.Path, tr.Versions)
		}
	}
	for _, p := range []string{"docker-ce/linux/centos/7", "docker-ce/linux/centos/8", "docker-ce/linux/centos/9", "docker-ce/linux/rhel/8", "docker-ce/linux/rhel/9"} {
		if !seen[p] {
			t.Errorf("no yum tree %s", p)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
