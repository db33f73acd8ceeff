package preflight

import (
	"fmt"
	"strings"
)

// IgnoredCheck is one of kubeadm's own preflight checks that kprep's init
// or join passes to --ignore-preflight-errors, and why.
type IgnoredCheck struct {
	// Name is kubeadm's name for the check, as --ignore-preflight-errors takes it.
	Name string
	// Reason says why the check's error is wrong for hosts kprep prepares.
	Reason string
}

// KubeadmIgnores is the whole list kprep's kubeadm init and join ignore.
// It is empty: a real kubeadm 1.34.4 init and join on the lab's hosts (CentOS
// 7 and Rocky 9 personalities) passed preflight with no error ignored. The
// checks peers ignore, and why kprep needs none of them:
//   - SystemVerification (sealos; kernels under 4.19 with 1.32+): kprep's own
//     preflight refuses that pair before kubeadm runs.
//   - DirAvailable--etc-kubernetes-manifests (kubespray, whose proxy manifest
//     is there first): kprep's local-mode proxy is written after the join,
//     the name resolving to a running control plane until then.
//   - FileAvailable--*, Port-10250 on a retry (kubespray): kprep resets a
//     half-joined host before it joins again.
//   - ImagePull, FileExisting-crictl (kubekey): kprep's sandbox image is the
//     one kubeadm expects, cri-tools comes with kubeadm's package, and
//     kubeadm 1.34's preflight no longer looks for crictl.
//   - Swap: kprep turns swap off, and its preflight refuses hostprep.swap keep.
//
// An entry added here needs a reason a reviewer accepts; "all" is refused
// by IgnoreFlag.
var KubeadmIgnores = []IgnoredCheck{}

// IgnoreFlag returns the --ignore-preflight-errors flag for checks, or ""
// when there are none. It refuses "all" and an entry without a reason.
func IgnoreFlag(checks []IgnoredCheck) (string, error) {
	names := make([]string, 0, len(checks))
	for _, c := range checks {
		switch {
		case strings.EqualFold(c.Name, "all"):
			return "", fmt.Errorf("kubeadm preflight: kprep never ignores all checks")
		case c.Name == "" || strings.ContainsAny(c.Name, ", \t\n"):
			return "", fmt.Errorf("kubeadm preflight: %q is not a check name", c.Name)
		case strings.TrimSpace(c.Reason) == "":
			return "", fmt.Errorf("kubeadm preflight: ignoring %s needs a reason", c.Name)
		}
		names = append(names, c.Name)
	}
	if len(names) == 0 {
		return "", nil
	}
	return "--ignore-preflight-errors=" + strings.Join(names, ","), nil
}
