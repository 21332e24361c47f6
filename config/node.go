package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// parser accumulates the problems found while walking the YAML tree.
type parser struct {
	file   string
	getenv func(string) (string, bool)
	errs   Errors
	budget int // keys and list entries left to visit; see spend
}

// tooLarge aborts the walk when aliases make the document expand far beyond
// its size (a "billion laughs" file). Parse recovers it.
type tooLarge struct{}

// spend accounts for visiting n keys or list entries at node at.
func (p *parser) spend(n int, at *yaml.Node) {
	p.budget -= n
	if p.budget < 0 {
		p.errorf(at, "aliases expand the configuration to too many values")
		panic(tooLarge{})
	}
}

// errorf records a problem at n's position (1:1 when n has none).
func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line = n.Line
		if n.Column > 0 {
			col = n.Column
		}
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

// resolve follows aliases and unwraps documents. It returns nil for a
// missing node.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && i < 16; i++ {
		switch n.Kind {
		case yaml.AliasNode:
			n = n.Alias
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		default:
			return n
		}
	}
	return n
}

// isNull reports whether n (resolved) is absent or a YAML null.
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what n is, for "got ..." in type errors.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "an empty value"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "an unsupported YAML node"
}

// field is one key of a mapping.
type field struct {
	name     string
	key, val *yaml.Node // val is unresolved: an alias points at its use
	used     bool
}

// mapping is the flattened content of a YAML mapping (merge keys applied).
type mapping struct {
	p      *parser
	node   *yaml.Node // resolved mapping node; nil when the value was empty
	what   string     // for "unknown key %q in <what>"
	fields []*field
	by     map[string]*field
}

// mapOf reads the mapping at n. An empty (null) value gives an empty
// mapping. When n is not a mapping the problem is reported, and an empty
// mapping is returned with ok false.
func (p *parser) mapOf(n *yaml.Node, what string) (m *mapping, ok bool) {
	m = &mapping{p: p, what: what, by: map[string]*field{}}
	r := resolve(n)
	if isNull(r) {
		return m, true
	}
	if r.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping, got %s", what, describe(r))
		return m, false
	}
	m.node = r
	p.collect(m, r, map[*yaml.Node]bool{}, 0)
	return m, true
}

// collect adds the keys of mapping n to m. Keys written in n win over keys
// merged in with "<<"; earlier merge sources win over later ones. A key
// written twice in the same mapping is an error.
func (p *parser) collect(m *mapping, n *yaml.Node, seen map[*yaml.Node]bool, depth int) {
	if seen[n] || depth > 32 {
		return
	}
	seen[n] = true
	local := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kr := resolve(k)
		if kr != nil && kr.Kind == yaml.ScalarNode && kr.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if kr == nil || kr.Kind != yaml.ScalarNode {
			p.errorf(k, "keys in %s must be strings, got %s", m.what, describe(kr))
			continue
		}
		name := kr.Value
		if first := local[name]; first != nil {
			p.errorf(k, "duplicate key %q in %s (first at line %d)", name, m.what, first.Line)
			continue
		}
		local[name] = k
		if m.by[name] != nil {
			continue // set by an outer mapping, which wins over a merge
		}
		f := &field{name: name, key: k, val: v}
		p.spend(1, k)
		m.fields = append(m.fields, f)
		m.by[name] = f
	}
	for _, v := range merges {
		vr := resolve(v)
		switch {
		case vr != nil && vr.Kind == yaml.MappingNode:
			p.collect(m, vr, seen, depth+1)
		case vr != nil && vr.Kind == yaml.SequenceNode:
			for _, item := range vr.Content {
				ir := resolve(item)
				if ir == nil || ir.Kind != yaml.MappingNode {
					p.errorf(item, "a merge (<<) list must contain mappings, got %s", describe(ir))
					continue
				}
				p.collect(m, ir, seen, depth+1)
			}
		default:
			p.errorf(v, "a merge (<<) value must be a mapping or a list of mappings, got %s", describe(vr))
		}
	}
}

// get returns the field called name (nil when absent) and marks it used.
func (m *mapping) get(name string) *field {
	f := m.by[name]
	if f != nil {
		f.used = true
	}
	return f
}

// pos is where problems with the mapping as a whole (a missing key) are
// reported.
func (m *mapping) pos() *yaml.Node { return m.node }

// unknown reports every key that was not read.
func (m *mapping) unknown() {
	for _, f := range m.fields {
		if !f.used {
			m.p.errorf(f.key, "unknown key %q in %s", f.name, m.what)
			f.used = true
		}
	}
}

// set reports whether the field is present with a non-empty value.
func set(f *field) bool { return f != nil && !isNull(f.val) }

