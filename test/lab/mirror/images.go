package mirror

import (
	"fmt"
	"slices"
	"strings"
)

// This file is the catalogue of the lab registry's images: what each one
// holds, under which names. oci.go makes them.

// imageConfig is the part of the image config the lab sets.
type imageConfig struct {
	Entrypoint []string `json:",omitempty"`
	Cmd        []string `json:",omitempty"`
	Env        []string `json:",omitempty"`
	User       string   `json:",omitempty"`
	WorkingDir string   `json:",omitempty"`
}

// layerSpec is one layer of an image and the history line that says what it is.
type layerSpec struct {
	Note  string
	Files []layerFile
}

// imageSpec is one image for one platform.
type imageSpec struct {
	// Repo is the repository below the registry ("google_containers/kube-apiserver").
	Repo string
	// Tags are its tags there; every tag names the same index.
	Tags []string
	// Source says where its programs come from (module and version).
	Source string
	// Renamed says what differs from the upstream image of that name, if anything.
	Renamed string `json:",omitempty"`
	Layers  []layerSpec
	Config  imageConfig
}

// imageInputs are what the images are made of, for one architecture.
type imageInputs struct {
	arch     arch
	builds   map[string]builtPrograms // by goBuild.Name
	pause    string                   // the pause program
	busybox  string                   // busybox-static
	iptables layerSpec                // iptablesLayer of iptablesSet's payload
	haproxy  layerSpec                // haproxyLayer of haproxySet's payload
}

// The PATH the images set.
const (
	imagePath   = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	flannelPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/bin"
)

// labImages lists every image of the lab registry for one architecture,
// in a fixed order (the same for every architecture).
func labImages(in imageInputs) []imageSpec {
	hello := imageConfig{
		Env: []string{imagePath},
		// A Cmd, not an Entrypoint, so `docker run hello echo hi` also works.
		Cmd:        []string{"/bin/sh", "-c", "echo 'Hello from the kprep lab registry.'; exec sleep 3600"},
		WorkingDir: "/",
	}
	busybox := busyboxLayer(in.busybox)
	specs := []imageSpec{
		// Under library/ so a daemon with registry-mirrors: ["http://REG"]
		// finds `docker pull hello` there.
		{Repo: "library/hello", Tags: []string{"latest"}, Source: "Debian busybox-static", Layers: []layerSpec{busybox}, Config: hello},
		{Repo: "lab/hello", Tags: []string{"1"}, Source: "Debian busybox-static", Layers: []layerSpec{busybox}, Config: hello},
	}
	pauseTags := []string{"3.10"}
	for _, k := range kubeReleases {
		if !slices.Contains(pauseTags, k.PauseTag) {
			pauseTags = append(pauseTags, k.PauseTag)
		}
	}
	specs = append(specs, imageSpec{Repo: "google_containers/pause", Tags: pauseTags,
		Source:  "the lab's pause program (Go, test/lab/mirror/pause.go)",
		Renamed: "a Go program doing what Kubernetes' pause.c does",
		Config:  imageConfig{Entrypoint: []string{"/pause"}, User: "65535:65535", WorkingDir: "/"},
		Layers:  []layerSpec{{Note: "kprep lab mirror: pause program built with Go", Files: []layerFile{{Name: "pause", Src: in.pause, Mode: 0o755}}}},
	})
	for _, k := range kubeReleases {
		specs = append(specs, kubeImages(k, in)...)
	}
	specs = append(specs, flannelImages(in)...)
	return append(specs, haproxyImage(in))
}

