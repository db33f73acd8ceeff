package inventory

import (
	"slices"
	"strings"
	"testing"
)

// TestLocalEndpointNameMustBeItsOwn checks that the endpoint's name cannot
// be a host's: kprep's /etc/hosts block would give one name two addresses.
func TestLocalEndpointNameMustBeItsOwn(t *testing.T) {
	for _, clash := range []string{"cp1", "CP1.example"} {
		yaml := headerNoKube + "hosts: [{name: cp1, address: cp1.example, roles: [control-plane]}]\n" +
			"kubernetes: {version: 1.34.4, localEndpoint: {name: " + clash + "}}\n"
		_, err := Parse("c.yaml", []byte(yaml), testOptions(t))
		want := "kubernetes.localEndpoint.name: \"" + clash + "\" is also hosts[0]; the endpoint needs a name of its own"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("name %s: error %v, want %q", clash, err, want)
		}
	}
}

func TestEvictionHard(t *testing.T) {
	base := headerNoKube + "hosts: [{name: cp1, address: 10.0.0.1, roles: [control-plane]}]\n"
	ok := base + "kubernetes: {version: 1.34.4, kubelet: {evictionHard: {nodefs.available: 1%, memory.available: 100Mi, imagefs.available: '0.5%'}}}\n"
	c, err := Parse("c.yaml", []byte(ok), testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Kubernetes.Kubelet.EvictionHard["memory.available"]; got != "100Mi" {
		t.Errorf("memory.available = %q", got)
	}
	bad := base + "kubernetes: {version: 1.34.4, kubelet: {evictionHard: {disk.available: 1%, nodefs.available: lots}}}\n"
	_, err = Parse("c.yaml", []byte(bad), testOptions(t))
	for _, want := range []string{
		`kubernetes.kubelet.evictionHard["disk.available"]: "disk.available" is not an eviction signal`,
		`kubernetes.kubelet.evictionHard["nodefs.available"]: "lots" is not a threshold`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

func TestPodAndServiceRanges(t *testing.T) {
	k := Kubernetes{PodSubnet: "10.244.0.0/16, fd00:10:244::/56", ServiceSubnet: "10.96.0.0/12"}
	if got := k.PodRanges(); !slices.Equal(got, []string{"10.244.0.0/16", "fd00:10:244::/56"}) {
		t.Errorf("PodRanges: %q", got)
	}
	if got := k.ServiceRanges(); !slices.Equal(got, []string{"10.96.0.0/12"}) {
		t.Errorf("ServiceRanges: %q", got)
	}
	if got := (&Kubernetes{}).PodRanges(); got != nil {
		t.Errorf("empty podSubnet: %q", got)
	}
}
