package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/provision/inventory"
)

func cluster(t *testing.T, kube string) *inventory.Cluster {
	t.Helper()
	text := "apiVersion: kprep/v1\nkind: Cluster\nmetadata: {name: t}\n" +
		"hosts: [{name: cp1, address: 192.168.77.10, roles: [control-plane]}]\n" +
		"kubernetes: {version: 1.34.4, " + kube + "}\n"
	c, err := inventory.Parse("cluster.yaml", []byte(text), inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// object is one decoded manifest document.
type object = map[string]any

// decode parses every document of a manifest, as kubectl apply reads it.
func decode(t *testing.T, manifest []byte) []object {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(string(manifest)))
	var out []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("manifest is not YAML: %v", err)
		}
		if o == nil {
			continue // a document of comments only
		}
		if o["apiVersion"] == nil || o["kind"] == nil || get(o, "metadata.name") == nil {
			t.Fatalf("document without apiVersion, kind or name: %v", o)
		}
		out = append(out, o)
	}
}

func get(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o["kind"] == kind && get(o, "metadata.name") == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the manifest", kind, name)
	return nil
}

// containers lists every container and init container of a workload.
func containers(o object) []map[string]any {
	var out []map[string]any
	for _, key := range []string{"spec.template.spec.initContainers", "spec.template.spec.containers"} {
		list, _ := get(o, key).([]any)
		for _, c := range list {
			out = append(out, c.(map[string]any))
		}
	}
	return out
}

// images lists every image the manifest's workloads pull.
func images(objs []object) []string {
	var out []string
	for _, o := range objs {
		for _, c := range containers(o) {
			out = append(out, c["image"].(string))
		}
	}
	return out
}

func env(c map[string]any) map[string]any {
	out := map[string]any{}
	list, _ := c["env"].([]any)
	for _, e := range list {
		m := e.(map[string]any)
		if v, ok := m["value"]; ok {
			out[m["name"].(string)] = v
		} else {
			out[m["name"].(string)] = m["valueFrom"]
		}
	}
	return out
}

func container(t *testing.T, o object, name string) map[string]any {
	t.Helper()
	for _, c := range containers(o) {
		if c["name"] == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

func TestFlannel(t *testing.T) {
	tests := []struct {
		name, kube, registry, network, ipv6, backend string
		nftables                                     bool
	}{
		{"defaults", "", "ghcr.io", "10.244.0.0/16", "", "vxlan", false},
		{"the lab's registry and host-gw", "podSubnet: 10.200.0.0/16, flannel: {backend: host-gw, imageRegistry: 192.168.77.1:5000}",
			"192.168.77.1:5000", "10.200.0.0/16", "", "host-gw", false},
		{"dual stack under nftables", `podSubnet: "10.244.0.0/16,fd00:10:244::/56", kubeProxy: {mode: nftables}, flannel: {imageRegistry: ghcr.m.daocloud.io}`,
			"ghcr.m.daocloud.io", "10.244.0.0/16", "fd00:10:244::/56", "vxlan", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster(t, tt.kube)
			out, err := Manifest(c)
			if err != nil {
				t.Fatal(err)
			}
			objs := decode(t, out)
			want := []string{
				tt.registry + "/flannel-io/flannel-cni-plugin:" + FlannelCNIPluginVersion,
				tt.registry + "/flannel-io/flannel:" + FlannelVersion,
				tt.registry + "/flannel-io/flannel:" + FlannelVersion,
			}
			if got := images(objs); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("images %v, want %v", got, want)
			}
			if fmt.Sprint(Images(c)) != fmt.Sprint([]string{want[1], want[0]}) {
				t.Errorf("Images() = %v", Images(c))
			}

			cm := find(t, objs, "ConfigMap", "kube-flannel-cfg")
			var net map[string]any
			if err := json.Unmarshal([]byte(data(cm, "net-conf.json")), &net); err != nil {
				t.Fatalf("net-conf.json: %v", err)
			}
			if net["Network"] != orNil(tt.network) || net["IPv6Network"] != orNil(tt.ipv6) || net["EnableIPv6"] != (tt.ipv6 != "") ||
				get(net, "Backend.Type") != tt.backend || net["EnableNFTables"] != tt.nftables {
				t.Errorf("net-conf.json = %v", net)
			}
			var conf map[string]any
			if err := json.Unmarshal([]byte(data(cm, "cni-conf.json")), &conf); err != nil {
				t.Fatalf("cni-conf.json: %v", err)
			}
			if plugins := conf["plugins"].([]any); get(plugins[0], "type") != "flannel" || get(plugins[1], "type") != "portmap" {
				t.Errorf("cni-conf.json plugins = %v", plugins)
			}

			// The interface: flanneld uses the one that holds POD_IP, which
			// for a hostNetwork pod is the node's InternalIP.
			ds := find(t, objs, "DaemonSet", "kube-flannel-ds")
			if get(ds, "spec.template.spec.hostNetwork") != true {
				t.Error("flannel is not on the host network, so POD_IP is not the node's address")
			}
			fl := container(t, ds, "kube-flannel")
			if args := fmt.Sprint(fl["args"]); !strings.Contains(args, "--iface=$(POD_IP)") {
				t.Errorf("flanneld args %s lack --iface=$(POD_IP)", args)
			}
			if ip := fmt.Sprint(env(fl)["POD_IP"]); ip != "map[fieldRef:map[fieldPath:status.podIP]]" {
				t.Errorf("POD_IP = %s", ip)
			}
		})
	}
}

