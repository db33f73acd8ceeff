package inventory

import (
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/go-version"
)

// dnsLabel is an RFC 1123 label in lowercase, the form Kubernetes requires
// of node names.
const dnsLabel = `[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?`

var nodeName = regexp.MustCompile(`^` + dnsLabel + `(\.` + dnsLabel + `)*$`)

// isNodeName reports whether s can be both a hostname and a Kubernetes node
// name: a lowercase RFC 1123 subdomain.
func isNodeName(s string) bool { return len(s) <= 253 && nodeName.MatchString(s) }

// nodeNameFor suggests a valid node name for s (CP_1 -> cp-1), or "".
func nodeNameFor(s string) string {
	fixed := strings.ReplaceAll(strings.ToLower(s), "_", "-")
	if fixed != s && isNodeName(fixed) {
		return fixed
	}
	return ""
}

// NodeName returns s as a host and Kubernetes node name: s itself when it is
// one, else s lowercased with '_' as '-' (Vagrant's CP_1 becomes cp-1); ok
// is false when neither is valid.
func NodeName(s string) (name string, ok bool) {
	if isNodeName(s) {
		return s, true
	}
	if fixed := nodeNameFor(s); fixed != "" {
		return fixed, true
	}
	return "", false
}

// isHostName reports whether s is a DNS host name. A name whose last label
// is all digits is not one (RFC 3696), which is what catches a mistyped IP
// address such as 192.168.56.
func isHostName(s string) bool {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if !isNodeName(s) {
		return false
	}
	last := s[strings.LastIndexByte(s, '.')+1:]
	return strings.Trim(last, "0123456789") != ""
}

// addressKey is the form two addresses are compared in: the canonical IP, or
// the lowercase host name; ok is false when s is neither.
func addressKey(s string) (key string, ok bool) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap().String(), true
	}
	if isHostName(s) {
		return strings.ToLower(strings.TrimSuffix(s, ".")), true
	}
	return "", false
}

// IsAddress reports whether s is an IP address or a DNS host name, as the
// inventory's address fields take them.
func IsAddress(s string) bool { return isAddress(s) }

func isAddress(s string) bool {
	_, ok := addressKey(s)
	return ok
}

// isEndpoint reports whether s is host or host:port (IPv6 with a port in
// brackets), as kubeadm's controlPlaneEndpoint takes it.
func isEndpoint(s string) bool {
	if isAddress(s) {
		return true
	}
	host, port, err := net.SplitHostPort(s)
	return err == nil && isAddress(host) && validPort(port)
}

func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// isHTTPURL reports whether s is an absolute http or https URL with a host.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// isVersion reports whether s parses as a version with at least parts
// numbers before any pre-release or build suffix (1.34.4 has three).
func isVersion(s string, parts int) bool {
	if _, err := version.NewVersion(s); err != nil {
		return false
	}
	core := strings.TrimPrefix(s, "v")
	core, _, _ = strings.Cut(core, "+")
	core, _, _ = strings.Cut(core, "-")
	return strings.Count(core, ".")+1 >= parts
}

var sysctlKey = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./-]*$`)
