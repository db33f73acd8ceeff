package images

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kprep/kprep/kube/cni"
	"github.com/kprep/kprep/kube/kubeadmconfig"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/runtime"
)

// Need is one image a node will pull and why.
type Need struct {
	// Image is the reference as the inventory makes it (what kubeadm, the
	// manifests or the runtime's configuration name).
	Image string
	// Why says who pulls it: "kubeadm (control plane)", "flannel (CNI)"...
	Why string
}

// defaultImageRepository is kubeadm's image repository when the inventory
// names none.
const defaultImageRepository = "registry.k8s.io"

// kubeadmTags are the etcd and CoreDNS tags kubeadm lists for its own
// Kubernetes version (cmd/kubeadm/app/constants: SupportedEtcdVersion of
// its minor, CoreDNSVersion), read from k8s.io/kubernetes at each version
// below as the Go module proxy serves it; 1.34.4's is also what the real
// kubeadm's `config images list` prints in the lab (test/lab/mirror).
// They move between patch releases (1.34.0 lists etcd 3.6.4-0, 1.34.2
// 3.6.5-0), so a version not listed gets a warning instead of a guess.
var kubeadmTags = map[string]struct{ etcd, coreDNS string }{
	"1.33.6":  {etcd: "3.5.24-0", coreDNS: "v1.12.0"},
	"1.33.13": {etcd: "3.5.24-0", coreDNS: "v1.12.0"},
	"1.34.0":  {etcd: "3.6.4-0", coreDNS: "v1.12.1"},
	"1.34.2":  {etcd: "3.6.5-0", coreDNS: "v1.12.1"},
	"1.34.3":  {etcd: "3.6.5-0", coreDNS: "v1.12.1"},
	"1.34.4":  {etcd: "3.6.5-0", coreDNS: "v1.12.1"},
	"1.35.4":  {etcd: "3.6.6-0", coreDNS: "v1.13.1"},
	"1.36.1":  {etcd: "3.6.8-0", coreDNS: "v1.14.2"},
	"1.36.3":  {etcd: "3.6.8-0", coreDNS: "v1.14.2"},
	"1.37.2":  {etcd: "3.7.0-0", coreDNS: "v1.14.6"},
}

// Needed lists the images host h will pull for cluster c (which passed
// inventory.Validate), each once, in a fixed order, and says what it could
// not list:
//   - every node: the pod sandbox (pause), kube-proxy (a DaemonSet),
//     CoreDNS (a Deployment whose pods may land on any node) and the CNI's
//     images (DaemonSets, and Calico's controllers, a Deployment);
//   - a control plane: what `kubeadm config images list` names, which
//     kubeadm init and join --control-plane pull (the API server,
//     controller manager, scheduler, etcd and kubeadm's pause);
//   - a host without an API server in local mode: the API server proxy.
func Needed(c *inventory.Cluster, h *inventory.Host) (needs []Need, unknown []string) {
	k := &c.Kubernetes
	repo := strings.TrimRight(k.ImageRepository, "/")
	if repo == "" {
		repo = defaultImageRepository
	}
	add := func(image, why string) {
		if !slices.ContainsFunc(needs, func(n Need) bool { return n.Image == image }) {
			needs = append(needs, Need{Image: image, Why: why})
		}
	}
	tags, known := kubeadmTags[k.Version]
	role := kubeadmconfig.RoleOf(c, h)
	controlPlane := role != kubeadmconfig.RoleJoinWorker
	if controlPlane {
		for _, p := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
			add(repo+"/"+p+":v"+k.Version, "kubeadm (control plane)")
		}
		if known {
			add(repo+"/etcd:"+tags.etcd, "kubeadm (control plane)")
		} else {
			unknown = append(unknown, fmt.Sprintf("etcd: kprep does not know the etcd tag kubeadm %s lists (it knows %s); not checked", k.Version, knownVersions()))
		}
		add(runtime.KubeadmPauseImage(c), "kubeadm (control plane)")
	}
	add(runtime.SandboxImage(c), "the container runtime (pod sandbox)")
	add(repo+"/kube-proxy:v"+k.Version, "kube-proxy (DaemonSet)")
	if known {
		add(coreDNSImage(repo, tags.coreDNS), "CoreDNS (Deployment)")
	} else {
		unknown = append(unknown, fmt.Sprintf("CoreDNS: kprep does not know the CoreDNS tag kubeadm %s lists (it knows %s); not checked", k.Version, knownVersions()))
	}
	for _, img := range cni.Images(c) {
		add(img, k.CNI+" (CNI)")
	}
	if k.LocalMode() && !controlPlane {
		add(k.LocalEndpoint.ProxyImage, "the API server proxy (local mode)")
	}
	return needs, unknown
}

// coreDNSImage is CoreDNS's image as kubeadm names it: below coredns/ in
// its default repository (registry.k8s.io/coredns/coredns), straight
// below any other (an operator's mirror keeps one level).
func coreDNSImage(repo, tag string) string {
	if repo == defaultImageRepository {
		return repo + "/coredns/coredns:" + tag
	}
	return repo + "/coredns:" + tag
}

func knownVersions() string {
	var v []string
	for version := range kubeadmTags {
		v = append(v, version)
	}
	slices.Sort(v)
	return strings.Join(v, ", ")
}
