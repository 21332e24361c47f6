package config

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// dependsRef is one check's depends_on list, kept until every check has
// been read.
type dependsRef struct {
	check   string
	key     *yaml.Node // the depends_on key: where a cycle is reported
	entries []strItem
}

// dependencies checks the depends_on lists of all checks and fills
// Check.DependsOn: every entry must name a defined check, once; an entry
// that does not is reported at the entry. The dependencies must not form a
// cycle (a check depending on itself included); a cycle is reported once,
// at the depends_on key of the check whose list closes it when the checks
// are visited in file order.
func (p *parser) dependencies(c *Config, deps []dependsRef, names map[string]*yaml.Node) {
	graph := make(map[string][]string, len(deps))
	keys := make(map[string]*yaml.Node, len(deps))
	for _, d := range deps {
		var out []string
		seen := map[string]bool{}
		for _, e := range d.entries {
			switch {
			case e.s == "":
				p.errorf(e.n, "depends_on entries must be check names, got an empty value")
			case names[e.s] == nil:
				p.errorf(e.n, "unknown check %q in depends_on", e.s)
			case seen[e.s]:
				p.errorf(e.n, "check %q is listed twice in depends_on", e.s)
			default:
				seen[e.s] = true
				out = append(out, e.s)
			}
		}
		graph[d.check] = out
		keys[d.check] = d.key
		if ck := c.CheckByName(d.check); ck != nil {
			ck.DependsOn = out
		}
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = visiting
		path = append(path, name)
		for _, to := range graph[name] {
			switch state[to] {
			case visiting:
				start := 0
				for i, n := range path {
					if n == to {
						start = i
					}
				}
				cycle := append(append([]string{}, path[start:]...), to)
				p.errorf(keys[name], "depends_on cycle: %s", strings.Join(cycle, " -> "))
			case unvisited:
				visit(to)
			}
		}
		path = path[:len(path)-1]
		state[name] = done
	}
	for _, d := range deps {
		if state[d.check] == unvisited {
			visit(d.check)
		}
	}
}
