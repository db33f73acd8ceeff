package e2e

// The lab registry's cluster images on a lab host, through the CRI: every
// image kubeadm lists for the lab inventory's settings, and flannel's two,
// are in the registry as indexes and pull through containerd (lab-crictl,
// as the kubelet pulls); each one's
// program runs as a kubelet static pod; etcd runs as kubeadm runs it and
// answers its health endpoint.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/test/lab/lab"
	"github.com/kprep/kprep/test/lab/mirror"
)

// imPod is a static pod that runs one image's program once and the text
// its log must show.
type imPod struct {
	name, image string
	command     []string
	want        string
	privileged  bool
	mounts      map[string]string // host path -> container path
}

func TestLabClusterImages(t *testing.T) {
	l := bootLab(t, "centos7")
	const host = "lab1"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	sh := ltSh(t, ctx, l, host)
	reg := l.RegistryAddr()

	// The lab inventory's Kubernetes settings, read from the file kprep reads.
	var inv struct {
		Kubernetes struct {
			Version         string `yaml:"version"`
			ImageRepository string `yaml:"imageRepository"`
		} `yaml:"kubernetes"`
	}
	data, err := os.ReadFile(l.InventoryPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &inv); err != nil || inv.Kubernetes.Version == "" || inv.Kubernetes.ImageRepository == "" {
		t.Fatalf("the lab's inventory: kubernetes %+v, %v", inv.Kubernetes, err)
	}

	ltWrite(t, ctx, l, host, "/etc/yum.repos.d/lab.repo", ltKubeRepos(l))
	ltContainerdCRI(t, ctx, l, host, inv.Kubernetes.ImageRepository+"/pause:3.10.1")
	ltStandaloneKubelet(t, ctx, l, host)
	sh("yum install -y -q --disablerepo='*' --enablerepo=docker-ce-stable --enablerepo=kubernetes --disableexcludes=kubernetes containerd.io kubelet-" +
		inv.Kubernetes.Version + " kubeadm-" + inv.Kubernetes.Version + " && cp /root/config.toml /etc/containerd/config.toml")
	sh("swapoff -a && systemctl restart containerd")

	// Every image kubeadm lists for the inventory's settings, and flannel's.
	refs := strings.Fields(sh("kubeadm config images list --kubernetes-version v" + inv.Kubernetes.Version +
		" --image-repository " + inv.Kubernetes.ImageRepository))
	if len(refs) != 7 {
		t.Fatalf("kubeadm lists %d images: %v", len(refs), refs)
	}
	flannel := reg + "/flannel-io/flannel:" + mirror.FlannelVersion
	cni := reg + "/flannel-io/flannel-cni-plugin:" + mirror.FlannelCNIPluginTag
	refs = append(refs, flannel, cni)
	// The registry holds each as an index for the hosts' platform: HEAD
	// and GET of the manifest from the machine, no pull.
	for _, ref := range refs {
		m, digest, err := mirror.RemoteIndex(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if p := m.Manifests[0].Platform; p == nil || p.OS != "linux" || p.Architecture != "amd64" {
			t.Errorf("%s (%s): platform %+v, want linux/amd64", ref, digest, p)
		}
	}
	for _, ref := range refs {
		start := time.Now()
		sh("lab-crictl -timeout 5m pull " + ref)
		t.Logf("pulled %s through the CRI in %s", ref, time.Since(start).Round(time.Millisecond))
	}
	images := sh("lab-crictl images")
	for _, ref := range refs {
		if !strings.Contains(images, ref+" ") {
			t.Errorf("lab-crictl images lacks %s:\n%s", ref, images)
		}
	}

	image := func(name string) string {
		for _, r := range refs {
			if strings.Contains(r, "/"+name+":") {
				return r
			}
		}
		t.Fatalf("no %s in %v", name, refs)
		return ""
	}
	version := "v" + inv.Kubernetes.Version
	pods := []imPod{
		{name: "apiserver-version", image: image("kube-apiserver"), command: []string{"kube-apiserver", "--version"}, want: "Kubernetes " + version},
		{name: "controller-manager-version", image: image("kube-controller-manager"), command: []string{"kube-controller-manager", "--version"}, want: "Kubernetes " + version},
		{name: "scheduler-version", image: image("kube-scheduler"), command: []string{"kube-scheduler", "--version"}, want: "Kubernetes " + version},
		{name: "proxy-version", image: image("kube-proxy"), command: []string{"/usr/local/bin/kube-proxy", "--version"}, want: "Kubernetes " + version},
		// The iptables in kube-proxy's and flannel's images reads the host's nf_tables rules.
		{name: "proxy-iptables", image: image("kube-proxy"), command: []string{"iptables-save", "-t", "filter"}, want: "*filter", privileged: true},
		{name: "coredns-version", image: image("coredns"), command: []string{"/coredns", "-version"}, want: "CoreDNS-1.12.1"},
		{name: "etcdctl-version", image: image("etcd"), command: []string{"etcdctl", "version"}, want: "etcdctl version: 3.6.5"},
		{name: "flanneld-version", image: flannel, command: []string{"/opt/bin/flanneld", "--version"}, want: mirror.FlannelVersion},
		{name: "flannel-iptables", image: flannel, command: []string{"iptables", "-t", "nat", "-S"}, want: "-P POSTROUTING ACCEPT", privileged: true},
		// kube-flannel.yml's init container, as it is written there.
		{name: "install-cni-plugin", image: cni, command: []string{"cp", "-f", "/flannel", "/opt/cni/bin/flannel"}, want: "",
			mounts: map[string]string{"/opt/cni/bin": "/opt/cni/bin"}},
	}
	for _, p := range pods {
		ltWrite(t, ctx, l, host, "/etc/kubernetes/manifests/"+p.name+".yaml", p.manifest())
	}
	// etcd as kubeadm's manifest runs it: host network, data on the host,
	// clients on 2379, health on the metrics port.
	ltWrite(t, ctx, l, host, "/etc/kubernetes/manifests/etcd.yaml", `apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  hostNetwork: true
  containers:
  - name: etcd
    image: `+image("etcd")+`
    command: [etcd, --name=lab1, --data-dir=/var/lib/etcd, --listen-client-urls=http://127.0.0.1:2379,
      --advertise-client-urls=http://127.0.0.1:2379, --listen-peer-urls=http://127.0.0.1:2380,
      --initial-advertise-peer-urls=http://127.0.0.1:2380, --initial-cluster=lab1=http://127.0.0.1:2380,
      --listen-metrics-urls=http://127.0.0.1:2381]
    volumeMounts: [{name: data, mountPath: /var/lib/etcd}]
  volumes: [{name: data, hostPath: {path: /var/lib/etcd, type: DirectoryOrCreate}}]
`)
	sh("systemctl daemon-reload && systemctl start kubelet")

	var health string
	waitLong(t, "etcd's /health", 5*time.Minute, func() bool {
		out, _, _ := l.Exec(ctx, host, "curl", "-sf", "http://127.0.0.1:2381/health")
		health = string(out)
		return strings.Contains(health, `"health":"true"`)
	})
	t.Logf("etcd static pod: %s", health)
	if out := sh("curl -sf http://127.0.0.1:2379/version"); !strings.Contains(out, `"etcdserver":"3.6.5"`) {
		t.Errorf("etcd /version: %s", out)
	}
	for _, p := range pods {
		var log string
		waitLong(t, p.name+"'s container to exit 0", 5*time.Minute, func() bool {
			log = podLog(l, host, p.name)
			ps, _, _ := l.Exec(ctx, host, "lab-crictl", "ps", "-a")
			return ltInState(string(ps), p.container(), "EXITED")
		})
		if !strings.Contains(log, p.want) {
			t.Errorf("%s (%s): log %q, want %q in it", p.name, p.image, log, p.want)
		}
		t.Logf("%s (%s): %s", p.name, p.image, firstLine(log))
	}
	if got := sh("/opt/cni/bin/flannel 2>&1"); got != "CNI flannel plugin "+mirror.FlannelCNIVersion {
		t.Errorf("the CNI plugin the init container copied says %q", got)
	}
	if t.Failed() {
		journal, _, _ := l.Exec(ctx, host, "journalctl", "-u", "kubelet", "-u", "containerd", "--no-pager", "-n", "80")
		t.Logf("journal:\n%s", journal)
	}
	sh("systemctl stop kubelet")
}

// container is the pod's container name: the pod's.
func (p imPod) container() string { return p.name }

// manifest is the pod's static pod manifest: host network, run once.
func (p imPod) manifest() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: default}\nspec:\n  hostNetwork: true\n  restartPolicy: Never\n", p.name)
	fmt.Fprintf(&b, "  containers:\n  - name: %s\n    image: %s\n    command: [%s]\n", p.container(), p.image, strings.Join(p.command, ", "))
	if p.privileged {
		b.WriteString("    securityContext: {privileged: true}\n")
	}
	n := 0
	var vols strings.Builder
	for hostPath, path := range p.mounts {
		if n == 0 {
			b.WriteString("    volumeMounts:\n")
			vols.WriteString("  volumes:\n")
		}
		fmt.Fprintf(&b, "    - {name: v%d, mountPath: %s}\n", n, path)
		fmt.Fprintf(&vols, "  - {name: v%d, hostPath: {path: %s}}\n", n, hostPath)
		n++
	}
	return b.String() + vols.String()
}

// podLog is what a static pod's container printed, from the CRI's log
// files under /var/log/pods.
func podLog(l *lab.Lab, host, pod string) string {
	out, _ := hostShErr(l, host, "cat /var/log/pods/default_"+pod+"-"+host+"_*/"+pod+"/*.log 2>/dev/null")
	return out
}

// firstLine is a CRI log's first line without its time, stream and tag.
func firstLine(log string) string {
	line, _, _ := strings.Cut(log, "\n")
	if f := strings.SplitN(line, " ", 4); len(f) == 4 {
		return f[3]
	}
	return line
}

// waitLong waits up to limit for ok, polling every two seconds.
func waitLong(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !ok(); time.Sleep(2 * time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
	}
}
