package config

import (
	"go.yaml.in/yaml/v3"
)

// routes reads the routes list. Every notifier named must exist; a route
// without match (the default route) must be the last one.
func (p *parser) routes(f *field, c *Config, notifiers map[string]*yaml.Node) {
	items, _ := p.items(f)
	for i, it := range items {
		m, ok := p.mapOf(it, "route")
		if !ok {
			continue
		}
		if m.node == nil {
			p.errorf(it, "route must be a mapping with at least notify, got an empty value")
			continue
		}
		r := Route{Line: m.node.Line, Column: m.node.Column}
		matchF := m.get("match")
		if set(matchF) {
			r.Match = p.routeMatch(matchF)
		}
		isDefault := !set(matchF)
		if isDefault && i != len(items)-1 {
			p.errorf(it, "a route without match is the default route and must be the last route")
		}
		nf := m.get("notify")
		if names, n, ok := p.notifierList(nf, notifiers); ok {
			r.Notify = names
			if n == 0 {
				p.errorf(nf.key, "notify must list at least one notifier")
			}
		} else if !set(nf) {
			p.errorf(keyOr(nf, m.pos()), "route needs notify: a list of notifier names")
		}
		if rf := m.get("repeat"); set(rf) {
			if d, ok := p.repeat(rf); ok {
				r.Repeat, r.RepeatSet = d, true
			}
		}
		if cf := m.get("continue"); set(cf) {
			if b, ok := p.boolean(cf); ok {
				if b && isDefault {
					p.errorf(cf.key, "continue does not apply to the default route (a route without match)")
				}
				r.Continue = b
			}
		}
		if nf := m.get("notify_maintenance"); set(nf) {
			if b, ok := p.boolean(nf); ok {
				r.NotifyMaintenance = b
			}
		}
		p.grouping(m, &r)
		m.unknown()
		c.Routes = append(c.Routes, r)
	}
}

// groupByKeys are what a route's group_by may list.
var groupByKeys = []string{"group"}

// grouping reads a route's group_by and group_wait. group_wait (default
// 0s: off) needs group_by.
func (p *parser) grouping(m *mapping, r *Route) {
	gf := m.get("group_by")
	if gs, ok := p.strings(gf); ok {
		seen := map[string]bool{}
		for _, g := range gs {
			switch {
			case !oneOf(g.s, groupByKeys...):
				p.errorf(g.n, "group_by entries must be %s, got %q", choiceList(groupByKeys...), g.s)
			case seen[g.s]:
				p.errorf(g.n, "%q is listed twice in group_by", g.s)
			default:
				seen[g.s] = true
				r.GroupBy = append(r.GroupBy, g.s)
			}
		}
		if len(gs) == 0 {
			p.errorf(gf.key, "group_by must list at least one of %s", choiceList(groupByKeys...))
		}
	}
	wf := m.get("group_wait")
	if d, ok := p.nonNegative(wf); ok {
		if d > 0 && !set(gf) {
			p.errorf(wf.key, "group_wait needs group_by (such as group_by: [group])")
		} else {
			r.GroupWait = d
		}
	}
}

// routeMatch reads a route's match: severity, group and labels, at least
// one of them.
func (p *parser) routeMatch(f *field) RouteMatch {
	var rm RouteMatch
	m, ok := p.mapOf(f.val, "match")
	if !ok {
		return rm
	}
	if sf := m.get("severity"); set(sf) {
		if s, ok := p.str(sf); ok {
			if oneOf(s, "critical", "warning", "info") {
				rm.Severity = s
			} else {
				p.errorf(sf.key, "severity must be critical, warning or info, got %q", s)
			}
		}
	}
	if gf := m.get("group"); set(gf) {
		if s, ok := p.str(gf); ok {
			if s == "" {
				p.errorf(gf.key, "group must not be empty")
			}
			rm.Group = s
		}
	}
	lf := m.get("labels")
	if lm, _, ok := p.strMap(lf); ok {
		rm.Labels = lm
		if len(lm) == 0 {
			p.errorf(lf.key, "labels must name at least one label")
		}
	}
	empty := true
	for _, fl := range m.fields {
		if set(fl) {
			empty = false
		}
	}
	if empty {
		p.errorf(f.key, "match must name severity, group or labels; leave match out for the default route")
	}
	m.unknown()
	return rm
}

// coverage reads the coverage section.
func (p *parser) coverage(f *field, c *Coverage, notifiers map[string]*yaml.Node) {
	m, _ := p.mapOf(valOf(f), "coverage")
	if names, _, ok := p.notifierList(m.get("notify"), notifiers); ok {
		c.Notify = names
	}
	m.unknown()
}

// notifierList reads a list of notifier names (a check's, a route's or
// coverage's notify): each must name a defined notifier, once. It returns
// the valid names, how many entries the list had, and whether it was a
// list.
func (p *parser) notifierList(f *field, notifiers map[string]*yaml.Node) ([]string, int, bool) {
	ns, ok := p.strings(f)
	if !ok {
		return nil, 0, false
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range ns {
		switch {
		case n.s == "":
			p.errorf(n.n, "notify entries must be notifier names, got an empty value")
		case notifiers[n.s] == nil:
			p.errorf(n.n, "unknown notifier %q", n.s)
		case seen[n.s]:
			p.errorf(n.n, "notifier %q is listed twice", n.s)
		default:
			seen[n.s] = true
			out = append(out, n.s)
		}
	}
	return out, len(ns), true
}
