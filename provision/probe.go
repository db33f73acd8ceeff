package provision

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kprep/kprep/provision/shell"
)

// probePart is one snippet of the probe script and the name its output is
// filed under.
type probePart struct {
	name    string
	snippet string
}

// probeScript joins snippets into one POSIX sh script whose output is cut
// into sections by lines that carry a random token, so no file content a
// snippet prints can be mistaken for a marker. Each snippet runs in the
// subshell of a command substitution (one fork, no more) with stdin from
// /dev/null: it cannot leak variables into the
// next one, nor eat the input of the command around the script. Its stdout
// goes straight out (fd 3); its stderr is kept and, when the snippet exits
// non-zero, printed after its end marker (base64, the last 4 KiB), so a
// failed probe is reported with its own error message.
func probeScript(token string, parts []probePart) string {
	var b strings.Builder
	// Sized once: the script is built per host, and growing it step by
	// step was most of the engine's own memory per host.
	size := 160
	for _, p := range parts {
		size += len(p.snippet) + 2*len(p.name) + 4*len(token) + 200
	}
	b.Grow(size)
	b.WriteString("LC_ALL=C; export LC_ALL\n")
	b.WriteString("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH\n")
	b.WriteString("exec 3>&1\n")
	// What the snippets ask of systemd, the package databases and the
	// file system is asked once for all of them (shell.PlanBatch).
	snippets := make([]string, len(parts))
	for i, p := range parts {
		snippets[i] = p.snippet
	}
	batch := shell.PlanBatch(snippets...)
	b.WriteString(batch.Prelude())
	if files := batch.FilesSnippet(); files != "" {
		parts = append([]probePart{{name: batchSection, snippet: files}}, parts...)
	}
	for _, p := range parts {
		fmt.Fprintf(&b, "echo '%s begin %s'\n", token, p.name)
		fmt.Fprintf(&b, "kprep_err=$( {\n%s\n} </dev/null 2>&1 1>&3 ); kprep_rc=$?\n", strings.TrimRight(p.snippet, "\n"))
		fmt.Fprintf(&b, "echo \"%s end %s $kprep_rc\"\n", token, p.name)
		fmt.Fprintf(&b, "[ \"$kprep_rc\" = 0 ] || [ -z \"$kprep_err\" ] || printf '%s stderr %s %%s\\n' \"$(printf '%%s' \"$kprep_err\" | tail -c 4096 | base64 -w0)\"\n", token, p.name)
	}
	return b.String()
}

// ProbeScript is the script a run sends a host to probe the named
// snippets (the facts' and the steps'), for tools that measure its cost.
func ProbeScript(names, snippets []string) string {
	parts := make([]probePart, len(names))
	for i := range names {
		parts[i] = probePart{name: names[i], snippet: snippets[i]}
	}
	return probeScript(probeToken(), parts)
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
	// stderr is what a snippet that exited non-zero wrote to stderr.
	stderr string
}

// check fails a section whose snippet exited non-zero, with its stderr:
// state from a probe that did not finish is never diffed.
func (s sectionOutput) check() error {
	if s.status == 0 {
		return nil
	}
	msg := fmt.Sprintf("the probe exited %d", s.status)
	if e := strings.TrimSpace(s.stderr); e != "" {
		msg += ": " + e
	}
	return errors.New(msg)
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
		case len(fields) == 3 && fields[0] == "stderr" && !open:
			sec, ok := sections[fields[1]]
			raw, err := base64.StdEncoding.DecodeString(fields[2])
			if !ok || err != nil {
				return nil, fmt.Errorf("probe output: bad stderr marker for %s", fields[1])
			}
			sec.stderr = string(raw)
			sections[fields[1]] = sec
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
	return sections, resolveBatch(sections)
}

// batchSection is the section of the files every snippet reads, read in
// one go; no step is named so.
const batchSection = "kprep:batched-files"

// resolveBatch puts the batched files into the sections that referred to
// them, as if each snippet had read its own.
func resolveBatch(sections map[string]sectionOutput) error {
	out, ok := sections[batchSection]
	if !ok {
		return nil
	}
	delete(sections, batchSection)
	if err := out.check(); err != nil {
		return fmt.Errorf("reading files: %w", err)
	}
	files, err := shell.ParseBatchedFiles(out.text)
	if err != nil {
		return err
	}
	for name, sec := range sections {
		sec.text = files.Resolve(sec.text)
		sections[name] = sec
	}
	return nil
}

// probeLabel names a probe script in logs and errors by what it reads.
func probeLabel(parts []probePart) string {
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = p.name
	}
	return "probe " + strings.Join(names, " ")
}
