package kube

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/kube/kubeadmconfig"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/hostfile"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/templates"
)

// APIServerProxyStep runs local mode's proxy on every host without an API
// server: an HAProxy static pod on 127.0.0.1:<localEndpoint.port> that
// forwards to every control plane's API server it finds ready. Once the
// proxy answers, the endpoint's name moves to 127.0.0.1 on the host, so
// the kubelet and every kubeconfig there keep working while any control
// plane is down. It runs after the host's join (kubeadm join wants an
// empty manifests folder), in the same run, so a rerun changes nothing.
// Adding or removing a control plane rewrites the configuration, and the
// kubelet starts the proxy again with it.
type APIServerProxyStep struct{}

// Files of the proxy.
const (
	proxyConfigPath   = kprepKubeDir + "/haproxy.cfg"
	proxyManifestPath = manifestsDir + "/kprep-apiserver-proxy.yaml"
	// proxyConfigInPod is where the Docker official HAProxy image reads
	// its configuration.
	proxyConfigInPod = "/usr/local/etc/haproxy/haproxy.cfg"
	// proxyConfigMark is in the configuration's first line: it tells the
	// proxy's haproxy processes from any other haproxy on the host.
	proxyConfigMark = "(kube/apiserver-proxy)"
	// proxyName names the static pod (its mirror pod gets "-<node>").
	proxyName = "kprep-apiserver-proxy"
)

// Name implements provision.Step.
func (APIServerProxyStep) Name() string { return "kube/apiserver-proxy" }

// AppliesTo implements provision.HostFilter: in local mode, the hosts that
// join as workers (no API server of their own).
func (APIServerProxyStep) AppliesTo(h *inventory.Host, c *inventory.Cluster) bool {
	return c.Kubernetes.LocalMode() && kubeadmconfig.RoleOf(c, h) == kubeadmconfig.RoleJoinWorker
}

// Probe reads the proxy's files, the configuration its running haproxy
// processes read, whether it answers, /etc/hosts and whether the host has
// joined.
func (APIServerProxyStep) Probe(_ *inventory.Host, c *inventory.Cluster) string {
	return strings.Join([]string{
		shell.File("proxycfg", proxyConfigPath),
		shell.File("proxymanifest", proxyManifestPath),
		proxyRunningProbe(),
		endpointProbe(),
		proxyAnswersProbe(c),
	}, "\n")
}

// proxyRunningProbe prints proxy_running=<sha256 of each configuration the
// proxy's haproxy processes read> (none, one, or two while the kubelet
// swaps the pod). The configuration is a file mounted into the container:
// a process keeps reading the file it started with after kprep replaces it
// on the host, so this is what runs, not what is on disk.
func proxyRunningProbe() string { return shell.Value("proxy_running", proxyRunning()) }

// proxyRunning prints each hash proxyRunningProbe reports, one a line.
func proxyRunning() string {
	return fmt.Sprintf(`for p in $(pgrep -x haproxy); do f=/proc/$p/root%s; head -n1 "$f" 2>/dev/null | grep -qF %s && sha256sum <"$f" | cut -d' ' -f1; done | sort -u`,
		proxyConfigInPod, shell.Quote(proxyConfigMark))
}

// proxyAnswersProbe prints proxy_rc=0 when an API server answers /readyz
// through the proxy on 127.0.0.1 (asked with the kubelet's kubeconfig, whose
// CA checks the API server's certificate, which names 127.0.0.1), its
// kubectl status when not, and proxy_rc=none when the host has no proxy
// to ask (not joined, no manifest, no kubectl). It asks up to three times,
// a second apart, so one slow answer on a busy host is not a change.
func proxyAnswersProbe(c *inventory.Cluster) string {
	return fmt.Sprintf(`if [ -s %s ] && [ -e %s ] && command -v kubectl >/dev/null; then
  for i in 1 2 3; do %s >/dev/null 2>&1; rc=$?; [ $rc = 0 ] && break; sleep 1; done; echo "proxy_rc=$rc"
else echo proxy_rc=none; fi`, kubeletConf, proxyManifestPath, proxyReadyz(c))
}

// proxyReadyz asks /readyz through the proxy.
func proxyReadyz(c *inventory.Cluster) string {
	return "kubectl --kubeconfig=" + kubeletConf + " --server=" + proxyURL(c) + " --request-timeout=" + kubectlTimeout + " get --raw /readyz"
}

func proxyURL(c *inventory.Cluster) string {
	return "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Kubernetes.LocalEndpoint.Port))
}

// proxyWork is what one change does.
type proxyWork struct {
	// Path and Content: a file to write.
	Path    string
	Content []byte
	Mode    fs.FileMode
	// Endpoint points the endpoint's name at 127.0.0.1 once the proxy answers.
	Endpoint bool
}

