package main

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/quorum"
)

// Routing, reminders, flap dampening and coverage alerts (docs/notifications.md,
// "How the node pages"). sweepPages calls alertsLocked first, on every node:
// it feeds each check's FlapDamper with its incidents opening and closing,
// marks the pages of a flapping check held (heldLocked) and releases them
// when it settles, and feeds each check's CoverageWatch. Only the designated
// sender turns the results into notifications (reminders, flapping notices,
// coverage alerts); like triggers, each is queued once per node (the
// outbox) and not at all when the cluster's sent log or a live claim shows
// another node has it.

// alertState is the node's bookkeeping for alerts.go, under node.mu.
type alertState struct {
	router    *notifier.Router
	routerCfg *config.Config // the config router was built from

	flaps    map[string]*flapState // by check
	coverage map[string]*coverageState
	fed      map[*page]uint8 // changes of a page fed to its check's damper
	held     map[*page]bool  // pages held while their check flaps
	reminded map[*page]map[string]int
}

const (
	fedOpen uint8 = 1 << iota
	fedResolve
)

// flapState is one check's damper and its current episode.
type flapState struct {
	damper *notifier.FlapDamper
	ep     *flapEpisode
}

// flapEpisode is a flapping episode: the page whose change started it, and
// whether its notice went out.
type flapEpisode struct {
	page     *page
	since    time.Time
	changes  int
	start    time.Time // the page's incident start, fixed once the notice is queued
	queued   bool      // the notice was queued here (or found sent)
	settled  bool
	settleAt time.Time
}

func (e *flapEpisode) id(check string) string {
	start := e.start
	if start.IsZero() {
		start = e.page.trigger.StartedAt
	}
	return notifier.FlappingID(check, start)
}

// coverageState is one check's coverage watch and its alert.
type coverageState struct {
	watch    *notifier.CoverageWatch
	id       string // the current alert's id ("" when none)
	since    time.Time
	lostQd   bool      // the alert was queued here (or found sent)
	restored time.Time // when the check was known again
	seeing   int
	total    int
}

// alertJob is one notification to queue.
type alertJob struct {
	ev        notifier.Event
	notifiers []string
}

func (a *alertState) init() {
	if a.flaps == nil {
		a.flaps = map[string]*flapState{}
		a.coverage = map[string]*coverageState{}
		a.fed = map[*page]uint8{}
		a.held = map[*page]bool{}
		a.reminded = map[*page]map[string]int{}
	}
}

// routerLocked is the router of the running config (rebuilt after a
// reload).
func (n *node) routerLocked() *notifier.Router {
	a := &n.alerts
	if a.router == nil || a.routerCfg != n.cfg {
		a.router, a.routerCfg = notifier.NewRouter(n.cfg), n.cfg
	}
	return a.router
}

// notifiersLocked is the notifiers that get c's incidents: its notify list
// and its routes (notifier.Router), limited to the notifiers this node
// runs (a reload does not add notifiers).
func (n *node) notifiersLocked(c *config.Check) []string {
	return n.runningLocked(n.routerLocked().Notifiers(c))
}

func (n *node) runningLocked(names []string) []string {
	return slices.DeleteFunc(names, func(name string) bool { return n.cfg.NotifierByName(name) == nil })
}

// heldLocked reports whether pg's notifications are held because its check
// is flapping.
func (n *node) heldLocked(pg *page) bool { return n.alerts.held[pg] }

// alertsLocked runs the alert logic at now and returns what this node, if
// it is the designated sender, must queue.
func (n *node) alertsLocked(now time.Time, isSender bool) []alertJob {
	a := &n.alerts
	a.init()
	for pg := range a.fed {
		if n.pages[pg.trigger.IncidentID] != pg {
			delete(a.fed, pg)
			delete(a.held, pg)
			delete(a.reminded, pg)
		}
	}
	var jobs []alertJob
	for _, c := range n.cfg.Checks {
		cs := n.checks[c.Name]
		if cs == nil {
			continue
		}
		jobs = append(jobs, n.flapLocked(cs, now, isSender)...)
		jobs = append(jobs, n.coverageLocked(cs, now, isSender)...)
		if isSender {
			jobs = append(jobs, n.remindersLocked(cs, now)...)
		}
	}
	return jobs
}

