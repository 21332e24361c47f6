package paging

import (
	"slices"
	"sort"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/quorum"
)

// Grouped pages (a route's group_by: [group] and group_wait;
// docs/notifications.md, "Grouped pages"). The outages of a group's
// checks that begin within group_wait of the first reach the route's
// notifiers as one page (kind group) listing them all:
//
//   - a check's incident joins its group once its own trigger would go out
//     (settle, takeover, depends and hold passed); the check's other
//     notifiers (its notify list, other routes) page as usual, the
//     grouping route's only through the group;
//   - the group's trigger waits group_wait after the first member's
//     incident opened here, collecting members;
//   - an outage that begins within group_wait of the group's first but
//     joins after the trigger went out is announced as an update under
//     the group's id (action update, Seq the number of checks listed);
//   - reminders follow the route's repeat, counted from the group's start;
//   - the resolve goes out once every member is up.
//
// The group's id is notifier.GroupID(route index, group, the earliest
// member's incident start): a sender that takes over computes the same id
// from the incidents it knows (and adopts one a previous sender paged, as
// the sent log shows, under another member's start), and every
// notification takes the pager's stages from dedup on, so nothing the
// cluster sent is sent again. Only the designated sender forms groups.

// groupKey is where an outage is grouped: a grouping route and a group.
type groupKey struct {
	route int
	group string
}

// grouping is one grouped page.
type grouping struct {
	key       groupKey
	wait      time.Duration
	notifiers []string
	members   []*page
	gone      map[*page]time.Time // members dropped unresolved (their check left the config), and when
	shown     map[*page]bool      // members listed in what was queued here
	firstOpen time.Time           // the earliest member's incident opening, on this node's clock
	anchor    time.Time           // the earliest member's incident start; fixed once triggered
	id        string
	triggered bool // the trigger was queued here or found delivered
	listed    int  // the number of checks the latest trigger or update queued here listed
	resolved  bool
	doneAt    time.Time
	reminded  map[string]int // notifier -> the last reminder produced
}

// groupedLocked returns the notifiers that get c's incidents through a
// group, running on this node.
func (p *Pager) groupedLocked(c *config.Check) []string {
	var out []string
	for _, g := range p.router.Groupings(c) {
		out = append(out, g.Notifiers...)
	}
	return p.runningLocked(out)
}

// ungroupedLocked is notifiersLocked less the notifiers that get c's
// incidents through a group: those that page c's incidents on their own.
func (p *Pager) ungroupedLocked(c *config.Check) []string {
	grouped := p.groupedLocked(c)
	return slices.DeleteFunc(p.notifiersLocked(c), func(n string) bool { return slices.Contains(grouped, n) })
}

