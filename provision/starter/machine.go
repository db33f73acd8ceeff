package starter

import (
	"fmt"
	"strings"

	"github.com/kprep/kprep/provision/inventory"
)

// Machine is one host of the starter inventory.
type Machine struct {
	// Name becomes the hostname and the Kubernetes node name.
	Name string
	// Address is the cluster address: node IP and, for a control plane, the
	// API endpoint.
	Address string
	// Login is how kprep reaches the machine over SSH.
	Login Login
	// Notes are comment lines written above the host: where its addresses
	// came from, what was left out.
	Notes []string
}

// Login is where and as whom kprep logs in. Empty fields are left to the
// inventory's defaults (port 22, user root, the SSH agent).
type Login struct {
	// Address is where kprep connects when that is not the cluster address
	// (a Vagrant machine's forwarded port on 127.0.0.1); "" means Address.
	Address string
	Port    int
	User    string
	KeyFile string
}

// nodeName turns a machine's name as a tool gives it (Vagrant allows
// "CP_1") into a host and node name (cp-1), or says why it cannot.
func nodeName(name string) (string, error) {
	fixed, ok := inventory.NodeName(strings.TrimSpace(name))
	if !ok {
		return "", fmt.Errorf("%q cannot be a host name: use lowercase letters, digits, '-' and '.'", name)
	}
	return fixed, nil
}