// Diff implements provision.Step.
func (APIServerProxyStep) Diff(in provision.Input) ([]provision.Planned[proxyWork], error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, err
	}
	c := in.Cluster
	config, err := proxyConfig(c)
	if err != nil {
		return nil, err
	}
	manifest, err := proxyManifest(c, config)
	if err != nil {
		return nil, err
	}
	var changes []provision.Planned[proxyWork]
	for _, f := range []struct {
		label, path string
		want        []byte
		mode        fs.FileMode
		what        string
	}{
		{"proxycfg", proxyConfigPath, config, 0o644, "the proxy's configuration: the API servers of " + controlPlaneNames(c)},
		{"proxymanifest", proxyManifestPath, manifest, 0o600, "the proxy's static pod (" + c.Kubernetes.LocalEndpoint.ProxyImage + ")"},
	} {
		have, exists := st.File(f.label)
		if summary := hostfile.Compare(f.path, have, exists, f.want); summary != "" {
			changes = append(changes, provision.Planned[proxyWork]{Key: f.label, Summary: summary,
				Action: "write " + f.path + ", " + f.what, Data: proxyWork{Path: f.path, Content: f.want, Mode: f.mode}})
		}
	}
	name := c.Kubernetes.LocalEndpoint.Name
	hosts, _ := st.File("etchosts")
	_, lineSummary, err := withEndpointLine(string(hosts), name, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	running := strings.Fields(st.Values["proxy_running"])
	wantHash := sha256Hex(config)
	proxyWait := c.Kubernetes.ReadyTimeout
	switch {
	case len(changes) > 0:
		// Writing a file is followed by the wait below anyway.
	case len(running) == 0:
		changes = append(changes, provision.Planned[proxyWork]{Key: "running",
			Summary: "the proxy is not running", Action: fmt.Sprintf("wait up to %s for the kubelet to start it", proxyWait)})
	case len(running) > 1 || running[0] != wantHash:
		changes = append(changes, provision.Planned[proxyWork]{Key: "running",
			Summary: "the proxy runs with an older configuration", Action: fmt.Sprintf("wait up to %s for the kubelet to start it again", proxyWait)})
	case st.Values["proxy_rc"] != "0":
		changes = append(changes, provision.Planned[proxyWork]{Key: "answers",
			Summary: "no API server answers through the proxy on " + proxyURL(c),
			Action:  fmt.Sprintf("wait up to %s for an API server to answer through it", proxyWait)})
	}
	if lineSummary != "" {
		changes = append(changes, provision.Planned[proxyWork]{Key: "endpoint", Summary: lineSummary,
			Action: "once the proxy answers, write 127.0.0.1 " + name + " in /etc/hosts", Data: proxyWork{Endpoint: true}})
	}
	return changes, nil
}

// Apply writes the files, waits until the proxy runs the configuration and
// an API server answers through it, and only then points the endpoint's
// name at it: the host never loses the API servers on the way.
func (APIServerProxyStep) Apply(ctx context.Context, t provision.Target, in provision.Input, changes []provision.Planned[proxyWork]) error {
	st, err := shell.Parse(in.State)
	if err != nil {
		return err
	}
	if st.Values["has_kubelet_conf"] != "0" {
		return fmt.Errorf("%s has not joined the cluster (no %s): the proxy is set up after kubeadm join, which wants an empty %s", in.Host.Name, kubeletConf, manifestsDir)
	}
	pointEndpoint := false
	for _, ch := range changes {
		if ch.Data.Path != "" {
			if err := t.WriteFile(ctx, ch.Data.Path, ch.Data.Content, transport.WriteOptions{Mode: ch.Data.Mode}); err != nil {
				return err
			}
		}
		pointEndpoint = pointEndpoint || ch.Data.Endpoint
	}
	config, err := proxyConfig(in.Cluster)
	if err != nil {
		return err
	}
	if err := waitForProxy(ctx, t, in.Cluster, sha256Hex(config)); err != nil {
		return err
	}
	if pointEndpoint {
		return writeEndpointLine(ctx, t, in, "127.0.0.1")
	}
	return nil
}

// waitForProxy waits until the proxy's haproxy runs the configuration
// whose hash is want, and only it, and an API server answers through it.
// On a time-out it says what the kubelet logged about the pod.
func waitForProxy(ctx context.Context, t provision.Target, c *inventory.Cluster, want string) error {
	// One line, the wanted hash: the old pod is gone too.
	ready := fmt.Sprintf(`[ "$( { %s; } 2>/dev/null)" = %s ] && %s >/dev/null 2>&1`, proxyRunning(), want, proxyReadyz(c))
	// The kubelet pulls the proxy's image and starts its pod: the same
	// kind of wait as a node's readiness, on the same budget
	// (kubernetes.readyTimeout). A slow link or a slow host, such as the
	// lab's emulated aarch64 VM, needs more than a fast one.
	proxyWait := c.Kubernetes.ReadyTimeout
	polls := int(proxyWait / (2 * time.Second))
	line := fmt.Sprintf(`i=0; until %s; do i=$((i+1)); [ $i -ge %d ] && exit 1; sleep 2; done`, ready, polls)
	if _, err := t.Run(ctx, transport.Command{Line: line, Label: "wait for the API server proxy to run its configuration and answer on " + proxyURL(c),
		Timeout: proxyWait + time.Minute}); err != nil {
		why, _ := t.Run(ctx, transport.Command{Line: "journalctl -u kubelet.service --no-pager -n 400 | grep -F " + proxyName + " | tail -n 10"})
		return fmt.Errorf("the API server proxy did not run its configuration and answer on %s within %s: %w\nthe kubelet's last lines about it:\n%s",
			proxyURL(c), proxyWait, err, indent(strings.TrimSpace(string(why.Stdout))))
	}
	return nil
}

