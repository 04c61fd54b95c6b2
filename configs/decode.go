package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a config file, at a position.
type Error struct {
	File    string
	Line    int
	Column  int
	Message string
}

func (e Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Message)
}

// Errors is every problem found in a config file.
type Errors []Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

type pos struct{ line, col int }

// decoder walks a YAML node tree into Go values strictly, collecting every
// error with its position instead of stopping at the first one, and
// remembering where each value was written for later validation messages.
type decoder struct {
	file string
	errs Errors
	pos  map[string]pos // "checks[0].rules[1].warn" → position of its value
	keys map[string]pos // same paths → position of the key
	// nonPositive holds the durations written as 0 or less, by path: where
	// a duration must be positive, validation rejects them (a 0 left to the
	// defaults would be replaced in silence).
	nonPositive map[string]Duration
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, Error{File: d.file, Line: n.Line, Column: n.Column, Message: fmt.Sprintf(format, args...)})
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[Duration]()
)

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.pos[path] = pos{n.Line, n.Column}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if reflect.PointerTo(v.Type()).Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.errorf(n, "%s: %v", path, err)
		} else if v.Type() == durationType && v.Int() <= 0 {
			d.nonPositive[path] = Duration(v.Int())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		if n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errorf(n, "%s: expected a mapping of keys, got %s", path, describe(n))
			return
		}
		d.mapping(n, v, path)
	case reflect.Slice:
		if n.Tag == "!!null" {
			v.SetZero()
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, "%s: expected a list, got %s", path, describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Tag == "!!null" {
			v.SetZero()
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errorf(n, "%s: expected a mapping, got %s", path, describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			sub := join(path, k.Value)
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.errorf(k, "%s: duplicate key", sub)
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, sub)
			m.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
		v.Set(m)
	default:
		d.scalar(n, v, path)
	}
}

// mapping decodes a mapping node onto the struct v. A struct that holds a
// kind's block (a check's `disk:`) decodes a key named after a registered
// kind of its family into that kind's own options type.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	fields := structFields(v.Type())
	holder, _ := v.Addr().Interface().(blockHolder)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name := k.Value
		sub := join(path, name)
		if seen[name] {
			d.errorf(k, "%s: duplicate key", sub)
			continue
		}
		seen[name] = true
		idx, ok := fields[name]
		if !ok && holder != nil {
			if o := holder.family().NewOptions(name); o != nil {
				d.keys[sub] = pos{k.Line, k.Column}
				d.decode(val, reflect.ValueOf(o).Elem(), sub)
				holder.addBlock(name, o)
				continue
			}
		}
		if !ok {
			known := sortedKeys(fields)
			if holder != nil {
				known = append(known, holder.family().Names()...)
				slices.Sort(known)
			}
			d.errorf(k, "unknown key %q in %s (known keys: %s)", name, orTop(path), strings.Join(known, ", "))
			continue
		}
		d.keys[sub] = pos{k.Line, k.Column}
		d.decode(val, v.Field(idx), sub)
	}
}

// blockHolder is a struct with a kind's block beside its common keys.
type blockHolder interface {
	family() *Family
	addBlock(name string, o Options)
}

// nodeDecoder is a config type that decodes its own node, with the
// decoder's positions and error collection.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

var nodeDecoderType = reflect.TypeFor[nodeDecoder]()

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: expected %s, got %s", path, kindName(v.Kind()), describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag == "!!bool" {
			d.errorf(n, "%s: expected a string, got boolean %s (quote it if meant as text)", path, n.Value)
			return
		}
		if n.Tag == "!!null" {
			v.SetString("")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Tag != "!!bool" || err != nil {
			d.errorf(n, "%s: expected true or false, got %q", path, n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Tag != "!!int" || err != nil {
			d.errorf(n, "%s: expected an integer, got %q", path, n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64, reflect.Float32:
		if n.Tag != "!!int" && n.Tag != "!!float" {
			d.errorf(n, "%s: expected a number, got %q", path, n.Value)
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			d.errorf(n, "%s: expected a number, got %q", path, n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n, "%s: unsupported type %s", path, v.Type())
	}
}

func structFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		m[name] = i
	}
	return m
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return k.String()
}

// parseInto decodes data onto cfg (which may already hold defaults).
func parseInto(file string, data []byte, cfg *Config) (*decoder, error) {
	d := &decoder{file: file, pos: map[string]pos{}, keys: map[string]pos{}, nonPositive: map[string]Duration{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return d, nil // empty file: all defaults
		}
		return d, Errors{syntaxError(file, err)}
	}
	if len(doc.Content) == 0 {
		return d, nil
	}
	d.decode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "")
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "only one YAML document is allowed")
	}
	if len(d.errs) > 0 {
		return d, d.errs
	}
	return d, nil
}

// syntaxError turns yaml.v3's "yaml: line N: msg" into a positioned Error.
func syntaxError(file string, err error) Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line, col := 1, 1
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ":"); ok {
			if l, err := strconv.Atoi(num); err == nil {
				line, msg = l, strings.TrimSpace(after)
			}
		}
	}
	return Error{File: file, Line: line, Column: col, Message: "YAML syntax: " + msg}
}
