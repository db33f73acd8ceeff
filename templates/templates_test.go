package templates

import (
	"strings"
	"testing"

	"github.com/kprep/kprep/provision/hostfile"
)

func TestDockerRepoKeepsBasearchForYum(t *testing.T) {
	got, err := Render("docker-ce.repo", map[string]any{
		"BaseURL": "https://repo.huaweicloud.com/docker-ce", "Tree": "centos", "Release": "8", "GPGCheck": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"baseurl=https://repo.huaweicloud.com/docker-ce/linux/centos/8/$basearch/stable\n",
		"gpgcheck=1\n",
		"gpgkey=https://repo.huaweicloud.com/docker-ce/linux/centos/gpg\n",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("docker-ce.repo lacks %q:\n%s", want, got)
		}
	}
}

func TestMissingFieldIsAnError(t *testing.T) {
	_, err := Render("docker-ce.repo", map[string]any{"BaseURL": "https://x", "Tree": "centos"})
	if err == nil || !strings.Contains(err.Error(), "Release") {
		t.Fatalf("err = %v, want one naming the missing Release", err)
	}
	if _, err := Render("no-such-file", nil); err == nil {
		t.Fatal("an unknown template rendered")
	}
}

func TestRuntimeTemplatesAreListed(t *testing.T) {
	names := " " + strings.Join(Names(), " ") + " "
	for _, want := range []string{"CentOS-Base.repo", "cri-docker.service", "cri-docker.socket", "docker-ce.repo", "docker.list"} {
		if !strings.Contains(names, " "+want+" ") {
			t.Errorf("Names() = %s lacks %s", names, want)
		}
	}
}

// Every file kprep writes whole on a host starts with the marker, so a
// later run knows it may replace or remove it. The starter inventory is
// the user's file, printed once by kprep init, not one kprep keeps.
func TestEveryTemplateIsMarkedAsKpreps(t *testing.T) {
	for name := range parsed {
		if name == "cluster-starter.yaml" {
			continue
		}
		text, err := files.ReadFile("files/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !hostfile.Owned(text) {
			t.Errorf("%s does not start with %q", name, hostfile.Marker)
		}
	}
}
