package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// parseDocument reads the file's single YAML document into a node tree,
// keeping every value's line and column. A syntax error comes back as one
// positioned *Error.
func parseDocument(file string, data []byte) (*yaml.Node, *Error) {
	docs, err := parseYAML(data, 2)
	if err != nil {
		return nil, syntaxError(file, data, err)
	}
	if len(docs) > 1 {
		return nil, &Error{File: file, Line: docs[1].Line, Column: docs[1].Column,
			Msg: "the file holds more than one YAML document; kprep reads one Cluster per file"}
	}
	var root *yaml.Node
	if len(docs) == 1 && len(docs[0].Content) > 0 {
		root = resolve(docs[0].Content[0])
	}
	if root == nil || root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, &Error{File: file, Line: 1, Column: 1,
			Msg: "the file is empty; it should hold a Cluster (apiVersion: kprep/v1, kind: Cluster, hosts: ...)"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Column: root.Column,
			Msg: fmt.Sprintf("expected a mapping (apiVersion: kprep/v1, kind: Cluster, ...), got %s", describe(root))}
	}
	return root, nil
}

// parseYAML parses up to limit documents. yaml.v3 is not known to panic on
// any input, but a loader that must never panic turns one into an error.
func parseYAML(data []byte, limit int) (docs []*yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: the YAML parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for len(docs) < limit {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return docs, err
		}
		docs = append(docs, &doc)
	}
	return docs, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError places a yaml.v3 syntax error. yaml.v3 often reports the line
// where the enclosing block began, not the line at fault (an indentation
// mistake at line 6 is "line 3"), and some errors carry no line at all, so
// the place is worked out again from the text.
func syntaxError(file string, data []byte, err error) *Error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	e := &Error{File: file, Line: line, Msg: "YAML syntax: " + msg}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if at, ok := findBadByte(data); ok && line == 0 {
		e.Line, e.Column = at.line, at.column
	} else if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok {
		e.Line, e.Column = findAlias(lines, strings.TrimSuffix(name, "' referenced"))
	} else if l := firstFailingLine(lines, msg); l > 0 {
		e.Line = l
	}
	if e.Line > 0 && e.Line <= len(lines) && e.Column == 0 {
		text := string(lines[e.Line-1])
		e.Column = len(text) - len(strings.TrimLeft(text, " ")) + 1
		if strings.HasPrefix(strings.TrimLeft(text, " "), "\t") {
			e.Msg += "; YAML does not allow tabs for indentation, use spaces"
		}
	}
	if hint, ok := syntaxHints[msg]; ok {
		e.Msg += "; " + hint
	}
	return e
}

// syntaxHints says in plain words what yaml.v3's parser messages usually mean
// in a hand-written file.
var syntaxHints = map[string]string{
	"did not find expected key":                      "check this line's indentation against the keys above it",
	"did not find expected '-' indicator":            "check this line's indentation: list items and their keys must line up",
	"mapping values are not allowed in this context": `check the indentation, or quote a value that contains ": "`,
	"did not find expected ',' or ']'":               "a [ list is not closed",
	"did not find expected ',' or '}'":               "a { mapping is not closed",
	"found unexpected end of stream":                 "a quoted string is not closed",
}

// firstFailingLine finds the first line whose inclusion makes the file fail
// with the same message: parsing a prefix of the file ends at that line, so
// the error there is the one the whole file has. It binary-searches, taking
// log2(lines) parses.
func firstFailingLine(lines [][]byte, msg string) int {
	failsSame := func(n int) bool {
		_, err := parseYAML(bytes.Join(lines[:n], nil), 1<<30)
		if err == nil {
			return false
		}
		got := err.Error()
		if m := yamlLine.FindStringSubmatch(got); m != nil {
			got = m[2]
		} else {
			got = strings.TrimPrefix(got, "yaml: ")
		}
		return got == msg
	}
	lo, hi := 1, len(lines)
	if hi == 0 || !failsSame(hi) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if failsSame(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// findBadByte finds the first character YAML does not allow in a file
// (control characters, invalid UTF-8), which yaml.v3 reports without a place.
func findBadByte(data []byte) (pos, bool) {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if !yamlPrintable(r, size) {
			return pos{line, col}, true
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return pos{}, false
}

// yamlPrintable is the YAML 1.2 c-printable set (plus the BOM).
func yamlPrintable(r rune, size int) bool {
	switch {
	case r == utf8.RuneError && size == 1:
		return false
	case r == '\t' || r == '\n' || r == '\r':
		return true
	case r < 0x20 || r == 0x7f:
		return false
	case r >= 0x80 && r < 0xa0 && r != 0x85:
		return false
	case r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
		return false
	}
	return true
}

// findAlias finds the first use of *name, for "unknown anchor" errors.
func findAlias(lines [][]byte, name string) (line, column int) {
	alias := regexp.MustCompile(`\*` + regexp.QuoteMeta(name) + `(?:[\s,\]}]|$)`)
	for i, l := range lines {
		if loc := alias.FindIndex(l); loc != nil {
			return i + 1, utf8.RuneCount(l[:loc[0]]) + 1
		}
	}
	return 0, 0
}
