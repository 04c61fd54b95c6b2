package configs

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// ActionPolicies are the policies by action name. Each block holds the keys
// every action has and, beside them, the action's own settings.
type ActionPolicies map[string]ActionPolicy

// decodeNode splits each action's block between the common keys of
// ActionPolicy, the action's settings and its params.
func (ap *ActionPolicies) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Tag == "!!null" {
		*ap = nil
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping, got %s", path, describe(n))
		return
	}
	m := ActionPolicies{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		sub := join(path, k.Value)
		if _, dup := m[k.Value]; dup {
			d.errorf(k, "%s: duplicate key", sub)
			continue
		}
		d.pos[sub] = pos{val.Line, val.Column}
		kind, known := ActionKinds.Lookup(k.Value)
		if !known {
			m[k.Value] = ActionPolicy{} // reported by validate, with the known actions
			continue
		}
		p := ActionPolicy{Settings: kind.Options()}
		d.actionBlock(val, &p, kind, k.Value, sub)
		m[k.Value] = p
	}
	*ap = m
}

// actionBlock decodes one action's block onto p.
func (d *decoder) actionBlock(n *yaml.Node, p *ActionPolicy, kind Kind, name, path string) {
	if n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping of keys, got %s", path, describe(n))
		return
	}
	common := structFields(reflect.TypeFor[ActionPolicy]())
	own := structFields(reflect.TypeOf(p.Settings).Elem())
	mine := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	theirs := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		switch _, isCommon := common[k.Value]; {
		case k.Value == "params":
			d.keys[join(path, "params")] = pos{k.Line, k.Column}
			p.Params = d.params(val, kind, name, join(path, "params"))
		case isCommon:
			mine.Content = append(mine.Content, k, val)
		default:
			if _, ok := own[k.Value]; !ok {
				known := append(append(sortedKeys(common), sortedKeys(own)...), "params")
				slices.Sort(known)
				d.errorf(k, "unknown key %q in %s (known keys: %s)", k.Value, path, strings.Join(known, ", "))
				continue
			}
			theirs.Content = append(theirs.Content, k, val)
		}
	}
	d.decode(mine, reflect.ValueOf(p).Elem(), path)
	d.decode(theirs, reflect.ValueOf(p.Settings).Elem(), path)
}

// params decodes a `params:` block of the action kind; nil when empty.
func (d *decoder) params(n *yaml.Node, kind Kind, name, path string) Params {
	if n.Tag == "!!null" || (n.Kind == yaml.MappingNode && len(n.Content) == 0) {
		d.pos[path] = pos{n.Line, n.Column}
		return nil
	}
	if kind.Params == nil {
		d.errorf(n, "remediation action %s takes no params", name)
		return nil
	}
	p := kind.Params()
	d.decode(n, reflect.ValueOf(p).Elem(), path)
	return p
}

// decodeNode decodes a rule; its params are of the type of its action.
func (r *RemediationRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	d.pos[path] = pos{n.Line, n.Column}
	if n.Kind != yaml.MappingNode {
		d.mapping(n, reflect.ValueOf(r).Elem(), path) // reports what it is
		return
	}
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	var params, paramsKey *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Value == "params" && params == nil {
			paramsKey, params = k, n.Content[i+1]
			continue
		}
		rest.Content = append(rest.Content, n.Content[i], n.Content[i+1])
	}
	d.mapping(rest, reflect.ValueOf(r).Elem(), path)
	if params == nil {
		return
	}
	sub := join(path, "params")
	d.keys[sub] = pos{paramsKey.Line, paramsKey.Column}
	if kind, ok := ActionKinds.Lookup(r.Action); ok {
		r.Params = d.params(params, kind, r.Action, sub)
	} else {
		d.pos[sub] = pos{params.Line, params.Column} // the unknown action is reported by validate
	}
}

// DecodeParams decodes the params of action from YAML (a `params:` block on
// its own, as yaml.Marshal writes a params value), strictly: unknown keys
// and bad values are errors. It does not check them against the action's
// settings: that is Params.Validate and Params.Complete. Nil when empty.
func DecodeParams(action string, data []byte) (Params, error) {
	kind, ok := ActionKinds.Lookup(action)
	if !ok {
		return nil, fmt.Errorf("unknown remediation action %q", action)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("params of %s: %w", action, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	d := &decoder{file: "params", pos: map[string]pos{}, keys: map[string]pos{}, nonPositive: map[string]Duration{}}
	p := d.params(doc.Content[0], kind, action, "params")
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return p, nil
}
