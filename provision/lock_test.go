package provision

import (
	"strings"
	"testing"

	"github.com/kprep/kprep/provision/shell"
)

// The version record lives with kprep's other state, which the lock
// session creates (0700) before the probe may write it.
func TestVersionRecordIsInTheStateDir(t *testing.T) {
	if !strings.HasPrefix(shell.VersionRecord, StateDir+"/") {
		t.Errorf("%s is outside %s", shell.VersionRecord, StateDir)
	}
}
