package provision

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// probePart is one snippet of the probe script and the name its output is
// filed under.
type probePart struct {
	name    string
	snippet string
}

// probeScript joins snippets into one POSIX sh script whose output is cut
// into sections by lines that carry a random token, so no file content a
// snippet prints can be mistaken for a marker. Each snippet runs in its own
// subshell with stdin from /dev/null: it cannot leak variables into the
// next one, nor eat the input of the command around the script.
func probeScript(token string, parts []probePart) string {
	var b strings.Builder
	b.WriteString("LC_ALL=C; export LC_ALL\n")
	b.WriteString("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH\n")
	for _, p := range parts {
		fmt.Fprintf(&b, "echo '%s begin %s'\n", token, p.name)
		fmt.Fprintf(&b, "(\n%s\n) </dev/null\n", strings.TrimRight(p.snippet, "\n"))
		fmt.Fprintf(&b, "echo \"%s end %s $?\"\n", token, p.name)
	}
	return b.String()
}

// probeToken returns a fresh section marker.
func probeToken() string {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return "@@kprep-" + hex.EncodeToString(raw[:])
}

// sectionOutput is what one snippet printed and how it exited.
type sectionOutput struct {
	text   string
	status int
}

// splitProbe cuts the script's output back into sections. A section whose
// end marker is missing means the script died inside that snippet.
func splitProbe(token, out string) (map[string]sectionOutput, error) {
	sections := map[string]sectionOutput{}
	var (
		current string
		body    strings.Builder
		open    bool
	)
	for _, line := range strings.SplitAfter(out, "\n") {
		trimmed := strings.TrimRight(line, "\n")
		rest, isMarker := strings.CutPrefix(trimmed, token+" ")
		if !isMarker {
			if open {
				body.WriteString(line)
			}
			continue
		}
		fields := strings.Fields(rest)
		switch {
		case len(fields) == 2 && fields[0] == "begin":
			current, open = fields[1], true
			body.Reset()
		case len(fields) == 3 && fields[0] == "end" && open && fields[1] == current:
			status, err := strconv.Atoi(fields[2])
			if err != nil {
				return nil, fmt.Errorf("probe output: bad end marker %q", trimmed)
			}
			sections[current] = sectionOutput{text: body.String(), status: status}
			open = false
		default:
			return nil, fmt.Errorf("probe output: unexpected marker %q", trimmed)
		}
	}
	if open {
		return sections, fmt.Errorf("probe stopped inside %s", current)
	}
	return sections, nil
}

// probeLabel names a probe script in logs and errors by what it reads.
func probeLabel(parts []probePart) string {
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = p.name
	}
	return "probe " + strings.Join(names, " ")
}
