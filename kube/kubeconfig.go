package kube

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

// AdminKubeconfig reads the cluster admin's kubeconfig (admin.conf) from
// the first control plane through ex and returns it with the server an
// operator's own machine can reach (see OperatorServer).
func AdminKubeconfig(ctx context.Context, ex provision.Executor, c *inventory.Cluster) ([]byte, error) {
	first := c.FirstControlPlane()
	res, err := ex.Run(ctx, transport.Command{Line: "cat " + adminConf, Label: "read " + adminConf})
	if err != nil {
		return nil, fmt.Errorf("read %s on %s (has apply brought the cluster up?): %w", adminConf, first.Name, err)
	}
	return withServer(res.Stdout, OperatorServer(c))
}

// OperatorServer is the API server URL a kubeconfig for the operator's
// machine names. Behind a load balancer it is the endpoint, as kubeadm
// wrote it. In local mode the endpoint's name resolves only on the
// cluster's hosts, so it is the first control plane's address and the
// API servers' port: the API server certificate names every control
// plane's address, so TLS checks pass as they do through the name.
// "" keeps the kubeconfig's server.
func OperatorServer(c *inventory.Cluster) string {
	if !c.Kubernetes.LocalMode() {
		return ""
	}
	port := strconv.Itoa(c.Kubernetes.LocalEndpoint.Port)
	return "https://" + net.JoinHostPort(c.FirstControlPlane().Address, port)
}

// withServer sets every cluster's server in a kubeconfig to server ("":
// unchanged), keeping everything else as it was written.
func withServer(kubeconfig []byte, server string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(kubeconfig, &doc); err != nil {
		return nil, fmt.Errorf("%s is not YAML: %w", adminConf, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s is not a kubeconfig", adminConf)
	}
	clusters := mapValue(doc.Content[0], "clusters")
	if clusters == nil || clusters.Kind != yaml.SequenceNode || len(clusters.Content) == 0 {
		return nil, fmt.Errorf("%s names no cluster", adminConf)
	}
	if server == "" {
		return kubeconfig, nil
	}
	for _, entry := range clusters.Content {
		cluster := mapValue(entry, "cluster")
		s := mapValue(cluster, "server")
		if s == nil {
			return nil, fmt.Errorf("%s has a cluster without a server", adminConf)
		}
		s.Value = server
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// mapValue returns the value of key in a YAML mapping node, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
