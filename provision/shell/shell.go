// Package shell helps steps write probe snippets and read their output
// back: quoting, file dumps that survive any content, and key=value records.
package shell

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
)

// Quote quotes s for a POSIX shell.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes every argument and joins them into one command line.
func Join(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// File returns a snippet that prints the file at path as one record:
// "file LABEL <base64>" when it is readable, "file LABEL -" when it does
// not exist. base64 keeps any content, newlines and all, on one line.
//
// In the engine's probe script the file is read with all the others in
// one go (see batch.go); run alone, the snippet reads it itself.
func File(label, path string) string {
	direct := fileDirect(label, path)
	if !batchedFile(label, path) {
		return direct
	}
	return fmt.Sprintf("kprep_file %s %s 2>/dev/null || { %s; }", label, path, direct)
}

func fileDirect(label, path string) string {
	p := Quote(path)
	return fmt.Sprintf(`if [ -e %[2]s ]; then printf 'file %[1]s %%s\n' "$(base64 -w0 < %[2]s)"; else echo 'file %[1]s -'; fi`, label, p)
}

// Value returns a snippet that prints "KEY=<output of cmd>" on one line,
// with stderr dropped, newlines folded to spaces and trailing spaces cut.
// The folding is done by the shell itself: a probe prints dozens of
// values, and a tr and a sed for each were a third of a converged host's
// probe time.
func Value(key, cmd string) string {
	return fmt.Sprintf(`kprep_v=$( { %s ; } 2>/dev/null ); while :; do case $kprep_v in *'
'*) kprep_v="${kprep_v%%%%'
'*} ${kprep_v#*'
'}" ;; *) break ;; esac; done; printf '%s=%%s\n' "${kprep_v%%"${kprep_v##*[! ]}"}"`, cmd, key)
}

// Status returns a snippet that prints "KEY=<exit status of cmd>", with
// the command's output dropped.
func Status(key, cmd string) string {
	return fmt.Sprintf(`( %s ) >/dev/null 2>&1; echo "%s=$?"`, cmd, key)
}

// State is a probe section read back: key=value lines and file records.
type State struct {
	Values map[string]string
	files  map[string][]byte
	seen   map[string]bool
	// Lines are the lines that are neither values nor files, in order.
	Lines []string
}

// Parse reads a probe section made of File, Value and Status records and
// free lines.
func Parse(text string) (State, error) {
	st := State{Values: map[string]string{}, files: map[string][]byte{}, seen: map[string]bool{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "file "); ok {
			label, data, _ := strings.Cut(rest, " ")
			st.seen[label] = true
			if data == "-" {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				return st, fmt.Errorf("probe: file %s: %v", label, err)
			}
			st.files[label] = raw
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && isKey(k) {
			st.Values[k] = v
			continue
		}
		st.Lines = append(st.Lines, line)
	}
	return st, sc.Err()
}

// File returns the content of a file record and whether the file exists.
func (s State) File(label string) ([]byte, bool) {
	b, ok := s.files[label]
	return b, ok
}

// FileLabels lists the labels of the files that exist, sorted.
func (s State) FileLabels() []string {
	out := make([]string, 0, len(s.files))
	for label := range s.files {
		out = append(out, label)
	}
	sort.Strings(out)
	return out
}

// HasFile reports whether the probe printed a record for label at all.
func (s State) HasFile(label string) bool { return s.seen[label] }

func isKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}
