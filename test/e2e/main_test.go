package e2e

import (
	"os"
	"syscall"
	"testing"

	"github.com/kprep/kprep/test/lab/lab"
)

// TestMain lets the test binary serve the lab's mirror: lab.Up starts the
// mirror server by running this same binary again, which must then become
// the server before any test runs.
func TestMain(m *testing.M) {
	lab.HelperMain()
	os.Exit(m.Run())
}

// labTestsLock is held by a test for as long as its lab is up. The machine
// has room for one lab at a time (one bridge, fixed addresses), and test
// binaries of other packages (go test ./... runs them side by side) may
// want one too: they wait here rather than fail in lab.Up.
const labTestsLock = "/run/lock/kprep-lab-tests.lock"

// holdLabLock waits for the lab tests' lock and holds it until the test and
// its cleanups (lab down among them) have finished.
func holdLabLock(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(labTestsLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("lab tests' lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lab tests' lock %s: %v", labTestsLock, err)
	}
	// Registered first, so it runs last: after the lab's down.
	t.Cleanup(func() { f.Close() })
}