// change is an incident opening or closing, for the damper.
type change struct {
	at   time.Time
	down bool
	pg   *page
}

// flapLocked feeds cs's damper with the changes of its pages not fed yet,
// holds and releases pages, and returns the flapping notice or its end.
func (n *node) flapLocked(cs *checkState, now time.Time, isSender bool) []alertJob {
	a := &n.alerts
	name := cs.cfg.Name
	fs := a.flaps[name]
	if fs == nil {
		fs = &flapState{damper: notifier.NewFlapDamper(0, 0)}
		a.flaps[name] = fs
	}
	fs.damper.Threshold, fs.damper.Window = cs.cfg.FlapThreshold, cs.cfg.FlapWindow
	var changes []change
	for _, pg := range n.pages {
		if pg.check != name {
			continue
		}
		if a.fed[pg]&fedOpen == 0 {
			a.fed[pg] |= fedOpen
			changes = append(changes, change{pg.openedAt, true, pg})
		}
		if pg.resolve != nil && a.fed[pg]&fedResolve == 0 {
			a.fed[pg] |= fedResolve
			at := now
			if pg.resolve.ResolvedAt != nil {
				at = *pg.resolve.ResolvedAt
			}
			changes = append(changes, change{at, false, pg})
		}
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].at.Before(changes[j].at) })
	for _, ch := range changes {
		if d := fs.damper.Change(ch.at, ch.down); d.Notice {
			fs.ep = &flapEpisode{page: ch.pg, since: ch.at, changes: d.Changes}
			n.log.Warn("check is flapping; notifications paused until it is stable", "check", name,
				"changes", d.Changes, "window", cs.cfg.FlapWindow)
		}
	}
	if d := fs.damper.Tick(now); d.Settled && fs.ep != nil {
		fs.ep.settled, fs.ep.settleAt = true, now
		n.log.Info("check stopped flapping; held notifications released", "check", name,
			"trigger", d.Trigger, "resolve", d.Resolve)
	}
	flapping, _, _ := fs.damper.Flapping(now)
	for _, pg := range n.pages {
		if pg.check != name || !pg.doneAt.IsZero() {
			continue
		}
		switch {
		case flapping:
			a.held[pg] = true
		case a.held[pg]:
			delete(a.held, pg)
			if !pg.triggered && pg.resolve != nil {
				// Opened and closed while the check flapped: never announced.
				pg.resolvedQd, pg.doneAt = true, now
			}
		}
	}

	ep := fs.ep
	if ep == nil {
		return nil
	}
	notifiers := n.notifiersLocked(cs.cfg)
	if !isSender || len(notifiers) == 0 {
		if ep.settled {
			fs.ep = nil
		}
		return nil
	}
	var jobs []alertJob
	if !ep.queued {
		ep.start = ep.page.trigger.StartedAt
		id := ep.id(name)
		if ns := n.unsentLocked(id, notifier.ActionTrigger, notifiers); len(ns) > 0 {
			if _, held := n.claimHeldLocked(id, notifier.ActionTrigger, now); !held {
				ev := n.noticeLocked(cs, notifier.KindFlapping, id, ep.since, now)
				ev.Changes, ev.Window = ep.changes, cs.cfg.FlapWindow
				jobs = append(jobs, alertJob{ev, ns})
			}
		}
		ep.queued = true
	}
	if ep.settled {
		id := ep.id(name)
		if ns := n.unsentLocked(id, notifier.ActionResolve, notifiers); len(ns) > 0 {
			if _, held := n.claimHeldLocked(id, notifier.ActionResolve, now); !held {
				ev := n.noticeLocked(cs, notifier.KindFlapping, id, ep.since, now)
				ev.Action, ev.Window = notifier.ActionResolve, cs.cfg.FlapWindow
				at := ep.settleAt.UTC()
				ev.ResolvedAt = &at
				jobs = append(jobs, alertJob{ev, ns})
			}
		}
		fs.ep = nil
	}
	return jobs
}