// proxyConfig is the proxy's haproxy.cfg: every control plane of the
// inventory, on the port the API servers bind in local mode.
func proxyConfig(c *inventory.Cluster) ([]byte, error) {
	type server struct{ Name, Address string }
	var servers []server
	port := strconv.Itoa(c.Kubernetes.LocalEndpoint.Port)
	for _, cp := range c.ControlPlanes() {
		servers = append(servers, server{Name: cp.Name, Address: net.JoinHostPort(cp.Address, port)})
	}
	return templates.Render("haproxy.cfg", map[string]any{"Port": port, "Servers": servers})
}

// The static pod's manifest, as small typed values (the fields kprep sets).
type (
	staticPod struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   podMeta `yaml:"metadata"`
		Spec       podSpec `yaml:"spec"`
	}
	podMeta struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	podSpec struct {
		HostNetwork       bool        `yaml:"hostNetwork"`
		PriorityClassName string      `yaml:"priorityClassName"`
		Containers        []container `yaml:"containers"`
		Volumes           []volume    `yaml:"volumes"`
	}
	container struct {
		Name          string        `yaml:"name"`
		Image         string        `yaml:"image"`
		Command       []string      `yaml:"command,flow"`
		LivenessProbe probe         `yaml:"livenessProbe"`
		Resources     resources     `yaml:"resources"`
		VolumeMounts  []volumeMount `yaml:"volumeMounts"`
	}
	probe struct {
		TCPSocket           tcpSocket `yaml:"tcpSocket"`
		InitialDelaySeconds int       `yaml:"initialDelaySeconds"`
		PeriodSeconds       int       `yaml:"periodSeconds"`
		FailureThreshold    int       `yaml:"failureThreshold"`
	}
	tcpSocket struct {
		Host string `yaml:"host"`
		Port int    `yaml:"port"`
	}
	resources struct {
		Requests map[string]string `yaml:"requests"`
	}
	volumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	}
	volume struct {
		Name     string   `yaml:"name"`
		HostPath hostPath `yaml:"hostPath"`
	}
	hostPath struct {
		Path string `yaml:"path"`
		Type string `yaml:"type"`
	}
)

// proxyManifest is the proxy's static pod. It carries the configuration's
// hash, so a new configuration is a new manifest and the kubelet starts
// the pod again (haproxy reads its configuration only when it starts).
func proxyManifest(c *inventory.Cluster, config []byte) ([]byte, error) {
	le := c.Kubernetes.LocalEndpoint
	pod := staticPod{
		APIVersion: "v1",
		Kind:       "Pod",
		Metadata: podMeta{
			Name:        proxyName,
			Namespace:   "kube-system",
			Labels:      map[string]string{"k8s-app": proxyName},
			Annotations: map[string]string{"kprep.io/haproxy-cfg-sha256": sha256Hex(config)},
		},
		Spec: podSpec{
			HostNetwork: true,
			// Nothing on the node reaches the API servers without it.
			PriorityClassName: "system-node-critical",
			Containers: []container{{
				Name:  "haproxy",
				Image: le.ProxyImage,
				// The official image's entrypoint adds these flags for a
				// command line starting with "-"; written out, the pod runs
				// the same with any HAProxy image that has haproxy on PATH.
				Command: []string{"haproxy", "-W", "-db", "-f", proxyConfigInPod},
				LivenessProbe: probe{TCPSocket: tcpSocket{Host: "127.0.0.1", Port: le.Port},
					InitialDelaySeconds: 10, PeriodSeconds: 10, FailureThreshold: 3},
				Resources:    resources{Requests: map[string]string{"cpu": "25m", "memory": "32Mi"}},
				VolumeMounts: []volumeMount{{Name: "config", MountPath: proxyConfigInPod, ReadOnly: true}},
			}},
			Volumes: []volume{{Name: "config", HostPath: hostPath{Path: proxyConfigPath, Type: "File"}}},
		},
	}
	var b bytes.Buffer
	b.WriteString(hostfile.Header("local mode's proxy in front of every API server (kube/apiserver-proxy).",
		"Edits are overwritten; kubernetes.localEndpoint in the inventory sets the image and port."))
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(pod); err != nil {
		return nil, fmt.Errorf("the proxy's static pod: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// controlPlaneNames lists the inventory's control planes: "cp1, cp2".
func controlPlaneNames(c *inventory.Cluster) string {
	var names []string
	for _, cp := range c.ControlPlanes() {
		names = append(names, cp.Name)
	}
	return strings.Join(names, ", ")
}
