package mirror

// Paths under Tree.Root, laid out like the real mirrors so a repo file or
// apt source that works here works against download.docker.com,
// pkgs.k8s.io, vault.centos.org (or their Aliyun/Huawei copies) with only
// the host name changed.

// DockerYumTree is one yum repo tree of docker-ce.
type DockerYumTree struct {
	// Path is the tree under Root, before /$basearch/stable/.
	Path string
	// Dist is the release suffix its packages carry (el7, el8, el9).
	Dist string
	// Versions are the docker-ce and docker-ce-cli versions it carries.
	Versions []string
}

// DockerYumTrees are the docker-ce yum trees. Each carries both Docker CE
// releases the lab has real programs of. The real trees differ: centos/7
// stops at 26.1.4 and centos/8 at 26.1.3 (Docker stopped building for them
// then; rhel/8 goes on). The lab serves 26.1.5 there too, so every
// personality (openEuler 22.03 reads centos/8) can take the lab inventory's
// version; what a real openEuler host would miss is in the README.
var DockerYumTrees = []DockerYumTree{
	{Path: "docker-ce/linux/centos/7", Dist: "el7", Versions: DockerReleases},
	{Path: "docker-ce/linux/centos/8", Dist: "el8", Versions: DockerReleases},
	{Path: "docker-ce/linux/centos/9", Dist: "el9", Versions: DockerReleases},
	{Path: "docker-ce/linux/rhel/8", Dist: "el8", Versions: DockerReleases},
	{Path: "docker-ce/linux/rhel/9", Dist: "el9", Versions: DockerReleases},
}

const (
	// DockerGPGPaths are where the Docker repos' public key is served (as
	// download.docker.com/linux/{centos,rhel,ubuntu}/gpg).
	dockerKeyCentOS = "docker-ce/linux/centos/gpg"
	dockerKeyRHEL   = "docker-ce/linux/rhel/gpg"
	dockerKeyUbuntu = "docker-ce/linux/ubuntu/gpg"

	// DockerAptPath is the docker-ce apt repo: `deb [signed-by=...] URL/DockerAptPath jammy stable`.
	DockerAptPath = "docker-ce/linux/ubuntu"
	// dockerAptSuite and dockerAptComponent are the jammy repo's suite and component.
	dockerAptSuite     = "jammy"
	dockerAptComponent = "stable"
	// dockerDebDist is the version suffix of Docker's jammy packages.
	dockerDebDist = "ubuntu.22.04~jammy"

	// KubeRPMPath is the Kubernetes v1.34 yum repo (baseurl, no $basearch);
	// its key is KubeRPMPath/repodata/repomd.xml.key.
	KubeRPMPath = "kubernetes-new/core/stable/v1.34/rpm"
	// KubeDebPath is the Kubernetes v1.34 flat apt repo (`deb [signed-by=...] URL/KubeDebPath/ /`);
	// its key is KubeDebPath/Release.key.
	KubeDebPath = "kubernetes-new/core/stable/v1.34/deb"

	// VaultPath is the CentOS 7.9 vault: VaultPath/{os,extras,updates}/$basearch/.
	VaultPath = "centos-vault/7.9.2009"
	// VaultAltArchPath is where vault.centos.org keeps the other
	// architectures (aarch64): VaultAltArchPath/{os,...}/aarch64/.
	VaultAltArchPath = "centos-vault/altarch/7.9.2009"
)

// vaultPath is the CentOS 7 vault's folder for a's packages.
func vaultPath(a arch) string {
	if a.RPM == "x86_64" {
		return VaultPath
	}
	return VaultAltArchPath
}

// vaultRepos are the CentOS 7 base repos served empty from the vault tree.
var vaultRepos = []string{"os", "extras", "updates"}
