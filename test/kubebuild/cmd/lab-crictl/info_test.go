package main

import (
	"reflect"
	"strings"
	"testing"
)

// A config as containerd 1.6 reports it in the CRI verbose status.
const containerd16Config = `{
  "containerd": {
    "snapshotter": "overlayfs",
    "defaultRuntimeName": "runc",
    "runtimes": {
      "runc": {"runtimeType": "io.containerd.runc.v2", "options": {"BinaryName": "", "SystemdCgroup": true}},
      "kata": {"runtimeType": "io.containerd.kata.v2", "options": {}}
    }
  },
  "sandboxImage": "192.168.77.1:5000/google_containers/pause:3.10"
}`

// A config shaped like containerd 2.x's, with the sandbox image under pinnedImages.
const containerd2Config = `{
  "containerd": {"runtimes": {"runc": {"options": {"SystemdCgroup": false}}}},
  "pinnedImages": {"sandbox": "registry.k8s.io/pause:3.10"}
}`

func TestSummarizeConfig(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want configSummary
	}{
		{"containerd 1.6", containerd16Config, configSummary{
			SystemdCgroup: map[string]bool{"runc": true},
			SandboxImage:  "192.168.77.1:5000/google_containers/pause:3.10",
		}},
		{"containerd 2.x", containerd2Config, configSummary{
			SystemdCgroup: map[string]bool{"runc": false},
			SandboxImage:  "registry.k8s.io/pause:3.10",
		}},
		{"no runtimes", `{}`, configSummary{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := summarizeConfig([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("summarizeConfig = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSummarizeConfigRejectsNonJSON(t *testing.T) {
	if _, err := summarizeConfig([]byte("disabled_plugins = [\"cri\"]")); err == nil {
		t.Fatal("summarizeConfig accepted TOML text; want an error")
	}
}

func TestRunRejectsUnknownCommand(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"-r", "/nonexistent.sock", "frobnicate"}, &out, &errOut); code != 2 {
		t.Fatalf("exit code %d, want 2; stderr %q", code, errOut.String())
	}
}
