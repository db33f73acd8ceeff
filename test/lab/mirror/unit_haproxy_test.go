package mirror

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// machinePayload makes a payload root holding a copy of a dynamically
// linked program of this machine as usr/sbin/haproxy and the libraries it
// needs, laid out as a merged-/usr Debian package set has them: each
// library under its full name with its soname a link to it, the loader
// only under /usr. It skips where the machine is not amd64 Debian.
func machinePayload(t *testing.T, leaveOut string) string {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("needs an amd64 machine's libraries")
	}
	prog := "/usr/bin/true"
	needed, interp, err := elfNeeds(prog)
	if err != nil || interp == "" || len(needed) == 0 {
		t.Skipf("%s is not a dynamically linked program here (%v)", prog, err)
	}
	root := t.TempDir()
	cp := func(src, dst string) {
		t.Helper()
		data, err := os.ReadFile(src)
		if err != nil {
			t.Skipf("machine library: %v", err)
		}
		if err := writeFile(filepath.Join(root, dst), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cp(prog, "usr/sbin/haproxy")
	libdir := "usr/lib/x86_64-linux-gnu"
	for _, lib := range needed {
		if lib == leaveOut {
			continue
		}
		src, err := filepath.EvalSymlinks(filepath.Join("/lib/x86_64-linux-gnu", lib))
		if err != nil {
			t.Skipf("machine library %s: %v", lib, err)
		}
		cp(src, filepath.Join(libdir, lib+".1.2.3"))
		if err := os.Symlink(lib+".1.2.3", filepath.Join(root, libdir, lib)); err != nil {
			t.Fatal(err)
		}
	}
	src, err := filepath.EvalSymlinks(interp)
	if err != nil {
		t.Skip(err)
	}
	cp(src, filepath.Join(libdir, filepath.Base(interp)))
	if err := os.MkdirAll(filepath.Join(root, "usr", filepath.Dir(interp)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("../lib/x86_64-linux-gnu", filepath.Base(interp)), filepath.Join(root, "usr", interp)); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestHaproxyLayerHasTheProgramItsLibrariesAndLoader(t *testing.T) {
	a := arch{Go: "amd64", Deb: "amd64"}
	root := machinePayload(t, "")
	layer, err := haproxyLayer(&debianPayload{Root: root, Versions: map[string]string{"haproxy": "3.0.11-1"}}, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkLayerLibs(layer, a); err != nil {
		t.Errorf("checkLayerLibs: %v", err)
	}
	names := map[string]layerFile{}
	for _, f := range layer.Files {
		names[f.Name] = f
	}
	for _, want := range []string{"usr/local/sbin/haproxy", "lib64/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/libc.so.6", "etc/passwd", "var/lib/haproxy"} {
		if _, ok := names[want]; !ok {
			t.Errorf("the layer lacks %s: %v", want, layer.Files)
		}
	}
	// Libraries are files under their soname, not links into nothing.
	if f := names["usr/lib/x86_64-linux-gnu/libc.so.6"]; f.Link != "" || !strings.HasSuffix(f.Src, ".1.2.3") {
		t.Errorf("libc.so.6: %+v", f)
	}
	if !strings.Contains(names["etc/passwd"].Data, "haproxy:x:99:99:") || !strings.Contains(layer.Note, "3.0.11-1") {
		t.Errorf("passwd %q, note %q", names["etc/passwd"].Data, layer.Note)
	}
	// Under the Docker Hub name the inventory's default proxy image names.
	in := fakeInputs(t, a)
	in.haproxy = layer
	img := haproxyImage(in)
	if img.Repo != "library/haproxy" || len(img.Tags) != 1 || img.Tags[0] != "3.2.3-alpine" || img.Config.User != "haproxy" {
		t.Errorf("image %s:%v as %q", img.Repo, img.Tags, img.Config.User)
	}
}

func TestHaproxyLayerRefusesAMissingLibrary(t *testing.T) {
	root := machinePayload(t, "libc.so.6")
	_, err := haproxyLayer(&debianPayload{Root: root}, arch{Go: "amd64", Deb: "amd64"})
	if err == nil || !strings.Contains(err.Error(), "haproxy needs libc.so.6") {
		t.Fatalf("err = %v", err)
	}
}
