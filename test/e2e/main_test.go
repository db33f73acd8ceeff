package e2e

import (
	"os"
	"syscall"
	"testing"

	"github.com/kprep/kprep/test/lab/instance"
	"github.com/kprep/kprep/test/lab/lab"
)

// TestMain lets the test binary serve the lab's mirror: lab.Up starts the
// mirror server by running this same binary again, which must then become
// the server before any test runs.
func TestMain(m *testing.M) {
	lab.HelperMain()
	os.Exit(m.Run())
}

// holdLabLock waits for the lab tests' lock of the lab instance
// KPREP_LAB_ID names, and holds it until the test and its cleanups (lab
// down among them) have finished. An instance runs one lab at a time, and
// test binaries of other packages (go test ./... runs them side by side)
// may want one too: they wait here rather than fail in lab.Up. Tests on
// other instances have their own lock.
func holdLabLock(t *testing.T) {
	t.Helper()
	id, err := instance.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	path := id.TestsLock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("lab tests' lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lab tests' lock %s: %v", path, err)
	}
	// Registered first, so it runs last: after the lab's down.
	t.Cleanup(func() { f.Close() })
}
