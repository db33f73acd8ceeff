package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/provision/starter"
	"github.com/kprep/kprep/test/lab/instance"
)

// What the lab's inventory asks kprep to install, from the lab's mirror.
const (
	inventoryFileName = "cluster.yaml"
	// DockerVersion is the pinned Docker CE version of the inventory: the
	// one `kprep init` writes, so what init offers is what the lab proves.
	DockerVersion = starter.DockerVersion
	// KubernetesVersion is the inventory's Kubernetes version, as init's.
	KubernetesVersion = starter.KubernetesVersion
)

// The inventory's shape (see design/contract.md): the lab writes only the
// fields it sets; kprep defaults the rest.
type (
	invCluster struct {
		APIVersion string        `yaml:"apiVersion"`
		Kind       string        `yaml:"kind"`
		Metadata   invMetadata   `yaml:"metadata"`
		SSH        invSSH        `yaml:"ssh"`
		Hosts      []invHost     `yaml:"hosts"`
		Docker     invDocker     `yaml:"docker"`
		Kubernetes invKubernetes `yaml:"kubernetes"`
	}
	invMetadata struct {
		Name string `yaml:"name"`
	}
	invSSH struct {
		User            string `yaml:"user,omitempty"`
		Port            int    `yaml:"port,omitempty"`
		PrivateKeyFile  string `yaml:"privateKeyFile,omitempty"`
		SudoPasswordEnv string `yaml:"sudoPasswordEnv,omitempty"`
		HostKeyPolicy   string `yaml:"hostKeyPolicy,omitempty"`
		KnownHostsFile  string `yaml:"knownHostsFile,omitempty"`
		ConnectTimeout  string `yaml:"connectTimeout,omitempty"`
	}
	invHost struct {
		Name    string   `yaml:"name"`
		Address string   `yaml:"address"`
		Roles   []string `yaml:"roles,flow"`
		SSH     *invSSH  `yaml:"ssh,omitempty"`
	}
	invDocker struct {
		Version            quoted   `yaml:"version"`
		Repo               string   `yaml:"repo"`
		RegistryMirrors    []string `yaml:"registryMirrors,flow"`
		InsecureRegistries []string `yaml:"insecureRegistries,flow"`
		CentOS7Vault       invVault `yaml:"centos7Vault"`
	}
	invVault struct {
		URL string `yaml:"url"`
	}
	invKubernetes struct {
		Version         quoted `yaml:"version"`
		Repo            string `yaml:"repo"`
		ImageRepository string `yaml:"imageRepository"`
		// The lab-only settings a cluster needs inside nspawn hosts (the
		// lab README says why): the hosts lack CAP_SYS_RESOURCE, and
		// nf_conntrack_max is read-only in them.
		Containerd invContainerd `yaml:"containerd"`
		KubeProxy  invKubeProxy  `yaml:"kubeProxy"`
		Kubelet    invKubelet    `yaml:"kubelet"`
		Flannel    invFlannel    `yaml:"flannel"`
	}
	invKubelet struct {
		EvictionHard map[string]string `yaml:"evictionHard"`
	}
	invContainerd struct {
		RestrictOOMScoreAdj bool `yaml:"restrictOOMScoreAdj"`
	}
	invKubeProxy struct {
		ConntrackMaxPerCore int `yaml:"conntrackMaxPerCore"`
	}
	invFlannel struct {
		ImageRegistry string `yaml:"imageRegistry"`
	}
)

// quoted is a string written in double quotes, as the contract writes
// versions (so that no YAML reader takes "1.30" for a number).
type quoted string

// MarshalYAML writes the string double-quoted.
func (q quoted) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: string(q)}, nil
}

// inventoryYAML renders the inventory for the lab's hosts.
func inventoryYAML(id instance.ID, stateDir string, hosts []hostState) ([]byte, error) {
	mirror := id.MirrorURL()
	registry := id.RegistryAddr()
	c := invCluster{
		APIVersion: "kprep/v1",
		Kind:       "Cluster",
		Metadata:   invMetadata{Name: "lab"},
		SSH: invSSH{
			User:           "root",
			Port:           22,
			PrivateKeyFile: filepath.Join(stateDir, keyFileName),
			HostKeyPolicy:  "accept-new",
			KnownHostsFile: filepath.Join(stateDir, knownHostsFileName),
			ConnectTimeout: "10s",
		},
		Docker: invDocker{
			Version:            DockerVersion,
			Repo:               mirror + "/docker-ce",
			RegistryMirrors:    []string{"http://" + registry},
			InsecureRegistries: []string{registry},
			CentOS7Vault:       invVault{URL: mirror + "/centos-vault"},
		},
		Kubernetes: invKubernetes{
			Version:         KubernetesVersion,
			Repo:            mirror + "/kubernetes-new/core/stable",
			ImageRepository: registry + "/google_containers",
			Containerd:      invContainerd{RestrictOOMScoreAdj: true},
			KubeProxy:       invKubeProxy{ConntrackMaxPerCore: 0},
			// The hosts' disks are the machine's, shared with builds and
			// other labs: the kubelet's default 10-15% free would evict the
			// lab's pods whenever the machine's disk runs fuller.
			Kubelet: invKubelet{EvictionHard: map[string]string{"nodefs.available": "1%", "imagefs.available": "1%", "memory.available": "100Mi"}},
			Flannel: invFlannel{ImageRegistry: registry},
		},
	}
	needsPassword := ""
	for _, h := range hosts {
		ih := invHost{Name: h.Name, Address: h.Address, Roles: h.Roles}
		if h.User != "root" {
			ih.SSH = &invSSH{User: h.User}
			if h.SudoPassword {
				ih.SSH.SudoPasswordEnv = SudoPasswordEnv
				needsPassword = h.Name
			}
		}
		c.Hosts = append(c.Hosts, ih)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# kprep inventory for the lab's hosts, written by `go run ./test/lab up`.\n")
	fmt.Fprintf(&b, "# The hosts and this file go away with `go run ./test/lab down`.\n")
	if needsPassword != "" {
		fmt.Fprintf(&b, "# %s logs in as %s, whose sudo asks for a password; before kprep runs:\n", needsPassword, sudoUser)
		fmt.Fprintf(&b, "#   %s\n", exportHint(stateDir))
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("render the inventory: %w", err)
	}
	return b.Bytes(), nil
}

// exportHint is the shell line that puts the sudo password in the variable
// the inventory names, without printing it.
func exportHint(stateDir string) string {
	return fmt.Sprintf(`export %s="$(cat %s)"`, SudoPasswordEnv, filepath.Join(stateDir, sudoPasswordFileName))
}

// writeInventory writes the inventory into the state folder.
func writeInventory(id instance.ID, stateDir string, hosts []hostState) (string, error) {
	data, err := inventoryYAML(id, stateDir, hosts)
	if err != nil {
		return "", err
	}
	path := filepath.Join(stateDir, inventoryFileName)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write the inventory: %w", err)
	}
	return path, nil
}
