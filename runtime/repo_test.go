package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kprep/kprep/provision/steptest"
)

func TestYumRepoFile(t *testing.T) {
	c := labCluster()
	changes := mustDiff(t, RepoStep{}, input(c, rocky9, "file yumrepo -\nfile centosbase -\nfile aptlist -\nkeyring=1\n"))
	if diff := cmp.Diff([]string{"/etc/yum.repos.d/docker-ce.repo is missing"}, summariesOf(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	f := changes[0].Data.File
	for _, want := range []string{
		"baseurl=http://192.168.77.1:8080/docker-ce/linux/rhel/9/$basearch/stable\n",
		"gpgkey=http://192.168.77.1:8080/docker-ce/linux/rhel/gpg\n", "gpgcheck=1\n",
	} {
		if !strings.Contains(string(f.Content), want) {
			t.Errorf("repo file lacks %q:\n%s", want, f.Content)
		}
	}
	// The same file back: nothing to do.
	if again := mustDiff(t, RepoStep{}, input(c, rocky9, fileRecord("yumrepo", string(f.Content)))); len(again) != 0 {
		t.Errorf("converged host still differs: %v", summariesOf(again))
	}
	// openEuler 22.03 (EL 8 to the facts) on aarch64 reads centos/8.
	changes = mustDiff(t, RepoStep{}, input(c, openEuler, "file yumrepo -\n"))
	if !strings.Contains(string(changes[0].Data.File.Content), "/linux/centos/8/$basearch/stable") {
		t.Errorf("openEuler repo:\n%s", changes[0].Data.File.Content)
	}
	// A changed mirror in the inventory rewrites the file.
	c2 := labCluster()
	c2.Docker.Repo = "https://repo.huaweicloud.com/docker-ce/"
	changes = mustDiff(t, RepoStep{}, input(c2, rocky9, fileRecord("yumrepo", string(f.Content))))
	if len(changes) != 1 || !strings.Contains(string(changes[0].Data.File.Content), "baseurl=https://repo.huaweicloud.com/docker-ce/linux/rhel/9/") {
		t.Errorf("changed mirror: %v", summariesOf(changes))
	}
}

func TestCentOS7Vault(t *testing.T) {
	stock := readTestdata(t, "CentOS-Base.repo-stock")
	c := labCluster()
	repo := mustDiff(t, RepoStep{}, input(c, centos7, "file yumrepo -\n"))[0].Data.File
	state := fileRecord("yumrepo", string(repo.Content)) + fileRecord("centosbase", stock)
	changes := mustDiff(t, RepoStep{}, input(c, centos7, state))
	if diff := cmp.Diff([]string{"vault"}, keysOf(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	vault := changes[0].Data.File
	for _, want := range []string{
		"[base]\nname=CentOS-7.9.2009 - Base\nbaseurl=http://192.168.77.1:8080/centos-vault/7.9.2009/os/$basearch/\n",
		"baseurl=http://192.168.77.1:8080/centos-vault/7.9.2009/extras/$basearch/\n",
	} {
		if !strings.Contains(string(vault.Content), want) {
			t.Errorf("vault repo lacks %q:\n%s", want, vault.Content)
		}
	}
	if strings.Contains(string(vault.Content), "mirrorlist=") {
		t.Errorf("vault repo still has a mirrorlist:\n%s", vault.Content)
	}
	tests := []struct {
		name, base string
		enabled    bool
		arch       string
		want       []string
	}{
		{"repointed already", string(vault.Content), true, "x86_64", nil},
		{"user's own mirror", strings.ReplaceAll(strings.ReplaceAll(stock, "mirrorlist=http://mirrorlist.centos.org", "#mirrorlist=http://mirrorlist.centos.org"), "#baseurl=http://mirror.centos.org", "baseurl=http://mirrors.example.com"), true, "x86_64", nil},
		{"opted out", stock, false, "x86_64", nil},
		{"kprep's file for another vault", strings.ReplaceAll(string(vault.Content), "192.168.77.1:8080", "old.example"), true, "x86_64", []string{"/etc/yum.repos.d/CentOS-Base.repo points at another vault than the inventory's"}},
		{"aarch64 uses altarch", stock, true, "aarch64", []string{"/etc/yum.repos.d/CentOS-Base.repo still uses mirrorlist.centos.org, which is gone since CentOS 7's end of life"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := labCluster()
			*c.Docker.CentOS7Vault.Enabled = tt.enabled
			f := centos7
			f.Arch = tt.arch
			changes := mustDiff(t, RepoStep{}, input(c, f, fileRecord("yumrepo", string(repo.Content))+fileRecord("centosbase", tt.base)))
			if diff := cmp.Diff(tt.want, summariesOf(changes)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tt.arch == "aarch64" && !strings.Contains(string(changes[0].Data.File.Content), "/centos-vault/altarch/7.9.2009/os/$basearch/") {
				t.Errorf("aarch64 vault:\n%s", changes[0].Data.File.Content)
			}
		})
	}
	// Rocky has no CentOS-Base.repo business.
	if changes := mustDiff(t, RepoStep{}, input(c, rocky9, fileRecord("centosbase", stock))); len(changes) != 1 || changes[0].Key != "yumrepo" {
		t.Errorf("rocky: %v", keysOf(changes))
	}
}

func TestAptSource(t *testing.T) {
	c := labCluster()
	changes := mustDiff(t, RepoStep{}, input(c, ubuntu, "file aptlist -\nkeyring=1\n"))
	if diff := cmp.Diff([]string{"aptlist", "keyring"}, keysOf(changes)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	list := string(changes[0].Data.File.Content)
	if !strings.Contains(list, "\ndeb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] http://192.168.77.1:8080/docker-ce/linux/ubuntu jammy stable\n") {
		t.Errorf("docker.list:\n%s", list)
	}
	if k := changes[1].Data.Key; k.URL != "http://192.168.77.1:8080/docker-ce/linux/ubuntu/gpg" {
		t.Errorf("key from %s", k.URL)
	}
	if again := mustDiff(t, RepoStep{}, input(c, ubuntu, fileRecord("aptlist", list)+"keyring=0\n")); len(again) != 0 {
		t.Errorf("converged: %v", summariesOf(again))
	}
	noCodename := ubuntu
	noCodename.Codename = ""
	if _, err := (RepoStep{}).Diff(input(c, noCodename, "")); err == nil || !strings.Contains(err.Error(), "codename") {
		t.Errorf("no codename: %v", err)
	}
}

func TestApplyDownloadsTheKeyAndWritesFiles(t *testing.T) {
	c := labCluster()
	changes := mustDiff(t, RepoStep{}, input(c, ubuntu, "file aptlist -\nkeyring=1\n"))
	host := &steptest.FakeHost{}
	if err := (RepoStep{}).Apply(context.Background(), host.Target(&c.Hosts[0]), input(c, ubuntu, ""), changes); err != nil {
		t.Fatal(err)
	}
	if _, ok := host.Written[aptListPath]; !ok || len(host.Ran) != 1 || !strings.Contains(host.Ran[0], "http://192.168.77.1:8080/docker-ce/linux/ubuntu/gpg") {
		t.Errorf("written %v, ran %q", host.Written, host.Ran)
	}
}

// The download line is run by a real sh against a file:// URL (curl reads
// those), so its quoting, temporary file and mode are proven.
func TestFetchCommandDownloads(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "key with space.asc")
	if err := os.WriteFile(src, []byte("KEY"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/usr/bin/curl"); err != nil {
		t.Skip("curl is not installed")
	}
	dest := filepath.Join(dir, "keyrings", "docker.asc")
	os.MkdirAll(filepath.Dir(dest), 0o755)
	runSh(t, fetchCommand("file://"+strings.ReplaceAll(src, " ", "%20"), "'"+dest+"'", 0o644))
	got, err := os.ReadFile(dest)
	if err != nil || string(got) != "KEY" {
		t.Fatalf("downloaded %q, %v", got, err)
	}
	if st, _ := os.Stat(dest); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	out, err := execSh(fetchCommand("file:///nonexistent", "'"+dest+"'", 0o644))
	if err == nil {
		t.Errorf("a failed download succeeded: %s", out)
	}
	if got, _ := os.ReadFile(dest); string(got) != "KEY" {
		t.Errorf("a failed download replaced the file: %q", got)
	}
	left, _ := filepath.Glob(dest + ".kprep-*")
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
