package inventory

import (
	"fmt"
	"reflect"
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
func (d *decoder) wrongType(n *yaml.Node, path, want, hint string) {
	d.src.failed = append(d.src.failed, path)
	d.sink.add(nodePos(n), path, "expected %s, got %s%s", want, describe(n), hint)
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, path, "a mapping", "")
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
		d.wrongType(n, path, "a list", hint)
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
		d.wrongType(n, path, "a mapping", "")
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