// expand replaces ${NAME} in s. "$${" stands for a literal "${". Problems
// are reported at n; ok is false when there was one. subst reports whether
// any variable was substituted.
func (p *parser) expand(n *yaml.Node, s string) (out string, subst, ok bool) {
	if !strings.Contains(s, "${") {
		return s, false, true
	}
	ok = true
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				p.errorf(n, "unterminated ${ in value (write $${ for a literal ${)")
				return "", subst, false
			}
			name := s[i+2 : i+2+end]
			i += 2 + end + 1
			if !validEnvName(name) {
				p.errorf(n, "invalid environment variable name %q in ${...}", name)
				ok = false
				continue
			}
			v, found := p.getenv(name)
			if !found {
				p.errorf(n, "environment variable %s is not set", name)
				ok = false
				continue
			}
			b.WriteString(v)
			subst = true
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), subst, ok
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// scalarNode returns the scalar at v with ${VAR} expanded. When a variable
// was substituted, the result is a fresh node whose type is resolved as if
// the text had been written unquoted. ok is false for an empty value (no
// error) or a problem (reported).
func (p *parser) scalarNode(v *yaml.Node, key string, want string) (*yaml.Node, bool) {
	r := resolve(v)
	if isNull(r) {
		return nil, false
	}
	if r.Kind != yaml.ScalarNode {
		p.errorf(v, "%s must be %s, got %s", key, want, describe(r))
		return nil, false
	}
	s, subst, ok := p.expand(v, r.Value)
	if !ok {
		return nil, false
	}
	if subst {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Line: v.Line, Column: v.Column}, true
	}
	return r, true
}

// str reads a string value; any scalar is accepted as its text.
func (p *parser) str(f *field) (string, bool) {
	if f == nil {
		return "", false
	}
	return p.strNode(f.val, f.name)
}

func (p *parser) strNode(v *yaml.Node, key string) (string, bool) {
	r := resolve(v)
	if isNull(r) {
		return "", false
	}
	if r.Kind != yaml.ScalarNode {
		p.errorf(v, "%s must be a string, got %s", key, describe(r))
		return "", false
	}
	s, _, ok := p.expand(v, r.Value)
	return s, ok
}

// integer reads an integer value.
func (p *parser) integer(f *field) (int, bool) {
	if f == nil {
		return 0, false
	}
	n, ok := p.scalarNode(f.val, f.name, "an integer")
	if !ok {
		return 0, false
	}
	var v int64
	if n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		p.errorf(f.val, "%s must be an integer, got %s", f.name, describe(n))
		return 0, false
	}
	if v > math.MaxInt32 || v < math.MinInt32 {
		p.errorf(f.val, "%s is out of range", f.name)
		return 0, false
	}
	return int(v), true
}

// number reads an integer or floating-point value.
func (p *parser) number(f *field) (float64, bool) {
	if f == nil {
		return 0, false
	}
	n, ok := p.scalarNode(f.val, f.name, "a number")
	if !ok {
		return 0, false
	}
	var v float64
	if t := n.ShortTag(); (t != "!!int" && t != "!!float") || n.Decode(&v) != nil {
		p.errorf(f.val, "%s must be a number, got %s", f.name, describe(n))
		return 0, false
	}
	return v, true
}

// boolean reads true or false.
func (p *parser) boolean(f *field) (bool, bool) {
	if f == nil {
		return false, false
	}
	n, ok := p.scalarNode(f.val, f.name, "a boolean")
	if !ok {
		return false, false
	}
	var v bool
	if n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		p.errorf(f.val, "%s must be true or false, got %s", f.name, describe(n))
		return false, false
	}
	return v, true
}

// duration reads a Go duration such as 30s.
func (p *parser) duration(f *field) (time.Duration, bool) {
	s, ok := p.str(f)
	if !ok {
		return 0, false
	}
	d, err := ParseDuration(strings.TrimSpace(s))
	if err != nil {
		p.errorf(f.val, "%s must be a duration such as 30s, 2m, 1h or 7d, got %s", f.name, describe(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}))
		return 0, false
	}
	return d, true
}

// items returns the entries of a list value (unresolved). An empty value
// gives no entries.
func (p *parser) items(f *field) ([]*yaml.Node, bool) {
	if f == nil {
		return nil, false
	}
	r := resolve(f.val)
	if isNull(r) {
		return nil, false
	}
	if r.Kind != yaml.SequenceNode {
		p.errorf(f.val, "%s must be a list, got %s", f.name, describe(r))
		return nil, false
	}
	p.spend(len(r.Content), f.val)
	return r.Content, true
}

// strItem is one string in a list, with the node to report problems at.
type strItem struct {
	s string
	n *yaml.Node
}

// strings reads a list of strings. Empty entries are kept as "" for the
// caller to judge; entries with problems are dropped.
func (p *parser) strings(f *field) ([]strItem, bool) {
	items, ok := p.items(f)
	if !ok {
		return nil, false
	}
	out := make([]strItem, 0, len(items))
	for _, it := range items {
		r := resolve(it)
		if isNull(r) {
			out = append(out, strItem{"", it})
			continue
		}
		if r.Kind != yaml.ScalarNode {
			p.errorf(it, "each entry of %s must be a string, got %s", f.name, describe(r))
			continue
		}
		s, _, ok := p.expand(it, r.Value)
		if ok {
			out = append(out, strItem{s, it})
		}
	}
	return out, true
}

// strMap reads a mapping of strings to strings (headers, labels).
func (p *parser) strMap(f *field) (map[string]string, []strItem, bool) {
	if f == nil || isNull(f.val) {
		return nil, nil, false
	}
	m, ok := p.mapOf(f.val, f.name)
	if !ok {
		return nil, nil, false
	}
	out := make(map[string]string, len(m.fields))
	var keys []strItem
	for _, e := range m.fields {
		e.used = true
		v, _ := p.strNode(e.val, fmt.Sprintf("%s %q", f.name, e.name))
		out[e.name] = v
		keys = append(keys, strItem{e.name, e.key})
	}
	return out, keys, true
}
