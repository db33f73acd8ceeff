package inventory

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Aliases let a small file name the same big node many times over (the
// "billion laughs"). The values decoded may be at most this many times the
// nodes written, plus some slack; real files, where a few anchors stand for
// ssh blocks, stay far below it.
const (
	aliasExpansion = 10
	aliasSlack     = 10000
)

// source remembers, for a loaded file, where each field path stood and which
// values were written at all, so that defaults can tell "port: 0" from no
// port and errors can point at the line.
type source struct {
	pos map[string]pos
	set map[string]bool
	// failed lists the paths whose value had the wrong type; the semantic
	// checks stay quiet about them (and their parents and children) rather
	// than pile a second, confusing error on the first.
	failed []string
}

// isSet reports whether the file gave the path a non-null value.
func (s *source) isSet(path string) bool { return s != nil && s.set[path] }

// at returns where to report a problem with path: the value itself when the
// file has it, else the key of the nearest enclosing field that it has.
func (s *source) at(path string) pos {
	if s == nil {
		return pos{}
	}
	for p := path; ; p = parentPath(p) {
		if at, ok := s.pos[p]; ok {
			return at
		}
		if p == "" {
			return pos{}
		}
	}
}

// parentPath drops the last ".field" or "[index]" from a field path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// related reports whether one path is the other or lies inside it.
func related(a, b string) bool {
	inside := func(child, parent string) bool {
		return parent == "" || strings.HasPrefix(child, parent+".") || strings.HasPrefix(child, parent+"[")
	}
	return a == b || inside(a, b) || inside(b, a)
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// fieldPath appends a mapping key to a path: hosts[0].address, but
// hostprep.sysctl["net.ipv4.ip_forward"] where a dot would mislead.
func fieldPath(parent, key string) string {
	if !plainKey.MatchString(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

// decoder fills a Go value from a yaml.Node tree strictly, reporting every
// problem with its place instead of stopping at the first.
type decoder struct {
	sink     *errorSink
	src      *source
	steps    int
	maxSteps int
	merging  map[*yaml.Node]bool
}

func decodeCluster(root *yaml.Node, c *Cluster, sink *errorSink) *source {
	d := &decoder{
		sink:    sink,
		src:     &source{pos: map[string]pos{}, set: map[string]bool{}},
		merging: map[*yaml.Node]bool{},
	}
	d.maxSteps = aliasSlack + aliasExpansion*countNodes(root)
	d.value(root, reflect.ValueOf(c).Elem(), "", nodePos(root), false)
	return d.src
}

// countNodes counts the nodes written in the file, not following aliases.
func countNodes(n *yaml.Node) int {
	count := 1
	for _, c := range n.Content {
		count += countNodes(c)
	}
	return count
}

func nodePos(n *yaml.Node) pos { return pos{n.Line, n.Column} }

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

var durationType = reflect.TypeFor[time.Duration]()

// value decodes n into v. at is where the value was introduced (its key, or
// the list item); collections are reported there, scalars at themselves.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, at pos, quoted bool) {
	if d.sink.full {
		return
	}
	d.steps++
	if d.steps > d.maxSteps {
		d.sink.add(at, path, "the file's aliases expand to more than %d values; kprep stops reading here", d.maxSteps)
		d.sink.full = true // nothing after this is worth checking
		return
	}
	written := nodePos(n) // an alias is reported where it is used, not where its anchor is
	n = resolve(n)
	if n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		d.src.pos[path] = at
		return
	}
	if n.Kind == yaml.ScalarNode {
		at = written
	}
	d.src.pos[path] = at
	d.src.set[path] = true
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path, at, quoted)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.list(n, v, path)
	case reflect.Map:
		d.dict(n, v, path, quoted)
	case reflect.String:
		d.str(n, v, path, quoted)
	case reflect.Int, reflect.Int64:
		d.integer(n, v, path)
	case reflect.Bool:
		d.boolean(n, v, path)
	default:
		panic(fmt.Sprintf("inventory: no decoder for %s at %s", v.Type(), path))
	}
}

// wrongType reports a value of the wrong kind and marks its path failed.
func (d *decoder) wrongType(n *yaml.Node, at pos, path, want, hint string) {
	d.src.failed = append(d.src.failed, path)
	d.sink.add(at, path, "expected %s, got %s%s", want, describe(n), hint)
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, nodePos(n), path, "a mapping", "")
		return
	}
	fields := fieldsOf(v.Type())
	d.mapping(n, path, func(k, val *yaml.Node) {
		f, ok := fields.byName[k.Value]
		if !ok && path == "" && strings.HasPrefix(k.Value, "x-") {
			return // an extension field, a place to keep YAML anchors, as in Compose files
		}
		if !ok {
			hint, meant := unknownFieldHint(k.Value, fields.names)
			d.sink.add(nodePos(k), fieldPath(path, k.Value), "unknown field%s", hint)
			if meant != "" {
				// The value was meant for that field: do not also call it missing.
				d.src.failed = append(d.src.failed, fieldPath(path, meant))
			}
			return
		}
		d.value(val, v.Field(f.index), fieldPath(path, k.Value), nodePos(k), f.quoted)
	})
}

