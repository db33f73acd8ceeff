package preflight

import (
	"fmt"

	"github.com/hashicorp/go-version"
)

// This file checks the container runtime's version against the Kubernetes
// version: an error where the kubelet cannot talk to it at all, a warning
// where the runtime's makers do not recommend the pair.

// criV1Containerd is the first containerd serving CRI v1, the only CRI the
// kubelet speaks from Kubernetes 1.26 (v1alpha2 was removed).
const (
	criV1Containerd = "1.6.0"
	criV1FromMinor  = 26
)

// containerdRecommended is containerd's own matrix of the releases it
// recommends per Kubernetes minor ("Kubernetes Support" in containerd's
// RELEASES.md, https://containerd.io/releases/#kubernetes-support): for each
// containerd minor listed, the first patch recommended. A minor not listed
// is not recommended at all.
var containerdRecommended = map[int]map[string]string{
	29: {"1.6": "1.6.27", "1.7": "1.7.11"},
	30: {"1.6": "1.6.28", "1.7": "1.7.13", "2.0": "2.0.0"},
	31: {"1.6": "1.6.34", "1.7": "1.7.20", "2.0": "2.0.0"},
	32: {"1.6": "1.6.36", "1.7": "1.7.24", "2.0": "2.0.1", "2.1": "2.1.0"},
	33: {"1.6": "1.6.36", "1.7": "1.7.24", "2.0": "2.0.4", "2.1": "2.1.0"},
	34: {"1.6": "1.6.36", "1.7": "1.7.28", "2.0": "2.0.6", "2.1": "2.1.3"},
	35: {"1.7": "1.7.28", "2.1": "2.1.5", "2.2": "2.2.0"},
}

// cri-dockerd's limits, from its own history:
//   - 0.3.0 is the first release serving CRI v1;
//   - 0.3.12 and later need Docker 23 (API 1.42; Mirantis/cri-dockerd#346);
//   - Docker 29 refuses clients older than API 1.44, which cri-dockerd's
//     Docker client library speaks from 0.3.16 (docker/for-win#14997 shows
//     an older one failing).
const (
	criV1CRIDockerd         = "0.3.0"
	criDockerdNeedsDocker23 = "0.3.12"
	docker29NeedsCRIDockerd = "0.3.16"
)

func (ck *checker) runtimeVersions() {
	switch ck.c.Kubernetes.CRI {
	case "containerd":
		ck.containerd()
	case "cri-dockerd":
		ck.criDockerd()
	}
}

// containerd judges the installed containerd; one not installed yet comes
// from the Docker CE repo's containerd.io, whose version plan cannot know.
func (ck *checker) containerd() {
	have, err := version.NewVersion(ck.f.ContainerdVersion)
	if ck.f.ContainerdVersion == "" || err != nil {
		return
	}
	if ck.minor >= criV1FromMinor && have.LessThan(version.Must(version.NewVersion(criV1Containerd))) {
		ck.add("containerd", Error,
			fmt.Sprintf("containerd %s serves no CRI v1, the only CRI the kubelet 1.%d speaks", have, ck.minor),
			fmt.Sprintf("upgrade containerd to %s or later (containerd.io from the Docker CE repo)", criV1Containerd))
		return
	}
	row := ck.minor
	switch {
	case row < 29:
		return // before containerd's current matrix
	case row > 35:
		row = 35
	}
	recommended := containerdRecommended[row]
	seg := have.Segments()
	line := fmt.Sprintf("%d.%d", seg[0], seg[1])
	first, listed := recommended[line]
	if listed && !have.LessThan(version.Must(version.NewVersion(first))) {
		return
	}
	ck.add("containerd", Warning,
		fmt.Sprintf("containerd %s is not one containerd recommends for Kubernetes 1.%d (it lists %s)", have, ck.minor, recommendedList(recommended)),
		"upgrade containerd.io, or plan a Kubernetes version containerd recommends this release for")
}

func recommendedList(r map[string]string) string {
	var out string
	for _, line := range []string{"2.2", "2.1", "2.0", "1.7", "1.6"} {
		if first, ok := r[line]; ok {
			if out != "" {
				out += ", "
			}
			out += first + "+"
		}
	}
	return out
}

// criDockerd judges the versions apply installs: cri-dockerd's from the
// inventory, Docker's from the inventory when pinned, else the one installed.
func (ck *checker) criDockerd() {
	cd, err := version.NewVersion(ck.c.Kubernetes.CRIDockerd.Version)
	if err != nil {
		return
	}
	at := func(v string) *version.Version { return version.Must(version.NewVersion(v)) }
	if cd.LessThan(at(criV1CRIDockerd)) {
		ck.add("cri-dockerd", Error,
			fmt.Sprintf("cri-dockerd %s serves no CRI v1, the only CRI the kubelet 1.%d speaks", cd, ck.minor),
			fmt.Sprintf("set kubernetes.criDockerd.version to %s or later", criV1CRIDockerd))
	}
	dockerText, from := ck.c.Docker.Version, "docker.version"
	if dockerText == "" {
		dockerText, from = ck.f.DockerVersion, "the installed Docker"
	}
	docker, err := version.NewVersion(dockerText)
	if err != nil {
		return
	}
	if !cd.LessThan(at(criDockerdNeedsDocker23)) && docker.LessThan(at("23.0")) {
		ck.add("docker", Error,
			fmt.Sprintf("cri-dockerd %s needs Docker 23 or later (API 1.42) and %s is %s", cd, from, docker),
			"raise docker.version to 23.0 or later, or set kubernetes.criDockerd.version to 0.3.11, the last for Docker 20.10 (and set its sha256)")
	}
	if !docker.LessThan(at("29.0")) && cd.LessThan(at(docker29NeedsCRIDockerd)) {
		ck.add("cri-dockerd", Error,
			fmt.Sprintf("Docker %s (%s) refuses API clients older than 1.44, and cri-dockerd %s speaks an older one", docker, from, cd),
			fmt.Sprintf("set kubernetes.criDockerd.version to %s or later, or pin docker.version below 29", docker29NeedsCRIDockerd))
	}
}
