package config

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
)

// regex reads a regular expression (body_regex, body_not_regex, a header's
// pattern), reporting one that does not compile at its key. An empty
// string gives nil, ok true.
func (p *parser) regex(f *field, what string) (*regexp.Regexp, bool) {
	if f == nil {
		return nil, false
	}
	s, ok := p.strNode(f.val, what)
	if !ok || s == "" {
		return nil, ok
	}
	re, err := regexp.Compile(s)
	if err != nil {
		p.errorf(f.key, "%s %q does not compile: %s", what, s, regexProblem(s, err))
		return nil, false
	}
	return re, true
}

func regexProblem(s string, err error) string {
	msg := err.Error()
	var se *syntax.Error
	if errors.As(err, &se) {
		msg = string(se.Code)
		if se.Expr != "" && se.Expr != s {
			msg += " in " + strconv.Quote(se.Expr)
		}
	}
	return msg
}

// jsonOps are the operators of expect.json entries.
var jsonOps = []string{OpEq, OpNe, OpLt, OpLe, OpGt, OpGe, OpExists, OpContains}

// jsonAssertions reads expect.json: a list of {path, op, value}.
func (p *parser) jsonAssertions(f *field) []JSONAssertion {
	items, ok := p.items(f)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.errorf(f.key, "json must list at least one assertion")
	}
	var out []JSONAssertion
	for _, it := range items {
		m, ok := p.mapOf(it, "json assertion")
		if !ok {
			continue
		}
		if m.node == nil {
			p.errorf(it, "json assertion must be a mapping with path, op and value, got an empty value")
			continue
		}
		if a, ok := p.jsonAssertion(m); ok {
			out = append(out, a)
		}
		m.unknown()
	}
	return out
}

func (p *parser) jsonAssertion(m *mapping) (JSONAssertion, bool) {
	var a JSONAssertion
	good := true
	pf := m.get("path")
	if s, ok := p.str(pf); ok {
		keys, err := ParseJSONPath(s)
		if err != nil {
			p.errorf(pf.key, "path %q %v", s, err)
			good = false
		}
		a.Path, a.Keys = strings.TrimSpace(s), keys
	} else {
		if !set(pf) {
			p.errorf(keyOr(pf, m.pos()), "json assertion needs a path such as $.status")
		}
		good = false
	}
	vf := m.get("value")
	hasValue := set(vf)
	of := m.get("op")
	switch s, ok := p.str(of); {
	case ok && oneOf(strings.TrimSpace(s), jsonOps...):
		a.Op = strings.TrimSpace(s)
	case ok:
		p.errorf(of.key, "op must be %s, got %q", choiceList(jsonOps...), s)
		return a, false
	case !set(of) && hasValue:
		a.Op = OpEq
	case !set(of):
		a.Op = OpExists
	default:
		return a, false
	}
	if a.Op == OpExists {
		a.Value = true
		if hasValue {
			b, ok := p.boolean(vf)
			if !ok {
				return a, false
			}
			a.Value = b
		}
		return a, good
	}
	if !hasValue {
		p.errorf(keyOr(of, m.pos()), "json assertion with op %s needs a value", a.Op)
		return a, false
	}
	n, ok := p.scalarNode(vf.val, "value", "a string, number or boolean")
	if !ok {
		return a, false
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		var v float64
		if err := n.Decode(&v); err != nil {
			p.errorf(vf.val, "value %s is not a valid number", describe(n))
			return a, false
		}
		a.Value = v
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			p.errorf(vf.val, "value %s is not a valid boolean", describe(n))
			return a, false
		}
		a.Value = v
	default:
		a.Value = n.Value
	}
	if oneOf(a.Op, OpLt, OpLe, OpGt, OpGe) {
		if _, isNum := a.Value.(float64); !isNum {
			p.errorf(vf.val, "value must be a number for %s, got %s", a.Op, describe(n))
			return a, false
		}
	}
	return a, good
}

// ParseJSONPath splits a JSON path into member names and array indices
// (indices as decimal strings). The path is $ (the whole document)
// followed by .member, ['member'] (or ["member"]) and [N] steps:
// $.data.items[0].name, $['a.b']. The leading $ and the dot after it may
// be left out: data.items[0].name.
func ParseJSONPath(path string) ([]string, error) {
	s := strings.TrimSpace(path)
	if s == "" {
		return nil, errors.New("is empty")
	}
	if s[0] == '$' {
		s = s[1:]
	} else if s[0] != '[' {
		s = "." + s
	}
	keys := []string{}
	for s != "" {
		switch s[0] {
		case '.':
			s = s[1:]
			i := strings.IndexAny(s, ".[")
			if i < 0 {
				i = len(s)
			}
			k := s[:i]
			if k == "" {
				return nil, errors.New("has an empty member name (write ['name'] for unusual names)")
			}
			if strings.ContainsAny(k, "]'\" \t") {
				return nil, fmt.Errorf("has an invalid member name %q (write ['name'] for unusual names)", k)
			}
			keys = append(keys, k)
			s = s[i:]
		case '[':
			s = s[1:]
			if s != "" && (s[0] == '\'' || s[0] == '"') {
				q := s[0]
				end := strings.IndexByte(s[1:], q)
				if end < 0 || !strings.HasPrefix(s[1+end+1:], "]") {
					return nil, errors.New("has an unterminated ['...']")
				}
				keys = append(keys, s[1:1+end])
				s = s[1+end+2:]
				continue
			}
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, errors.New("has an unterminated [")
			}
			n, err := strconv.ParseUint(s[:end], 10, 31)
			if err != nil {
				return nil, fmt.Errorf("has an invalid index [%s] (want [0], [1], ... or ['name'])", s[:end])
			}
			keys = append(keys, strconv.FormatUint(n, 10))
			s = s[end+1:]
		default:
			return nil, fmt.Errorf("is not a path such as $.status or $.items[0].name (unexpected %q)", s[:1])
		}
	}
	return keys, nil
}

// FormatJSONValue renders an assertion's value as JSON shows it: strings
// quoted, numbers without a trailing .0.
func FormatJSONValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// headerAssertions reads expect.headers: header name → regular expression
// one of the header's values must match ("" : the header must be present).
func (p *parser) headerAssertions(f *field) []HeaderAssertion {
	m, ok := p.mapOf(f.val, "expect.headers")
	if !ok {
		return nil
	}
	var out []HeaderAssertion
	seen := map[string]bool{}
	for _, e := range m.fields {
		e.used = true
		name := http.CanonicalHeaderKey(e.name)
		switch {
		case !isToken(e.name):
			p.errorf(e.key, "header name %q is not valid", e.name)
			continue
		case seen[name]:
			p.errorf(e.key, "header %q is listed twice", name)
			continue
		}
		seen[name] = true
		if isNull(e.val) {
			out = append(out, HeaderAssertion{Name: name})
			continue
		}
		if re, ok := p.regex(e, fmt.Sprintf("header %q pattern", name)); ok {
			out = append(out, HeaderAssertion{Name: name, Regex: re})
		}
	}
	slices.SortFunc(out, func(a, b HeaderAssertion) int { return strings.Compare(a.Name, b.Name) })
	return out
}