// data reads a ConfigMap's key (whose name may hold dots).
func data(cm object, key string) string {
	s, _ := get(cm, "data").(map[string]any)[key].(string)
	return s
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestCalico(t *testing.T) {
	tests := []struct {
		name, kube, registry, cidr, vxlan, ipip, backend string
	}{
		{"defaults: VXLAN from quay.io", "cni: calico", "quay.io", "10.244.0.0/16", "Always", "Never", "vxlan"},
		{"cross-subnet VXLAN from a mirror", "cni: calico, podSubnet: 10.233.64.0/18, calico: {encapsulation: VXLANCrossSubnet, imageRegistry: 192.168.77.1:5000/mirror}",
			"192.168.77.1:5000/mirror", "10.233.64.0/18", "CrossSubnet", "Never", "vxlan"},
		{"IPIP runs BIRD", "cni: calico, calico: {encapsulation: IPIP}", "quay.io", "10.244.0.0/16", "Never", "Always", "bird"},
		{"plain routes", "cni: calico, calico: {encapsulation: None}", "quay.io", "10.244.0.0/16", "Never", "Never", "bird"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster(t, tt.kube)
			out, err := Manifest(c)
			if err != nil {
				t.Fatal(err)
			}
			objs := decode(t, out)
			r := tt.registry
			want := []string{r + "/calico/cni:" + CalicoVersion, r + "/calico/cni:" + CalicoVersion, r + "/calico/node:" + CalicoVersion,
				r + "/calico/kube-controllers:" + CalicoVersion}
			if got := images(objs); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("images %v, want %v", got, want)
			}

			cm := find(t, objs, "ConfigMap", "calico-config")
			if got := get(cm, "data.calico_backend"); got != tt.backend {
				t.Errorf("calico_backend = %v", got)
			}
			conf := strings.Replace(get(cm, "data.cni_network_config").(string), "__CNI_MTU__", "1450", 1)
			var cni map[string]any
			if err := json.Unmarshal([]byte(conf), &cni); err != nil {
				t.Fatalf("cni_network_config, MTU filled in as install-cni does: %v\n%s", err, conf)
			}
			if p := cni["plugins"].([]any)[0]; get(p, "mtu") != 1450.0 || get(p, "ipam.type") != "calico-ipam" {
				t.Errorf("calico plugin = %v", p)
			}

			ds := find(t, objs, "DaemonSet", "calico-node")
			node := container(t, ds, "calico-node")
			e := env(node)
			for k, v := range map[string]any{
				"CALICO_IPV4POOL_CIDR": tt.cidr, "CALICO_IPV4POOL_VXLAN": tt.vxlan, "CALICO_IPV4POOL_IPIP": tt.ipip,
				// The node's address is its InternalIP, the kubelet's node IP.
				"IP": "autodetect", "IP_AUTODETECTION_METHOD": "kubernetes-internal-ip",
			} {
				if e[k] != v {
					t.Errorf("%s = %v, want %v", k, e[k], v)
				}
			}
			ready := fmt.Sprint(get(node, "readinessProbe.exec.command"))
			if strings.Contains(ready, "-bird-ready") != (tt.backend == "bird") {
				t.Errorf("readiness %s with backend %s", ready, tt.backend)
			}
		})
	}
}

// TestCalicoCRDs checks that every resource Calico's RBAC names has its
// CustomResourceDefinition, well formed.
func TestCalicoCRDs(t *testing.T) {
	objs := decode(t, must(Manifest(cluster(t, "cni: calico"))))
	crds := map[string]object{}
	for _, o := range objs {
		if o["kind"] == "CustomResourceDefinition" {
			name := get(o, "metadata.name").(string)
			if name != get(o, "spec.names.plural").(string)+"."+get(o, "spec.group").(string) {
				t.Errorf("CRD %s: name is not plural.group", name)
			}
			if ann, _ := get(o, "metadata.annotations").(map[string]any); strings.HasSuffix(name, ".k8s.io") && ann["api-approved.kubernetes.io"] == nil {
				t.Errorf("CRD %s in a k8s.io group lacks api-approved.kubernetes.io, which the API server requires", name)
			}
			crds[name] = o
		}
	}
	for _, o := range objs {
		if o["kind"] != "ClusterRole" {
			continue
		}
		for _, rule := range get(o, "rules").([]any) {
			groups := fmt.Sprint(get(rule, "apiGroups"))
			if !strings.Contains(groups, "crd.projectcalico.org") && !strings.Contains(groups, "policy.networking.k8s.io") {
				continue
			}
			group := "crd.projectcalico.org"
			if strings.Contains(groups, "policy.networking.k8s.io") {
				group = "policy.networking.k8s.io"
			}
			for _, res := range get(rule, "resources").([]any) {
				name := res.(string) + "." + group
				if res == "globalfelixconfigs" || res == "globalbgpconfigs" {
					continue
				}
				if crds[name] == nil {
					t.Errorf("ClusterRole %s names %s, which has no CRD", get(o, "metadata.name"), name)
				}
			}
		}
	}
	if len(crds) != 24 {
		t.Errorf("%d CRDs, want Calico v3.31's 22 and the 2 admin network policies", len(crds))
	}
}

func TestCalicoRefusesIPv6(t *testing.T) {
	_, err := Manifest(cluster(t, `cni: calico, podSubnet: "10.244.0.0/16,fd00::/56"`))
	if err == nil || !strings.Contains(err.Error(), "use flannel for dual stack") {
		t.Errorf("error %v", err)
	}
}

func TestNoneHasNoManifest(t *testing.T) {
	out, err := Manifest(cluster(t, "cni: none"))
	if err != nil || out != nil || Images(cluster(t, "cni: none")) != nil {
		t.Errorf("cni none: %q, %v", out, err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
