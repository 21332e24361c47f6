package paging

import (
	"slices"
	"sort"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/verdict"
)

// Reminders, flap dampening and coverage alerts (docs/notifications.md,
// "How the node pages"). Every node runs the state machines: it feeds each
// check's FlapDamper with its incidents opening and closing, holds the
// pages of a flapping check and releases them when it settles, and feeds
// the CoverageWatch of each check that is unknown. Only the designated
// sender turns their results into notifications, which then take the
// stages from dedup on. The work per sweep is proportional to the open
// incidents, the checks that changed lately and the unknown checks, not
// to all checks.

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
	start    time.Time // the page's incident start, fixed once the notice is produced
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

// watchLocked starts watching a check's coverage.
func (p *Pager) watchLocked(check string) {
	if p.coverage[check] == nil {
		p.coverage[check] = &coverageState{watch: notifier.NewCoverageWatch(0)}
	}
}

// alertsLocked runs the alert logic at now and returns what this node, if
// it is the designated sender, must send.
func (p *Pager) alertsLocked(now time.Time, isSender bool) []job {
	byCheck := map[string][]*page{}
	for _, pg := range p.pages {
		byCheck[pg.check] = append(byCheck[pg.check], pg)
	}
	var jobs []job
	for check := range byCheck {
		if c := p.byName[check]; c != nil && p.flaps[check] == nil {
			p.flaps[check] = &flapState{damper: notifier.NewFlapDamper(c.FlapThreshold, c.FlapWindow)}
		}
	}
	for check, fs := range p.flaps {
		c := p.byName[check]
		if c == nil {
			delete(p.flaps, check)
			continue
		}
		jobs = append(jobs, p.flapLocked(c, fs, byCheck[check], now, isSender)...)
		if flapping, _, n := fs.damper.Flapping(now); !flapping && n == 0 && fs.ep == nil && len(byCheck[check]) == 0 {
			delete(p.flaps, check)
		}
	}
	for check, st := range p.coverage {
		c := p.byName[check]
		if c == nil {
			delete(p.coverage, check)
			continue
		}
		jobs = append(jobs, p.coverageLocked(c, st, now, isSender)...)
	}
	if isSender {
		for check, pages := range byCheck {
			if c := p.byName[check]; c != nil {
				jobs = append(jobs, p.remindersLocked(c, pages, now)...)
			}
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

// flapLocked feeds c's damper with the changes of its pages not fed yet,
// holds and releases pages, and returns the flapping notice or its end.
func (p *Pager) flapLocked(c *config.Check, fs *flapState, pages []*page, now time.Time, isSender bool) []job {
	name := c.Name
	fs.damper.Threshold, fs.damper.Window = c.FlapThreshold, c.FlapWindow
	var changes []change
	for _, pg := range pages {
		if pg.fed&fedOpen == 0 {
			pg.fed |= fedOpen
			changes = append(changes, change{pg.openedAt, true, pg})
		}
		if pg.resolve != nil && pg.fed&fedResolve == 0 {
			pg.fed |= fedResolve
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
			p.log.Warn("check is flapping; notifications paused until it is stable", "check", name,
				"changes", d.Changes, "window", c.FlapWindow)
		}
	}
	if d := fs.damper.Tick(now); d.Settled && fs.ep != nil {
		fs.ep.settled, fs.ep.settleAt = true, now
		p.log.Info("check stopped flapping; held notifications released", "check", name,
			"trigger", d.Trigger, "resolve", d.Resolve)
	}
	flapping, _, _ := fs.damper.Flapping(now)
	for _, pg := range pages {
		if !pg.doneAt.IsZero() {
			continue
		}
		switch {
		case flapping:
			pg.held = true
		case pg.held:
			pg.held = false
			if !pg.triggered && pg.resolve != nil {
				// Opened and closed while the check flapped: never announced.
				pg.resolved, pg.doneAt = true, now
			}
		}
	}

	ep := fs.ep
	if ep == nil {
		return nil
	}
	notifiers := p.notifiersLocked(c)
	if !isSender || len(notifiers) == 0 {
		if ep.settled {
			fs.ep = nil
		}
		return nil
	}
	var jobs []job
	if !ep.queued {
		ep.start = ep.page.trigger.StartedAt
		ev := p.noticeLocked(c, notifier.KindFlapping, ep.id(name), ep.since, now)
		ev.Changes, ev.Window = ep.changes, c.FlapWindow
		jobs = append(jobs, job{ev: ev, notifiers: notifiers, done: func() { ep.queued = true }})
	}
	if ep.settled && ep.queued {
		ev := p.noticeLocked(c, notifier.KindFlapping, ep.id(name), ep.since, now)
		ev.Action, ev.Window = notifier.ActionResolve, c.FlapWindow
		at := ep.settleAt.UTC()
		ev.ResolvedAt = &at
		jobs = append(jobs, job{ev: ev, notifiers: notifiers, done: func() {
			if fs.ep == ep {
				fs.ep = nil
			}
		}})
	}
	return jobs
}

// noticeLocked is a flapping or coverage notice about c.
func (p *Pager) noticeLocked(c *config.Check, kind, id string, since, now time.Time) notifier.Event {
	return notifier.Event{
		Action: notifier.ActionTrigger, Kind: kind, IncidentID: id, Check: c.Name, DisplayName: c.DisplayName, Target: c.TargetString(),
		StartedAt: since.UTC(), At: now.UTC(), Severity: notifier.NoticeSeverity, StatusPageURL: p.cfg.StatusPage.URL,
		Group: c.Group, Regions: map[string]notifier.RegionVote{},
	}
}

// coverageLocked feeds c's coverage watch and returns the coverage alert
// or its resolve. A check neither unknown nor alerted stops being watched.
func (p *Pager) coverageLocked(c *config.Check, st *coverageState, now time.Time, isSender bool) []job {
	name := c.Name
	if c.Type == config.TypePush {
		delete(p.coverage, name) // no region watches a push check: no coverage to lose
		return nil
	}
	// A check is not reported before it could have been probed twice: a
	// check with a long interval is unknown at start until its first runs.
	st.watch.After = c.UnknownAfter
	if floor := 2*c.Interval + verdict.VoteSlack; st.watch.After > 0 && st.watch.After < floor {
		st.watch.After = floor
	}
	state, since, _, _, ok := p.o.Checks.State(name)
	if !ok {
		return nil
	}
	var dec notifier.CoverageDecision
	var start time.Time
	if state != quorum.StateMaintenance { // never alerted, nor restored, in maintenance
		dec, start = st.watch.Observe(now, state == quorum.StateUnknown, since)
	}
	switch dec {
	case notifier.CoverageLost:
		*st = coverageState{watch: st.watch, id: notifier.CoverageID(name, start), since: start}
		st.seeing, st.total = p.seeingLocked(c, now)
		p.log.Warn("monitoring coverage lost", "check", name, "regions_seeing", st.seeing, "regions", st.total,
			"unknown_since", start)
	case notifier.CoverageRestored:
		if st.id != "" {
			st.restored = now
			st.seeing, _ = p.seeingLocked(c, now)
			p.log.Info("monitoring coverage restored", "check", name, "regions_seeing", st.seeing, "regions", st.total)
		}
	}
	if st.id == "" {
		if state != quorum.StateUnknown && state != quorum.StateMaintenance {
			delete(p.coverage, name) // known again: watched again when it turns unknown
		}
		return nil
	}
	if !isSender {
		return nil // kept: should this node become the sender, it resolves what went out
	}
	notifiers := p.runningLocked(p.router.Coverage(c))
	event := func(action notifier.Action) notifier.Event {
		ev := p.noticeLocked(c, notifier.KindCoverage, st.id, st.since, now)
		ev.RegionsSeeing, ev.RegionsTotal = st.seeing, st.total
		ev.Regions = p.coverageRegionsLocked(c, now)
		if action == notifier.ActionResolve {
			at := st.restored.UTC()
			ev.Action, ev.ResolvedAt = notifier.ActionResolve, &at
		}
		return ev
	}
	var jobs []job
	if !st.lostQd && st.restored.IsZero() {
		jobs = append(jobs, job{ev: event(notifier.ActionTrigger), notifiers: notifiers, done: func() { st.lostQd = true }})
	}
	if !st.restored.IsZero() {
		// Resolve only what went out: queued here, or by a peer.
		if st.lostQd || len(p.o.Sent.Unsent(st.id, string(notifier.ActionTrigger), notifiers)) < len(notifiers) {
			jobs = append(jobs, job{ev: event(notifier.ActionResolve), notifiers: notifiers})
		}
		*st = coverageState{watch: st.watch}
	}
	return jobs
}

// seeingLocked counts the regions eligible to vote on c, of all.
func (p *Pager) seeingLocked(c *config.Check, now time.Time) (seeing, total int) {
	cv, ok := p.o.Checks.Check(c.Name)
	if !ok {
		return 0, 0
	}
	for _, rv := range cv.Regions {
		if rv.Eligible {
			seeing++
		}
	}
	return seeing, len(cv.Regions)
}

// coverageRegionsLocked lists every expected region's vote on c, abstain
// for those that cannot vote.
func (p *Pager) coverageRegionsLocked(c *config.Check, now time.Time) map[string]notifier.RegionVote {
	out := map[string]notifier.RegionVote{}
	cv, ok := p.o.Checks.Check(c.Name)
	if !ok {
		return out
	}
	for r, rv := range cv.Regions {
		v := notifier.RegionVote{Vote: string(quorum.VoteAbstain)}
		if rv.Eligible {
			v.Vote = string(rv.Vote)
		}
		out[r] = v
	}
	return out
}

// remindersLocked returns the reminders due for c's open, triggered
// incident: reminder N = floor((now - start) / repeat) for each notifier
// with an interval, once N ≥ 1 and N was not produced before.
func (p *Pager) remindersLocked(c *config.Check, pages []*page, now time.Time) []job {
	state, _, id, _, ok := p.o.Checks.State(c.Name)
	if !ok || state != quorum.StateDown || id == "" {
		return nil
	}
	var pg *page
	for _, q := range pages {
		if q.trigger.IncidentID == id {
			pg = q
		}
	}
	if pg == nil || !pg.triggered || pg.resolve != nil || !pg.doneAt.IsZero() || pg.held {
		return nil
	}
	due := map[int][]string{} // reminder number -> notifiers
	// groups.go: a grouping route's notifiers are reminded by the group.
	for _, name := range p.ungroupedLocked(c) {
		every := p.router.Repeat(c, name)
		if every <= 0 {
			continue
		}
		seq := int(now.Sub(pg.trigger.StartedAt) / every)
		if seq < 1 || seq <= pg.reminded[name] {
			continue
		}
		due[seq] = append(due[seq], name)
	}
	var jobs []job
	for seq, names := range due {
		ev := pg.trigger
		ev.Action, ev.Seq, ev.At = notifier.ActionRepeat, seq, now.UTC()
		if cv, ok := p.o.Checks.Check(c.Name); ok {
			ev.Regions = regionVotes(cv.Regions)
		}
		names := slices.Clone(names)
		jobs = append(jobs, job{ev: ev, notifiers: names, done: func() {
			if pg.reminded == nil {
				pg.reminded = map[string]int{}
			}
			for _, n := range names {
				pg.reminded[n] = max(pg.reminded[n], seq)
			}
		}})
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].ev.Seq < jobs[j].ev.Seq })
	return jobs
}
