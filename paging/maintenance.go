package paging

import (
	"slices"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
)

// Maintenance window notices (a route's notify_maintenance). When an
// occurrence of a maintenance window begins (a one-off window of the
// config, an occurrence of a recurring one, or a window scheduled through
// POST /api/v1/maintenance), the notifiers of the routes that apply to
// its checks and ask for it hear one notice (kind maintenance, trigger),
// and one when it ends (resolve): at its scheduled end, or when it is
// cancelled or removed from the config before that.
//
// Every node follows every occurrence: it sees one begin, learns from the
// sent log whether its start went out, and sees it end, so that a node
// that becomes the sender can send the end of an occurrence its
// predecessor started. Only the designated sender sends, through the
// stages from dedup on (sent log, claims, the durable outbox), so each
// notice goes out once for the cluster. The id of an occurrence is the
// same on every node: notifier.MaintenanceID of the window's key (a
// runtime window's id, a config window's title, checks and schedule) and
// the occurrence's start. A start is sent late if the sender learns of
// the occurrence only while it runs (a node started, or a window
// scheduled, mid-window); an end is sent only for a start that went out.
// An occurrence no running node saw (the whole cluster down throughout)
// gets no notices.

// Windows is the cluster's runtime maintenance windows (mesh.Maintenance).
type Windows interface {
	Windows() []mesh.Window
}

// maintForget is how long a node follows an occurrence that ended
// without seeing its end notice delivered (it may become the sender and
// owe it); after that it forgets it.
const maintForget = 24 * time.Hour

// maintOcc is one occurrence of a maintenance window as this node
// follows it.
type maintOcc struct {
	info      notifier.MaintenanceInfo
	notifiers []string  // fixed when the occurrence was first seen
	started   bool      // the start was queued here or found delivered
	ended     bool      // the end was queued here or found delivered, or none is owed
	endAt     time.Time // when it ended; zero while it runs
}

// maintWindow is a window with the key its occurrences' ids are made of.
type maintWindow struct {
	key string
	m   config.Maintenance
	id  string // a runtime window's id
}

// maintWindowsLocked lists the config's windows and the runtime ones.
func (p *Pager) maintWindowsLocked() []maintWindow {
	var out []maintWindow
	for _, m := range p.cfg.Maintenance {
		out = append(out, maintWindow{key: configWindowKey(m), m: m})
	}
	if p.o.Maintenance != nil {
		for _, w := range p.o.Maintenance.Windows() {
			out = append(out, maintWindow{key: "api:" + w.ID, m: w.Maintenance(), id: w.ID})
		}
	}
	return out
}

// configWindowKey names a window of the config file the same on every
// node: its title, checks and schedule (not its end or duration, so that
// a window made longer or shorter keeps its notices).
func configWindowKey(m config.Maintenance) string {
	checks := slices.Clone(m.Checks)
	slices.Sort(checks)
	start := ""
	if !m.Recurring() {
		start = m.Start.UTC().Format(time.RFC3339Nano)
	}
	return strings.Join([]string{"cfg", m.Title, strings.Join(checks, ","), m.Every, m.Timezone, start}, "|")
}

// maintNotifiersLocked is the notifiers that hear of a window over
// checks: those of the routes that apply to any of them and set
// notify_maintenance, limited to the notifiers this node runs.
func (p *Pager) maintNotifiersLocked(checks []string) []string {
	var out []string
	for _, name := range checks {
		c := p.byName[name]
		if c == nil {
			continue
		}
		for _, n := range p.router.Maintenance(c) {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return p.runningLocked(out)
}

// maintJobsLocked follows the windows' occurrences at now and returns the
// notices this node, if it is the sender, must send.
func (p *Pager) maintJobsLocked(now time.Time, isSender bool) []job {
	if p.maint == nil {
		p.maint = map[string]*maintOcc{}
	}
	active := map[string]bool{}
	for _, w := range p.maintWindowsLocked() {
		start, end, ok := w.m.Occurrence(now)
		if !ok {
			continue
		}
		id := notifier.MaintenanceID(w.key, start)
		active[id] = true
		o := p.maint[id]
		if o == nil {
			ns := p.maintNotifiersLocked(w.m.Checks)
			if len(ns) == 0 {
				continue // no route asks
			}
			o = &maintOcc{notifiers: ns, info: notifier.MaintenanceInfo{Title: w.m.Title, Checks: slices.Clone(w.m.Checks),
				Start: start.UTC(), Every: w.m.Every, Timezone: w.m.Timezone, WindowID: w.id}}
			p.maint[id] = o
		}
		o.info.End = end.UTC() // a window made longer or shorter ends at its new end
	}
	var jobs []job
	for id, o := range p.maint {
		if !active[id] && o.endAt.IsZero() {
			// It ended: at its end, or earlier (cancelled or removed).
			if now.Before(o.info.End) {
				o.endAt, o.info.Cancelled = now.UTC(), true
			} else {
				o.endAt = o.info.End
			}
		}
		ended := !o.endAt.IsZero()
		if ended && (o.ended || now.Sub(o.endAt) > maintForget) {
			delete(p.maint, id)
			continue
		}
		if !o.started && len(p.o.Sent.Unsent(id, string(notifier.ActionTrigger), o.notifiers)) == 0 {
			o.started = true // a peer sent it
		}
		if ended && len(p.o.Sent.Unsent(id, string(notifier.ActionResolve), o.notifiers)) == 0 {
			o.ended = true // a peer sent it
			delete(p.maint, id)
			continue
		}
		if !isSender {
			continue
		}
		// takeover: a node that just became the sender first learns the
		// sent log of what happened before.
		since := o.info.Start
		if ended {
			since = o.endAt
		}
		if now.Sub(p.senderSince) < Takeover && since.Before(p.senderSince) {
			continue
		}
		o := o
		ns := p.runningLocked(slices.Clone(o.notifiers)) // a reload may have removed some
		if !ended {
			if !o.started && len(ns) > 0 {
				jobs = append(jobs, job{ev: p.maintEventLocked(id, o, now), notifiers: ns, done: func() { o.started = true }})
			}
			continue
		}
		if !o.started {
			// Only the notifiers that were told of its start hear of its end.
			unsent := p.o.Sent.Unsent(id, string(notifier.ActionTrigger), ns)
			ns = slices.DeleteFunc(ns, func(n string) bool { return slices.Contains(unsent, n) })
		}
		if len(ns) == 0 {
			o.ended = true // it began and ended unannounced, or nobody is left to tell
			continue
		}
		jobs = append(jobs, job{ev: p.maintEventLocked(id, o, now), notifiers: ns, done: func() { o.ended = true }})
	}
	slices.SortFunc(jobs, func(a, b job) int { return a.ev.StartedAt.Compare(b.ev.StartedAt) })
	return jobs
}

// maintEventLocked is the start notice of o, or its end once it ended.
func (p *Pager) maintEventLocked(id string, o *maintOcc, now time.Time) notifier.Event {
	info := o.info
	info.Checks = slices.Clone(info.Checks)
	ev := notifier.Event{Action: notifier.ActionTrigger, Kind: notifier.KindMaintenance, IncidentID: id,
		StartedAt: info.Start, At: now.UTC(), Severity: notifier.MaintenanceSeverity, StatusPageURL: p.cfg.StatusPage.URL,
		Maintenance: &info}
	if !o.endAt.IsZero() {
		at := o.endAt
		ev.Action, ev.ResolvedAt = notifier.ActionResolve, &at
	}
	return ev
}

// MaintenanceFollowed is the number of window occurrences this node
// follows (tests).
func (p *Pager) MaintenanceFollowed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.maint)
}
