// Package hostfile is the one home of what every step that keeps a file on
// a host repeats: the header that marks a file as kprep's, the test for it,
// the words for how a file differs, and the snippet that checks a candidate
// file with the program that will read it before the real file is replaced.
package hostfile

import (
	"fmt"
	"strings"

	"github.com/kprep/kprep/provision/shell"
)

// Marker starts every file kprep writes whole, so a later run knows the
// file is its own: it may replace or remove it, and never a file without it.
const Marker = "# Written by kprep"

// Header is a file's first lines: the marker with what the file is for,
// then each further line as a comment.
//
//	Header("the proxy dockerd pulls through.", "Edits are overwritten; set docker.proxy instead.")
func Header(purpose string, more ...string) string {
	var b strings.Builder
	b.WriteString(Marker + ": " + purpose + "\n")
	for _, line := range more {
		b.WriteString("# " + line + "\n")
	}
	return b.String()
}

// Owned reports whether content was written by kprep (starts with Marker).
func Owned(content []byte) bool { return strings.HasPrefix(string(content), Marker) }

// Compare says in words how a file kprep writes whole differs from want,
// given what the probe read (have, and whether it exists); "" when it
// matches.
func Compare(path string, have []byte, exists bool, want []byte) string {
	switch {
	case !exists:
		return path + " is missing"
	case string(have) == string(want):
		return ""
	case !Owned(have):
		return path + " was not written by kprep and differs from what it should hold (it is backed up before kprep replaces it)"
	default:
		return path + " differs from what it should hold"
	}
}

// CheckCandidate returns a command that reads a candidate file on stdin,
// puts it in a temporary file beside path (same folder, so the same
// permissions and file system), runs check with "$f" naming it, removes it
// and exits with check's status: a file a program refuses is never written
// where the program reads it.
//
//	CheckCandidate("/etc/docker/daemon.json", `dockerd --validate --config-file "$f"`)
func CheckCandidate(path, check string) string {
	dir, base := splitPath(path)
	return fmt.Sprintf(`mkdir -p %[1]s && f=$(mktemp %[1]s/.%[2]s.kprep-XXXXXX) && cat >"$f" && %[3]s; rc=$?; rm -f "$f"; exit $rc`,
		shell.Quote(dir), base, check)
}

func splitPath(path string) (dir, base string) {
	i := strings.LastIndex(path, "/")
	if i <= 0 {
		return "/", strings.TrimPrefix(path, "/")
	}
	return path[:i], path[i+1:]
}
