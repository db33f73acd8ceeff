package inventory

import (
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