// noticeLocked is a flapping or coverage notice about cs.
func (n *node) noticeLocked(cs *checkState, kind, id string, since, now time.Time) notifier.Event {
	c := cs.cfg
	return notifier.Event{
		Action: notifier.ActionTrigger, Kind: kind, IncidentID: id, Check: c.Name, Target: c.TargetString(),
		StartedAt: since.UTC(), At: now.UTC(), Severity: notifier.NoticeSeverity, StatusPageURL: n.cfg.StatusPage.URL,
		Group: c.Group, Regions: map[string]notifier.RegionVote{},
	}
}

// coverageLocked feeds cs's coverage watch and returns the coverage alert
// or its resolve.
func (n *node) coverageLocked(cs *checkState, now time.Time, isSender bool) []alertJob {
	a := &n.alerts
	name := cs.cfg.Name
	st := a.coverage[name]
	if st == nil {
		st = &coverageState{watch: notifier.NewCoverageWatch(0)}
		a.coverage[name] = st
	}
	// A check is not reported before it could have been probed twice: a
	// check with a long interval is unknown at start until its first runs.
	st.watch.After = cs.cfg.UnknownAfter
	if floor := 2*cs.cfg.Interval + voteSlack; st.watch.After > 0 && st.watch.After < floor {
		st.watch.After = floor
	}
	state, since := cs.tracker.State()
	p := n.params(cs.cfg)
	var dec notifier.CoverageDecision
	var start time.Time
	if state != quorum.StateMaintenance { // never alerted, nor restored, in maintenance
		dec, start = st.watch.Observe(now, state == quorum.StateUnknown, since)
	}
	switch dec {
	case notifier.CoverageLost:
		*st = coverageState{watch: st.watch, id: notifier.CoverageID(name, start), since: start}
		st.seeing, st.total = n.seeingLocked(cs, p, now), len(p.Regions)
		n.log.Warn("monitoring coverage lost", "check", name, "regions_seeing", st.seeing, "regions", st.total,
			"unknown_since", start)
	case notifier.CoverageRestored:
		if st.id != "" {
			st.restored = now
			st.seeing = n.seeingLocked(cs, p, now)
			n.log.Info("monitoring coverage restored", "check", name, "regions_seeing", st.seeing, "regions", st.total)
		}
	}
	if st.id == "" || !isSender {
		return nil
	}
	notifiers := n.runningLocked(n.routerLocked().Coverage(cs.cfg))
	event := func(action notifier.Action) notifier.Event {
		ev := n.noticeLocked(cs, notifier.KindCoverage, st.id, st.since, now)
		ev.RegionsSeeing, ev.RegionsTotal = st.seeing, st.total
		ev.Regions = n.coverageRegionsLocked(cs, p, now)
		if action == notifier.ActionResolve {
			at := st.restored.UTC()
			ev.Action, ev.ResolvedAt = notifier.ActionResolve, &at
		}
		return ev
	}
	var jobs []alertJob
	if !st.lostQd && st.restored.IsZero() {
		if ns := n.unsentLocked(st.id, notifier.ActionTrigger, notifiers); len(ns) > 0 {
			if _, held := n.claimHeldLocked(st.id, notifier.ActionTrigger, now); !held {
				jobs = append(jobs, alertJob{event(notifier.ActionTrigger), ns})
			}
		}
		st.lostQd = true
	}
	if !st.restored.IsZero() {
		// Resolve only what went out: queued here, or by a peer.
		if st.lostQd || len(n.unsentLocked(st.id, notifier.ActionTrigger, notifiers)) < len(notifiers) {
			if ns := n.unsentLocked(st.id, notifier.ActionResolve, notifiers); len(ns) > 0 {
				jobs = append(jobs, alertJob{event(notifier.ActionResolve), ns})
			}
		}
		*st = coverageState{watch: st.watch}
	}
	return jobs
}

