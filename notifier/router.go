package notifier

import (
	"slices"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// Router decides which notifiers hear about a check, from the check's own
// notify list and the config's routes (Alertmanager-like):
//
//   - routes are tried in order; a route matches a check when every key of
//     its match (severity, group, labels) matches;
//   - the first matching route wins, unless it sets continue: then later
//     routes are tried too;
//   - a check's notifiers are its own notify list plus those of every
//     matching route, in that order, without duplicates;
//   - the default route (the last route, without match) applies only to a
//     check that names no notifiers itself and matches no route.
//
// Repeat gives the reminder interval of one of a check's notifiers: the
// repeat of the first matching route that lists the notifier and sets one,
// else the notifier's own repeat.
//
// A Router is immutable and safe for concurrent use.
type Router struct {
	routes   []config.Route
	repeat   map[string]time.Duration // a notifier's own repeat
	coverage []string
}

// NewRouter builds the router of a (validated) configuration.
func NewRouter(cfg *config.Config) *Router {
	r := &Router{repeat: map[string]time.Duration{}}
	if cfg == nil {
		return r
	}
	r.routes = slices.Clone(cfg.Routes)
	for _, n := range cfg.Notifiers {
		r.repeat[n.Name] = n.Repeat
	}
	r.coverage = slices.Clone(cfg.Coverage.Notify)
	return r
}

// matched returns the routes that apply to c, in order.
func (r *Router) matched(c *config.Check) []*config.Route {
	var out []*config.Route
	for _, i := range r.matchedIndex(c) {
		out = append(out, &r.routes[i])
	}
	return out
}

// matchedIndex returns the indexes of the routes that apply to c, in
// order.
func (r *Router) matchedIndex(c *config.Check) []int {
	var out []int
	def := -1
	for i := range r.routes {
		rt := &r.routes[i]
		if rt.Match.IsDefault() {
			def = i
			continue
		}
		if !rt.Match.Matches(c) {
			continue
		}
		out = append(out, i)
		if !rt.Continue {
			break
		}
	}
	if len(out) == 0 && len(c.Notify) == 0 && def >= 0 {
		out = append(out, def)
	}
	return out
}

// Notifiers returns the names of the notifiers that get c's incidents: its
// own notify list, then the notifiers of the matching routes (or of the
// default route), each once.
func (r *Router) Notifiers(c *config.Check) []string {
	out := slices.Clone(c.Notify)
	for _, rt := range r.matched(c) {
		for _, n := range rt.Notify {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// Repeat is the reminder interval of notifier for c's open incidents (0:
// no reminders). It is 0 for a notifier that does not get c's incidents.
func (r *Router) Repeat(c *config.Check, notifier string) time.Duration {
	listed := slices.Contains(c.Notify, notifier)
	for _, rt := range r.matched(c) {
		if !slices.Contains(rt.Notify, notifier) {
			continue
		}
		if rt.RepeatSet {
			return rt.Repeat
		}
		listed = true
	}
	if !listed {
		return 0
	}
	return r.repeat[notifier]
}

// Grouping is a route that pages c's outages through a group: the route's
// index among the config's routes, c's group, the route's group_wait, and
// the notifiers that get the grouped page (those of the route's notify
// list that no earlier grouping route of c took).
type Grouping struct {
	Route     int
	Group     string
	Wait      time.Duration
	Notifiers []string
}

// Groupings returns the matching routes that group c's outages: those
// with group_by [group] and a group_wait, for a check that has a group.
// A check without a group, or matched by no grouping route, has none.
func (r *Router) Groupings(c *config.Check) []Grouping {
	if c.Group == "" {
		return nil
	}
	var out []Grouping
	var taken []string
	for _, i := range r.matchedIndex(c) {
		rt := &r.routes[i]
		if rt.GroupWait <= 0 || !slices.Contains(rt.GroupBy, "group") {
			continue
		}
		g := Grouping{Route: i, Group: c.Group, Wait: rt.GroupWait}
		for _, n := range rt.Notify {
			if !slices.Contains(taken, n) {
				g.Notifiers = append(g.Notifiers, n)
				taken = append(taken, n)
			}
		}
		if len(g.Notifiers) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// Maintenance returns the notifiers that hear when a maintenance window
// covering c starts and ends: those of the routes that apply to c (as for
// its incidents) and set notify_maintenance, each once. A check's own
// notify list does not ask for them.
func (r *Router) Maintenance(c *config.Check) []string {
	var out []string
	for _, rt := range r.matched(c) {
		if !rt.NotifyMaintenance {
			continue
		}
		for _, n := range rt.Notify {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// Coverage returns the notifiers that get c's coverage alerts (the
// config's coverage.notify).
func (r *Router) Coverage(c *config.Check) []string {
	return slices.Clone(r.coverage)
}