// kubeImages are the images a release's `kubeadm config images list`
// names, but pause: the control plane, kube-proxy, etcd and CoreDNS.
func kubeImages(k kubeRelease, in imageInputs) []imageSpec {
	kube := in.builds[k.build().Name]
	source := "k8s.io/kubernetes " + k.Version
	var specs []imageSpec
	for _, p := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
		layers := []layerSpec{staticBase()}
		if p == "kube-proxy" {
			layers = append(layers, in.iptables)
		}
		layers = append(layers, programLayer(source, []layerFile{{Name: "usr/local/bin/" + p, Src: kube.path(p), Mode: 0o755}}))
		specs = append(specs, imageSpec{Repo: "google_containers/" + p, Tags: []string{k.Version}, Source: source, Layers: layers,
			// kubeadm's manifests give the command; run bare, the image runs its program.
			Config: imageConfig{Entrypoint: []string{"/usr/local/bin/" + p}, Env: []string{imagePath}, WorkingDir: "/"}})
	}
	etcd := in.builds[k.Etcd.Name]
	var etcdFiles []layerFile
	for _, p := range k.Etcd.Programs {
		etcdFiles = append(etcdFiles, layerFile{Name: "usr/local/bin/" + p, Src: etcd.path(p), Mode: 0o755})
	}
	etcdSource := "go.etcd.io/etcd/server/v3, etcdctl/v3, etcdutl/v3 v" + strings.TrimPrefix(k.Etcd.Name, "etcd-")
	specs = append(specs, imageSpec{Repo: "google_containers/etcd", Tags: []string{k.EtcdTag}, Source: etcdSource,
		Layers: []layerSpec{staticBase(), programLayer(etcdSource, etcdFiles)},
		Config: imageConfig{Cmd: []string{"/usr/local/bin/etcd"}, Env: []string{imagePath}, WorkingDir: "/"}})
	coredns := in.builds[k.CoreDNS.Name]
	coreSource := "github.com/coredns/coredns " + k.CoreTag
	specs = append(specs, imageSpec{Repo: "google_containers/coredns", Tags: []string{k.CoreTag}, Source: coreSource,
		Renamed: "runs as root (upstream: nonroot with a file capability for port 53)",
		Layers:  []layerSpec{staticBase(), programLayer(coreSource, []layerFile{{Name: "coredns", Src: coredns.path("coredns"), Mode: 0o755}})},
		// kubeadm's Deployment passes only args.
		Config: imageConfig{Entrypoint: []string{"/coredns"}, Env: []string{imagePath}, WorkingDir: "/"}})
	return specs
}

// flannelImages are flannel's two images, under their upstream paths
// (ghcr.io/flannel-io/...) below the lab registry, used as the upstream
// kube-flannel.yml uses them.
func flannelImages(in imageInputs) []imageSpec {
	flannel := in.builds[flannelBuild().Name]
	source := flannelModule + " " + FlannelVersion
	cni := in.builds[flannelCNIBuild().Name]
	cniSource := "github.com/containernetworking/plugins " + FlannelCNIVersion + " plugins/meta/flannel"
	return []imageSpec{{
		Repo: "flannel-io/flannel", Tags: []string{FlannelVersion}, Source: source,
		Renamed: "flanneld without the tencentvpc and udp backends; iptables is Debian's (nft), without iptables-wrapper",
		Layers: []layerSpec{staticBase(), in.iptables, programLayer(source, []layerFile{
			{Name: "opt/bin/flanneld", Src: flannel.path("flanneld"), Mode: 0o755},
			{Name: "opt/bin/install-conf", Src: flannel.path("install-conf"), Mode: 0o755},
		})},
		Config: imageConfig{Entrypoint: []string{"/opt/bin/flanneld"}, Env: []string{flannelPath}, WorkingDir: "/"},
	}, {
		// kube-flannel.yml's init container runs `cp -f /flannel /opt/cni/bin/flannel`.
		Repo: "flannel-io/flannel-cni-plugin", Tags: []string{FlannelCNIPluginTag}, Source: cniSource,
		Renamed: "containernetworking/plugins " + FlannelCNIVersion + "'s flannel plugin under the tag of flannel-io/cni-plugin that kube-flannel.yml " + FlannelVersion + " uses",
		Layers:  []layerSpec{busyboxLayer(in.busybox), programLayer(cniSource, []layerFile{{Name: "flannel", Src: cni.path("flannel"), Mode: 0o755}})},
		Config:  imageConfig{Cmd: []string{"/flannel"}, Env: []string{imagePath}, WorkingDir: "/"},
	}}
}

