package kubeadmcheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	configutil "k8s.io/kubernetes/cmd/kubeadm/app/util/config"
)

// goldenDir is where kprep's generator keeps its golden files, one per
// Kubernetes version, API endpoint mode and kubeadm role.
const goldenDir = "../../../kube/kubeadmconfig/testdata"

// kubeadmVersion is the kubeadm this module builds (k8s.io/kubernetes in go.mod).
const kubeadmVersion = "v1.34.4"

var kubernetesVersionLine = regexp.MustCompile(`(?m)^kubernetesVersion: v1\.(\d+)\.\d+$`)

// validate runs kubeadm's own `config validate` on data: strict decoding
// (an unknown or misspelt field is an error, in the kubeadm documents and in
// the KubeletConfiguration and KubeProxyConfiguration alike), defaulting,
// conversion and validation.
//
// kubeadm v1.34 refuses to plan a control plane older than v1.33 (its
// version skew check). A golden file for an older Kubernetes, written in
// the v1beta3 API that version's kubeadm reads, is checked with its
// kubernetesVersion set to kubeadm's own: that line is the only one the
// skew check reads, and every other field still goes through v1beta3's
// strict decoding and validation.
func validate(t *testing.T, data []byte) error {
	t.Helper()
	text := kubernetesVersionLine.ReplaceAllString(string(data), "kubernetesVersion: "+kubeadmVersion)
	return configutil.ValidateConfig([]byte(text), false)
}

func goldenFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(goldenDir, "*", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if !strings.Contains(f, string(filepath.Separator)+"clusters"+string(filepath.Separator)) {
			out = append(out, f)
		}
	}
	// 2 versions x (single: init, worker; local HA and external HA: init,
	// control-plane join, worker join).
	if len(out) < 16 {
		t.Fatalf("found %d golden files under %s, want at least 16", len(out), goldenDir)
	}
	return out
}

// TestKubeadmAcceptsEveryGoldenFile is the check the kube issue asks for:
// every configuration kprep's generator writes is one kubeadm takes.
func TestKubeadmAcceptsEveryGoldenFile(t *testing.T) {
	for _, f := range goldenFiles(t) {
		name, _ := filepath.Rel(goldenDir, f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(t, data); err != nil {
				t.Errorf("kubeadm config validate: %v\n%s", err, data)
			}
		})
	}
}

// TestKubeadmRefusesBrokenCopies proves the check can fail: misspelt
// fields (kubeadm's, the kubelet's, kube-proxy's, in v1beta4 and v1beta3)
// and malformed credentials in copies of the golden files are each refused.
func TestKubeadmRefusesBrokenCopies(t *testing.T) {
	read := func(rel string) string {
		data, err := os.ReadFile(filepath.Join(goldenDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	tests := []struct {
		name, file, from, to, want string
	}{
		{"unknown kubeadm field", "1.34.4/local-ha/init.yaml", "certSANs:", "certSAN:", `unknown field "apiServer.certSAN"`},
		{"unknown kubelet field", "1.34.4/single/init.yaml", "cgroupDriver:", "cgroupDrivr:", `unknown field "cgroupDrivr"`},
		{"unknown field in v1beta3", "1.30.14/local-ha/init.yaml", "certSANs:", "certSAN:", `unknown field "apiServer.certSAN"`},
		{"malformed token", "1.34.4/single/join-worker.yaml", `token: "000000.0000000000000000"`, `token: "not-a-token"`, "token"},
		{"unknown kube-proxy field", "1.34.4/external-ha/init.yaml", "maxPerCore:", "maxPerCor:", `unknown field "conntrack.maxPerCor"`},
		{"no CA pin on join", "1.30.14/single/join-worker.yaml", "caCertHashes:\n      - sha256:", "caCertHashez:\n      - sha256:", "caCertHashez"},
		{"bad certificate key", "1.34.4/local-ha/join-control-plane.yaml", `certificateKey: "0000`, `certificateKey: "zz00`, "certificateKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := read(tt.file)
			if !strings.Contains(good, tt.from) {
				t.Fatalf("%s has no %q to break", tt.file, tt.from)
			}
			err := validate(t, []byte(strings.Replace(good, tt.from, tt.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("kubeadm accepted the broken copy, or refused it for another reason: %v (want %q)", err, tt.want)
			}
		})
	}
}