// seeingLocked counts the regions eligible to vote on cs.
func (n *node) seeingLocked(cs *checkState, p quorum.Params, now time.Time) int {
	view := n.viewLocked(p.Regions)
	regions, _ := n.regionInputsLocked(cs.cfg, p, view, now)
	seeing := 0
	for _, r := range p.Regions {
		if ri, ok := regions[r]; ok && quorum.Eligible(p, now, ri) {
			seeing++
		}
	}
	return seeing
}

// coverageRegionsLocked lists every expected region's vote on cs, abstain
// for those that cannot vote.
func (n *node) coverageRegionsLocked(cs *checkState, p quorum.Params, now time.Time) map[string]notifier.RegionVote {
	out := map[string]notifier.RegionVote{}
	view := n.viewLocked(p.Regions)
	regions, _ := n.regionInputsLocked(cs.cfg, p, view, now)
	for _, r := range p.Regions {
		rv := notifier.RegionVote{Vote: string(quorum.VoteAbstain)}
		if ri, ok := regions[r]; ok && quorum.Eligible(p, now, ri) {
			rv.Vote = string(ri.Vote)
		}
		out[r] = rv
	}
	return out
}

// remindersLocked returns the reminders due for cs's open, triggered
// incident: reminder N = floor((now - start) / repeat) for each notifier
// with an interval, once N ≥ 1 and N is not in the sent log.
func (n *node) remindersLocked(cs *checkState, now time.Time) []alertJob {
	a := &n.alerts
	state, _ := cs.tracker.State()
	id, _ := cs.tracker.Incident()
	if state != quorum.StateDown || id == "" {
		return nil
	}
	pg := n.pages[id]
	if pg == nil || !pg.triggered || pg.resolve != nil || !pg.doneAt.IsZero() || a.held[pg] {
		return nil
	}
	r := n.routerLocked()
	due := map[int][]string{} // reminder number -> notifiers
	for _, name := range n.notifiersLocked(cs.cfg) {
		every := r.Repeat(cs.cfg, name)
		if every <= 0 {
			continue
		}
		seq := int(now.Sub(pg.trigger.StartedAt) / every)
		if seq < 1 || seq <= a.reminded[pg][name] {
			continue
		}
		if a.reminded[pg] == nil {
			a.reminded[pg] = map[string]int{}
		}
		a.reminded[pg][name] = seq
		key := notifier.Event{Action: notifier.ActionRepeat, Seq: seq}.Key()
		if _, sent := n.sent[sentKey{incident: id, action: key, notifier: name}]; sent {
			continue
		}
		if _, held := n.claimHeldLocked(id, notifier.Action(key), now); held {
			continue
		}
		due[seq] = append(due[seq], name)
	}
	var jobs []alertJob
	for seq, names := range due {
		ev := n.eventLocked(cs, id, pg.trigger.StartedAt, nil)
		ev.Action, ev.Seq, ev.At = notifier.ActionRepeat, seq, now.UTC()
		jobs = append(jobs, alertJob{ev, names})
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].ev.Seq < jobs[j].ev.Seq })
	return jobs
}

// queueAlerts claims and queues what alertsLocked returned (not under
// n.mu).
func (n *node) queueAlerts(jobs []alertJob) {
	if len(jobs) == 0 {
		return
	}
	var claims []claimMsg
	n.mu.Lock()
	now := n.now()
	for _, j := range jobs {
		claims = append(claims, n.claimLocked(j.ev.IncidentID, notifier.Action(j.ev.Key()), j.notifiers, now))
	}
	n.mu.Unlock()
	n.gossipClaims(claims)
	for _, j := range jobs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.outbox.Enqueue(ctx, j.ev, j.notifiers...); err != nil {
			n.log.Error("queue notification", "check", j.ev.Check, "incident_id", j.ev.IncidentID, "kind", j.ev.Kind,
				"action", j.ev.Key(), "err", err)
		}
		cancel()
	}
}
