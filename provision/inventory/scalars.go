package inventory

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

func (d *decoder) str(n *yaml.Node, v reflect.Value, path string, quoted bool) {
	if n.Kind != yaml.ScalarNode {
		d.wrongType(n, path, "a string", "")
		return
	}
	if quoted && n.ShortTag() != "!!str" {
		d.src.failed = append(d.src.failed, path)
		d.sink.add(nodePos(n), path, "%s is %s, but dockerd reads log options only as strings and will not start; quote it: %q",
			clip(n.Value), unquotedKind(n.ShortTag()), clip(n.Value))
		return
	}
	// Plain scalars keep their text: "sudo: true" is the string "true" and
	// "swap: off" the string "off", as the fields' own values define them.
	v.SetString(n.Value)
}

// unquotedKind names what YAML made of an unquoted scalar.
func unquotedKind(tag string) string {
	switch tag {
	case "!!bool":
		return "a boolean"
	case "!!int", "!!float":
		return "a number"
	case "!!timestamp":
		return "a date"
	}
	return "not a string"
}

// wholeNumber matches integers too large for YAML's int, which it then
// calls floats; they are reported as out of range instead.
var wholeNumber = regexp.MustCompile(`^[-+]?[0-9]+$`)

func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" && wholeNumber.MatchString(n.Value) {
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: n.Value, Line: n.Line, Column: n.Column}
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			if _, err := strconv.Atoi(strings.TrimSpace(n.Value)); err == nil {
				hint = "; write it without quotes"
			}
		}
		d.wrongType(n, path, "a whole number", hint)
		return
	}
	var i int64
	if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
		d.src.failed = append(d.src.failed, path)
		d.sink.add(nodePos(n), path, "%s is out of range", clip(n.Value))
		return
	}
	v.SetInt(i)
}

func (d *decoder) boolean(n *yaml.Node, v reflect.Value, path string) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		d.wrongType(n, path, "true or false", "")
		return
	}
	v.SetBool(b)
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.wrongType(n, path, "a duration like 10s", "")
		return
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		d.wrongType(n, path, "a duration like 10s", fmt.Sprintf("; add a unit: %ss", n.Value))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.src.failed = append(d.src.failed, path)
		d.sink.add(nodePos(n), path, "%q is not a duration; write it like 10s or 1m30s", clip(n.Value))
		return
	}
	v.SetInt(int64(dur))
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", clip(n.Value))
		case "!!int", "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return clip(n.Value)
		case "!!null":
			return "nothing"
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), clip(n.Value))
	}
	return "nothing"
}

// clip shortens a value quoted back in a message; the file may hold anything.
func clip(s string) string {
	const limit = 60
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