// joinGroupsLocked adds pg, whose trigger is due, to the open groups of
// each route that groups c's outages, or starts a group. A group lists a
// check once: a newer incident of a check it lists takes the older one's
// place. It is idempotent.
func (p *Pager) joinGroupsLocked(c *config.Check, pg *page) {
	start := pg.trigger.StartedAt
routes:
	for _, gr := range p.router.Groupings(c) {
		key := groupKey{gr.Route, gr.Group}
		var into *grouping
		at := -1
		for _, g := range p.groups {
			if g.key != key || g.resolved {
				continue
			}
			i := slices.IndexFunc(g.members, func(m *page) bool { return m.check == pg.check })
			if i >= 0 && g.members[i] == pg {
				continue routes
			}
			if into == nil && absDuration(start.Sub(g.anchor)) <= g.wait {
				into, at = g, i
			}
		}
		if into == nil {
			into = &grouping{key: key, wait: gr.Wait, notifiers: gr.Notifiers, anchor: start, firstOpen: pg.openedAt,
				gone: map[*page]time.Time{}, shown: map[*page]bool{}, reminded: map[string]int{}}
			p.groups = append(p.groups, into)
			p.log.Info("grouped page opened", "group", gr.Group, "route", gr.Route, "check", c.Name,
				"incident_id", pg.trigger.IncidentID, "group_wait", gr.Wait)
		}
		if at >= 0 {
			old := into.members[at]
			into.members[at] = pg
			delete(into.gone, old)
			delete(into.shown, old)
			p.log.Info("a newer incident of a check takes its place in a grouped page", "group", gr.Group,
				"check", c.Name, "incident_id", pg.trigger.IncidentID, "replaced", old.trigger.IncidentID, "group_id", into.id)
		} else {
			into.members = append(into.members, pg)
			if into.triggered {
				p.log.Info("check joins a grouped page already sent; updating it", "group", gr.Group,
					"check", c.Name, "incident_id", pg.trigger.IncidentID, "group_id", into.id)
			}
		}
		if pg.openedAt.Before(into.firstOpen) {
			into.firstOpen = pg.openedAt
		}
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// groupJobsLocked produces the grouped pages' triggers, updates,
// reminders and resolves due.
func (p *Pager) groupJobsLocked(now time.Time, isSender bool) []job {
	var jobs []job
	p.groups = slices.DeleteFunc(p.groups, func(g *grouping) bool {
		return !g.doneAt.IsZero() && now.Sub(g.doneAt) > time.Hour
	})
	if !isSender || now.Sub(p.senderSince) < Takeover {
		// takeover: a node that just became the sender first waits for the
		// sent log and claims of a previous sender's grouped pages.
		return nil
	}
	for _, g := range p.groups {
		if !g.doneAt.IsZero() {
			continue
		}
		for _, m := range g.members {
			// A member whose check left the config (its page is dropped
			// unresolved) counts as up from now.
			if _, gone := g.gone[m]; !gone && m.resolve == nil && (p.byName[m.check] == nil || p.pages[m.trigger.IncidentID] != m) {
				g.gone[m] = now
			}
		}
		notifiers := p.runningLocked(slices.Clone(g.notifiers))
		if !g.triggered {
			if now.Before(g.firstOpen.Add(g.wait)) {
				continue // group_wait: collecting members
			}
			g.anchor = g.members[0].trigger.StartedAt
			for _, m := range g.members {
				if m.trigger.StartedAt.Before(g.anchor) {
					g.anchor = m.trigger.StartedAt
				}
			}
			g.id = notifier.GroupID(g.key.route, g.key.group, g.anchor)
			p.adoptLocked(g, now)
			jobs = append(jobs, p.groupJobLocked(g, notifier.ActionTrigger, notifiers, now))
			continue
		}
		if n := len(g.members); g.listed < n {
			jobs = append(jobs, p.groupJobLocked(g, notifier.ActionUpdate, notifiers, now))
			continue // the resolve and reminders wait for it
		}
		if at, up := p.groupUpLocked(g); up {
			j := p.groupJobLocked(g, notifier.ActionResolve, notifiers, now)
			j.ev.ResolvedAt = &at
			jobs = append(jobs, j)
			continue
		}
		jobs = append(jobs, p.groupRemindersLocked(g, now)...)
	}
	return jobs
}

// adoptLocked takes, for an untriggered group, the id a previous sender
// paged it under: when it knew another member first, the group's start,
// and so its id, differ. The sent log (or a live claim) shows the one
// that went out.
func (p *Pager) adoptLocked(g *grouping, now time.Time) {
	alive := p.o.Checks.View().IsAlive
	sent := func(id string) bool {
		if p.o.Sent.Triggered(id) {
			return true
		}
		_, held := p.o.Claims.Held(id, string(notifier.ActionTrigger), now, alive)
		return held
	}
	if sent(g.id) {
		return
	}
	starts := make([]time.Time, 0, len(g.members))
	for _, m := range g.members {
		starts = append(starts, m.trigger.StartedAt)
	}
	slices.SortFunc(starts, time.Time.Compare)
	for _, s := range starts {
		if id := notifier.GroupID(g.key.route, g.key.group, s); id != g.id && sent(id) {
			p.log.Info("grouped page sent by a previous sender; taking its id", "group", g.key.group, "group_id", id)
			g.anchor, g.id = s, id
			return
		}
	}
}

// groupUpLocked reports whether every member of g is up, and since when.
func (p *Pager) groupUpLocked(g *grouping) (time.Time, bool) {
	var last time.Time
	for _, m := range g.members {
		at, gone := g.gone[m]
		switch {
		case m.resolve != nil && m.resolve.ResolvedAt != nil:
			at = *m.resolve.ResolvedAt
		case !gone:
			return time.Time{}, false
		}
		if at.After(last) {
			last = at
		}
	}
	return last.UTC(), true
}

// groupJobLocked is g's trigger, update or resolve, listing its members.
func (p *Pager) groupJobLocked(g *grouping, action notifier.Action, notifiers []string, now time.Time) job {
	ev := p.groupEventLocked(g, action, now)
	if action == notifier.ActionUpdate {
		ev.Seq = len(ev.Members)
	}
	listed := slices.Clone(g.members)
	here := false
	return job{ev: ev, notifiers: notifiers,
		queued: func(ns []string) {
			here = true
			if action == notifier.ActionTrigger {
				p.recordListed(ev, ns)
			}
		},
		done: func() {
			switch action {
			case notifier.ActionTrigger:
				g.triggered = true
			case notifier.ActionResolve:
				g.resolved, g.doneAt = true, p.o.Now()
				return
			}
			if here || action == notifier.ActionUpdate {
				g.listed = max(g.listed, len(listed))
			}
			if here {
				for _, m := range listed {
					g.shown[m] = true
				}
			}
		}}
}

// recordListed notes in the sent log, for the notifiers a group's trigger
// was queued for, that the page listing its n checks went out: a sender
// that takes over finds update#n sent, and updates only once more checks
// joined. Without it a new sender could not tell how many checks the
// trigger it finds in the sent log listed.
func (p *Pager) recordListed(ev notifier.Event, ns []string) {
	key := notifier.Event{Action: notifier.ActionUpdate, Seq: len(ev.Members)}.Key()
	for _, n := range ns {
		if err := p.o.Sent.Record(mesh.Sent{Incident: ev.IncidentID, Start: ev.StartedAt, Action: key, Notifier: n}); err != nil {
			p.log.Warn("gossip grouped page size", "group_id", ev.IncidentID, "notifier", n, "err", err)
		}
	}
}

// groupRemindersLocked returns the reminders due for g while one of its
// members is down: reminder N = floor((now - start) / repeat) for each
// notifier with an interval (the route's repeat, else the notifier's).
func (p *Pager) groupRemindersLocked(g *grouping, now time.Time) []job {
	var first *config.Check
	down := false
	for _, m := range g.members {
		c := p.byName[m.check]
		if c == nil || m.resolve != nil {
			continue
		}
		if first == nil {
			first = c
		}
		if st, _, _, _, _ := p.o.Checks.State(m.check); st == quorum.StateDown {
			down = true
		}
	}
	if !down {
		return nil
	}
	due := map[int][]string{}
	for _, name := range p.runningLocked(slices.Clone(g.notifiers)) {
		every := p.router.Repeat(first, name)
		if every <= 0 {
			continue
		}
		seq := int(now.Sub(g.anchor) / every)
		if seq < 1 || seq <= g.reminded[name] {
			continue
		}
		due[seq] = append(due[seq], name)
	}
	var jobs []job
	for seq, names := range due {
		ev := p.groupEventLocked(g, notifier.ActionRepeat, now)
		ev.Seq, ev.At = seq, now.UTC()
		jobs = append(jobs, job{ev: ev, notifiers: names, done: func() {
			for _, n := range names {
				g.reminded[n] = max(g.reminded[n], seq)
			}
		}})
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].ev.Seq < jobs[j].ev.Seq })
	return jobs
}