// FlannelCNIPluginTag is the flannel-cni-plugin tag flannel's own
// kube-flannel.yml (FlannelVersion) names, so that manifest works against
// the lab registry with only the registry changed.
const FlannelCNIPluginTag = "v1.9.1-flannel3"

// programLayer is the layer with an image's own programs.
func programLayer(source string, files []layerFile) layerSpec {
	return layerSpec{Note: "kprep lab mirror: built from " + source + " with the Go module proxy", Files: files}
}

// staticBase is the base layer of the images whose programs are static:
// the users and files a distroless base has, no shell.
func staticBase() layerSpec {
	return layerSpec{Note: "kprep lab mirror: static base (users, nsswitch, /tmp)", Files: []layerFile{
		{Name: "etc/passwd", Mode: 0o644, Data: "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		{Name: "etc/group", Mode: 0o644, Data: "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"},
		{Name: "etc/nsswitch.conf", Mode: 0o644, Data: "hosts: files dns\n"},
		{Name: "root", Dir: true, Mode: 0o700},
		{Name: "home/nonroot", Dir: true, Mode: 0o700},
		{Name: "tmp", Dir: true, Mode: 0o1777},
	}}
}

// busyboxLayer is busybox-static with the applets the lab's images use.
func busyboxLayer(busybox string) layerSpec {
	files := []layerFile{
		{Name: "bin/busybox", Src: busybox, Mode: 0o755},
		{Name: "tmp", Dir: true, Mode: 0o1777},
	}
	// httpd, nslookup and ping serve the kube suite's pods (a web server, DNS and
	// reachability checks across nodes).
	for _, applet := range []string{"sh", "echo", "sleep", "cat", "cp", "ls", "hostname", "wget", "httpd", "nslookup", "ping"} {
		files = append(files, layerFile{Name: "bin/" + applet, Link: "busybox", Mode: 0o777})
	}
	return layerSpec{Note: "kprep lab mirror: busybox-static from Debian", Files: files}
}

// iptablesSkip are the parts of the iptables payload no program reads.
var iptablesSkip = []string{"usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/lintian/", "usr/share/locale/", "usr/share/bug/"}

// iptablesLinks are what Debian's alternatives point at on a bookworm
// host: iptables is the nf_tables one, as on the lab's hosts.
var iptablesLinks = map[string]string{
	"usr/sbin/iptables":          "iptables-nft",
	"usr/sbin/iptables-save":     "iptables-nft-save",
	"usr/sbin/iptables-restore":  "iptables-nft-restore",
	"usr/sbin/ip6tables":         "ip6tables-nft",
	"usr/sbin/ip6tables-save":    "ip6tables-nft-save",
	"usr/sbin/ip6tables-restore": "ip6tables-nft-restore",
	"usr/sbin/ebtables":          "ebtables-nft",
	"usr/sbin/arptables":         "arptables-nft",
}

// iptablesLayer is Debian's iptables, nftables and conntrack with their
// libraries, from iptablesSet's payload, plus the alternatives' links and
// /run (iptables takes /run/xtables.lock).
func iptablesLayer(p *debianPayload) (layerSpec, error) {
	files, err := treeFiles(p.Root, "", iptablesSkip)
	if err != nil {
		return layerSpec{}, fmt.Errorf("the iptables layer: %w", err)
	}
	for _, name := range sortedKeys(iptablesLinks) {
		files = append(files, layerFile{Name: name, Link: iptablesLinks[name], Mode: 0o777})
	}
	files = append(files, layerFile{Name: "run", Dir: true, Mode: 0o755})
	return layerSpec{Note: "kprep lab mirror: Debian's iptables, nftables, conntrack and their libraries", Files: files}, nil
}