func (d *decoder) list(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf("; write a list, like [%s]", clip(n.Value))
		}
		d.wrongType(n, nodePos(n), path, "a list", hint)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.value(item, s.Index(i), indexPath(path, i), nodePos(item), false)
	}
	v.Set(s)
}

func (d *decoder) dict(n *yaml.Node, v reflect.Value, path string, quoted bool) {
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, nodePos(n), path, "a mapping", "")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	d.mapping(n, path, func(k, val *yaml.Node) {
		elem := reflect.New(v.Type().Elem()).Elem()
		p := fieldPath(path, k.Value)
		if quoted && resolve(val) != nil && resolve(val).ShortTag() == "!!null" {
			d.src.failed = append(d.src.failed, p)
			d.sink.add(nodePos(val), p, "needs a value, written as a quoted string")
			return
		}
		d.value(val, elem, p, nodePos(k), quoted)
		v.SetMapIndex(reflect.ValueOf(k.Value), elem)
	})
}

// mapping calls each for every key of n, after the keys brought in by YAML
// merge keys (<<), so that the mapping's own keys win as YAML says.
func (d *decoder) mapping(n *yaml.Node, path string, each func(k, v *yaml.Node)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			d.merge(n.Content[i+1], path, each)
		}
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || isMergeKey(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.sink.add(nodePos(n.Content[i]), path, "a key must be a plain word, not %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.sink.add(nodePos(n.Content[i]), fieldPath(path, k.Value), "given twice (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = n.Content[i]
		each(k, val)
	}
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

// merge applies the mapping(s) named by a << key. In a list of mappings the
// first wins, so they are applied last to first.
func (d *decoder) merge(n *yaml.Node, path string, each func(k, v *yaml.Node)) {
	n = resolve(n)
	switch {
	case n == nil:
	case n.Kind == yaml.MappingNode:
		if d.merging[n] {
			d.sink.add(nodePos(n), path, "a << merge includes itself")
			return
		}
		d.merging[n] = true
		d.mapping(n, path, each)
		delete(d.merging, n)
	case n.Kind == yaml.SequenceNode:
		for i := len(n.Content) - 1; i >= 0; i-- {
			if item := resolve(n.Content[i]); item != nil && item.Kind != yaml.MappingNode {
				d.sink.add(nodePos(n.Content[i]), path, "<< takes mappings, got %s", describe(item))
				continue
			}
			d.merge(n.Content[i], path, each)
		}
	default:
		d.sink.add(nodePos(n), path, "<< takes a mapping or a list of mappings, got %s", describe(n))
	}
}

func (d *decoder) str(n *yaml.Node, v reflect.Value, path string, quoted bool) {
	if n.Kind != yaml.ScalarNode {
		d.wrongType(n, nodePos(n), path, "a string", "")
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
		d.wrongType(n, nodePos(n), path, "a whole number", hint)
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
		d.wrongType(n, nodePos(n), path, "true or false", "")
		return
	}
	v.SetBool(b)
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.wrongType(n, nodePos(n), path, "a duration like 10s", "")
		return
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		d.wrongType(n, nodePos(n), path, "a duration like 10s", fmt.Sprintf("; add a unit: %ss", n.Value))
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

type structField struct {
	index  int
	quoted bool
}

type structFields struct {
	byName map[string]structField
	names  []string
}

// fieldsOf lists the YAML names of a struct's fields, in declaration order.
func fieldsOf(t reflect.Type) structFields {
	fs := structFields{byName: map[string]structField{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fs.byName[name] = structField{index: i, quoted: f.Tag.Get("kprep") == "quoted"}
		fs.names = append(fs.names, name)
	}
	return fs
}

// fieldAliases maps words people reach for (from ssh_config, Ansible, other
// tools) to our field names, for hints misspelling distance would miss.
var fieldAliases = map[string]string{
	"ip":           "address",
	"host":         "address",
	"hostname":     "name",
	"username":     "user",
	"key":          "privateKeyFile",
	"keyFile":      "privateKeyFile",
	"identityFile": "privateKeyFile",
	"sshKey":       "privateKeyFile",
	"timeout":      "connectTimeout",
	"mirrors":      "registryMirrors",
	"jump":         "bastion",
	"jumpHost":     "bastion",
	"podCIDR":      "podSubnet",
	"clusterCIDR":  "podSubnet",
	"serviceCIDR":  "serviceSubnet",
}

// unknownFieldHint says what an unknown key probably meant, and which field
// that is ("" when there is no good guess).
func unknownFieldHint(key string, known []string) (hint, meant string) {
	if strings.EqualFold(key, "password") || strings.EqualFold(key, "sudoPassword") {
		if slices.Contains(known, "passwordEnv") {
			return "; kprep never reads a password from the file: export it in an environment variable and give that variable's name in passwordEnv or sudoPasswordEnv", ""
		}
	}
	meant = fieldAliases[key]
	if !slices.Contains(known, meant) {
		meant = suggest(key, known)
	}
	if meant != "" {
		return fmt.Sprintf("; did you mean %q?", meant), meant
	}
	return "; known fields are " + strings.Join(known, ", "), ""
}