// severityRank orders severities; a group pages at its members' highest.
var severityRank = map[string]int{"info": 1, "warning": 2, "error": 3, "critical": 4}

// groupEventLocked describes g: its members sorted by incident start, each
// with its regions' votes (the latest while down).
func (p *Pager) groupEventLocked(g *grouping, action notifier.Action, now time.Time) notifier.Event {
	ev := notifier.Event{Action: action, Kind: notifier.KindGroup, IncidentID: g.id, Group: g.key.group,
		StartedAt: g.anchor.UTC(), StatusPageURL: p.cfg.StatusPage.URL, Regions: map[string]notifier.RegionVote{}}
	members := slices.Clone(g.members)
	slices.SortStableFunc(members, func(a, b *page) int {
		if c := a.trigger.StartedAt.Compare(b.trigger.StartedAt); c != 0 {
			return c
		}
		return compareStrings(a.check, b.check)
	})
	for _, m := range members {
		gm := notifier.GroupMember{Check: m.check, DisplayName: m.trigger.DisplayName, Target: m.trigger.Target,
			IncidentID: m.trigger.IncidentID, StartedAt: m.trigger.StartedAt, Regions: m.trigger.Regions,
			New: action == notifier.ActionUpdate && len(g.shown) > 0 && !g.shown[m]}
		if c := p.byName[m.check]; c != nil && severityRank[c.Severity] > severityRank[ev.Severity] {
			ev.Severity = c.Severity
		}
		switch at, gone := g.gone[m]; {
		case m.resolve != nil:
			gm.ResolvedAt, gm.Regions = m.resolve.ResolvedAt, m.resolve.Regions
		case gone:
			at = at.UTC()
			gm.ResolvedAt = &at
		default:
			if st, _, _, _, _ := p.o.Checks.State(m.check); st == quorum.StateDown {
				if cv, ok := p.o.Checks.Check(m.check); ok {
					gm.Regions = regionVotes(cv.Regions)
				}
			}
		}
		ev.Members = append(ev.Members, gm)
	}
	if ev.Severity == "" && len(members) > 0 {
		ev.Severity = "critical"
	}
	return ev
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
