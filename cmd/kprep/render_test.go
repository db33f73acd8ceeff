package main

import (
	"os"
	"strings"
	"testing"
)

func TestRenderKubeadm(t *testing.T) {
	inv := writeInventory(t, goodInventory+"  controlPlaneEndpoint: lb.example.com:6443\n")
	code, out, errOut := run(t, "render", "kubeadm", "-i", inv, "--host", "cp1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"kind: InitConfiguration", "kind: ClusterConfiguration", "controlPlaneEndpoint: lb.example.com:6443", "advertiseAddress: 127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("cp1's config lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, "render", "kubeadm", "-i", inv, "--host", "w1")
	if code != 0 || !strings.Contains(out, "kind: JoinConfiguration") || !strings.Contains(out, "# placeholder:") {
		t.Errorf("w1: exit %d:\n%s", code, out)
	}
}

// TestRenderKubeadmNeedsNoSecrets checks that render, which connects to
// nothing, works without the password variable the inventory names.
func TestRenderKubeadmNeedsNoSecrets(t *testing.T) {
	os.Unsetenv("KPREP_RENDER_TEST_UNSET")
	inv := writeInventory(t, strings.Replace(goodInventory, "ssh: {connectTimeout: 1s}", "ssh: {passwordEnv: KPREP_RENDER_TEST_UNSET}", 1))
	if code, _, errOut := run(t, "render", "kubeadm", "-i", inv, "--host", "cp1"); code != 0 {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestRenderKubeadmErrors(t *testing.T) {
	inv := writeInventory(t, goodInventory)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--host", "w2"}, `no host named "w2" (did you mean "w1"?)`},
		{[]string{"--host", "cp9"}, `no host named "cp9"`},
		{nil, `required flag(s) "host" not set`},
	}
	for _, tt := range tests {
		code, _, errOut := run(t, append([]string{"render", "kubeadm", "-i", inv}, tt.args...)...)
		if code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, errOut, tt.want)
		}
	}
	named := writeInventory(t, strings.Replace(goodInventory, "address: 127.0.0.2", "address: localhost", 1))
	code, _, errOut := run(t, "render", "kubeadm", "-i", named, "--host", "w1")
	if code != 1 || !strings.Contains(errOut, `host w1: address "localhost" is a name`) {
		t.Errorf("host named by DNS: exit %d, %q", code, errOut)
	}
}
