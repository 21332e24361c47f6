// Package paging turns incidents into notifications, exactly once for the
// cluster. Only the designated sender pages. Each notification passes
// explicit stages, in the manner of Alertmanager's notify stages:
//
//	settle    a trigger waits Settle after its incident opened, so that
//	          the cluster agrees on its id
//	takeover  a node that has just become the sender waits Takeover for
//	          the sent log and claims of incidents that began before
//	depends   a check with depends_on waits depends_wait for a listed
//	          check to go down, and is not paged while one is
//	hold      notifications of a flapping check are held (alerts.go)
//	dedup     notifiers the cluster's sent log shows as delivered are
//	          dropped
//	claim     nothing is sent that an alive peer holds a live claim on;
//	          otherwise this node gossips its claim
//	enqueue   the notification is committed to the outbox; only then is
//	          it marked sent here. When the outbox cannot take it the claim
//	          is released and the next sweep tries again.
//
// Reminders, flapping notices and coverage alerts (alerts.go) take the
// same stages from dedup on. The pager is fed the verdict's changes
// (Apply) and sweeps once a second and after each change (Run).
package paging

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/verdict"
)

const (
	// Settle is how long the designated sender waits after an incident
	// opens before paging, so that the cluster agrees on its id.
	Settle = time.Second
	// Takeover is how long a node that becomes the sender waits for an
	// earlier sender's sent log before paging what it finds unsent.
	Takeover = 5 * time.Second
	// enqueueTimeout bounds one outbox write.
	enqueueTimeout = 10 * time.Second
)

// Outbox is where notifications go: the node's durable outbox.
type Outbox interface {
	Enqueue(ctx context.Context, e notifier.Event, notifiers ...string) error
}

// Checks is the verdict's read side.
type Checks interface {
	View() *verdict.View
	Check(name string) (verdict.CheckView, bool)
	State(name string) (state quorum.State, since time.Time, incident string, start time.Time, ok bool)
	Params(c *config.Check) quorum.Params
}

// Options configure a Pager.
type Options struct {
	Self      string
	Now       func() time.Time
	Checks    Checks
	Sent      *mesh.SentLog
	Claims    *mesh.Claims
	Incidents *mesh.Incidents
	Outbox    Outbox
	Logger    *slog.Logger
	// Maintenance, when set, is the cluster's runtime maintenance windows,
	// whose starts and ends are announced as the config's are
	// (maintenance.go).
	Maintenance Windows
	// Suppressed, when set, is told (without the pager's lock) that a
	// check's incident is suppressed by a listed check's incident (parent),
	// once per incident and parent; an error (the incident not yet stored)
	// tells it again at the next sweep.
	Suppressed func(check, incident, parent string) error
}

// page is the paging record of one incident on this node.
type page struct {
	check     string
	trigger   notifier.Event
	resolve   *notifier.Event
	openedAt  time.Time
	triggered bool // the trigger was queued here or found delivered
	resolved  bool // the resolve was queued here or found delivered
	doneAt    time.Time

	// alerts.go's bookkeeping
	fed      uint8          // changes fed to the check's flap damper
	held     bool           // held while the check flaps
	reminded map[string]int // notifier -> the last reminder produced

	// depends_on: the parents down that suppress this incident's pages,
	// the first one's incident, and whether it ever was suppressed and
	// since when no parent is down.
	suppressedBy   []string
	parentIncident string
	suppressed     bool
	parentsUpAt    time.Time
	parentTold     string // the parent incident Options.Suppressed took
}

// Pager decides what this node sends.
type Pager struct {
	o   Options
	log *slog.Logger

	mu          sync.Mutex
	cfg         *config.Config
	byName      map[string]*config.Check
	router      *notifier.Router
	pages       map[string]*page // by incident id
	senderSince time.Time
	wasSender   bool
	flaps       map[string]*flapState     // by check
	coverage    map[string]*coverageState // by check, for checks unknown or alerted
	certs       map[string]*certState     // by check, for certificates expiring or warned about
	groups      []*grouping               // groups.go: grouped pages, on the sender
	maint       map[string]*maintOcc      // maintenance.go: window occurrences, by notice id
	kick        chan struct{}
	sweeps      atomic.Uint64
}

// New returns a pager with no config; call SetConfig.
func New(o Options) *Pager {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Pager{o: o, log: o.Logger, cfg: &config.Config{}, byName: map[string]*config.Check{},
		router: notifier.NewRouter(nil), pages: map[string]*page{}, flaps: map[string]*flapState{},
		coverage: map[string]*coverageState{}, certs: map[string]*certState{}, kick: make(chan struct{}, 1)}
}

// SetConfig applies a config: routing, flapping and coverage settings.
// Checks new to the pager start watched for coverage (they start unknown).
func (p *Pager) SetConfig(cfg *config.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	byName := make(map[string]*config.Check, len(cfg.Checks))
	for i := range cfg.Checks {
		c := &cfg.Checks[i]
		byName[c.Name] = c
		if p.byName[c.Name] == nil {
			p.watchLocked(c.Name)
		}
	}
	for name := range p.byName {
		if byName[name] == nil {
			delete(p.flaps, name)
			delete(p.coverage, name)
		}
	}
	p.cfg, p.byName, p.router = cfg, byName, notifier.NewRouter(cfg)
}

// Restore takes an incident that was open before a restart.
func (p *Pager) Restore(check, id string, start time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.byName[check]
	if c == nil {
		return
	}
	p.pages[id] = &page{check: check, trigger: p.eventLocked(c, id, start, nil, nil), openedAt: start}
}

// Apply takes one of the verdict's changes.
func (p *Pager) Apply(ch verdict.Change) {
	p.mu.Lock()
	c := p.byName[ch.Check]
	if c == nil {
		p.mu.Unlock()
		return
	}
	if ch.Replaced != "" {
		if pg, ok := p.pages[ch.Replaced]; ok {
			delete(p.pages, ch.Replaced)
			pg.trigger.IncidentID, pg.trigger.StartedAt = ch.IncidentID, ch.Start.UTC()
			pg.parentTold = "" // tell it again under the new id
			p.pages[ch.IncidentID] = pg
		}
	}
	if ch.Opened {
		pg := &page{check: ch.Check, openedAt: p.o.Now(), trigger: p.eventLocked(c, ch.IncidentID, ch.Start, ch.View.Regions, nil)}
		p.pages[ch.IncidentID] = pg
		if len(c.DependsOn) > 0 {
			p.dependsLocked(c, pg, pg.openedAt) // opens suppressed while a listed check is down
		}
	}
	if ch.Resolved {
		if pg, ok := p.pages[ch.IncidentID]; ok {
			at := ch.At.UTC()
			ev := p.eventLocked(c, ch.IncidentID, pg.trigger.StartedAt, ch.View.Regions, &at)
			pg.resolve = &ev
		}
	}
	if ch.To == quorum.StateUnknown || ch.From == quorum.StateUnknown {
		p.watchLocked(ch.Check)
	}
	p.mu.Unlock()
	if ch.Opened || ch.Resolved {
		p.Kick()
	}
	if ch.Opened {
		// The trigger goes out once the incident settled: sweep then, not
		// at the next tick (up to a second later).
		time.AfterFunc(Settle, p.Kick)
	}
}

// Removed closes the incidents of checks removed from the config: the
// resolve of one whose trigger went out is sent under the running
// routing. Call it before SetConfig with the new config.
func (p *Pager) Removed(ctx context.Context, closed []verdict.Closed) {
	now := p.o.Now()
	view := p.o.Checks.View()
	var jobs []job
	p.mu.Lock()
	for _, cl := range closed {
		pg, ok := p.pages[cl.IncidentID]
		delete(p.pages, cl.IncidentID)
		if !ok || !pg.triggered || pg.resolve != nil || view.Sender != p.o.Self {
			continue
		}
		at := now.UTC()
		ev := p.eventLocked(cl.Check, cl.IncidentID, pg.trigger.StartedAt, nil, &at)
		jobs = append(jobs, job{ev: ev, notifiers: p.ungroupedLocked(cl.Check)}) // groups.go: a group resolves its own
	}
	p.mu.Unlock()
	for _, j := range jobs {
		p.deliver(ctx, j, view, now)
	}
}

// Kick asks for a sweep now.
func (p *Pager) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Sweeps counts the sweeps done, for tests to wait on.
func (p *Pager) Sweeps() uint64 { return p.sweeps.Load() }

// Run sweeps every second and on Kick until ctx ends.
func (p *Pager) Run(ctx context.Context) { RunSweeps(ctx, p.kick, p.Sweep) }

// RunSweeps calls sweep every second and on each receive from kick until
// ctx ends: the pager's loop, which the subscribers' fan-out (subscribe/)
// runs too.
func RunSweeps(ctx context.Context, kick <-chan struct{}, sweep func(context.Context)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		if ctx.Err() != nil {
			return
		}
		sweep(ctx)
	}
}

// job is one notification to send through the stages from dedup on.
type job struct {
	ev        notifier.Event
	notifiers []string
	// done marks the producer's record (under the pager's lock) once the
	// notification is queued here or found delivered.
	done func()
	// queued, when set, is told (without the pager's lock, before done)
	// the notifiers this node queued the notification for (groups.go).
	queued func(notifiers []string)
}

// Sweep runs the pager once.
func (p *Pager) Sweep(ctx context.Context) {
	defer p.sweeps.Add(1)
	now := p.o.Now()
	view := p.o.Checks.View()
	isSender := view.Sender == p.o.Self
	p.renewClaims(now)
	p.mu.Lock()
	if isSender && !p.wasSender {
		p.senderSince = now
		p.log.Info("this node is the designated sender")
	}
	p.wasSender = isSender
	jobs := p.alertsLocked(now, isSender)
	jobs = append(jobs, p.pageJobsLocked(now, isSender)...)
	jobs = append(jobs, p.certJobsLocked(now, isSender)...)
	jobs = append(jobs, p.groupJobsLocked(now, isSender)...) // groups.go
	jobs = append(jobs, p.maintJobsLocked(now, isSender)...) // maintenance.go
	parents := p.parentsLocked()
	p.mu.Unlock()
	p.tellParents(parents)
	for _, j := range jobs {
		if ctx.Err() != nil {
			return
		}
		p.deliver(ctx, j, view, now)
	}
}

// pageJobsLocked produces the triggers and resolves due: settle, takeover
// and hold.
func (p *Pager) pageJobsLocked(now time.Time, isSender bool) []job {
	var jobs []job
	for id, pg := range p.pages {
		c := p.byName[pg.check]
		if c == nil {
			delete(p.pages, id)
			continue
		}
		if !pg.doneAt.IsZero() {
			if now.Sub(pg.doneAt) > time.Hour {
				delete(p.pages, id)
			}
			continue
		}
		// Every node follows depends_on, so every node shows what a
		// parent suppresses; only the sender pages.
		mayTrigger := pg.triggered || len(c.DependsOn) == 0 || p.dependsLocked(c, pg, now)
		if !isSender || !pg.doneAt.IsZero() {
			continue
		}
		// takeover: a node that just became the sender (the previous one
		// died, or this one just joined or restarted) first waits for the
		// sent log and claims of incidents that began before.
		if now.Sub(p.senderSince) < Takeover && pg.trigger.StartedAt.Before(p.senderSince) {
			continue
		}
		if pg.held {
			continue // hold: the check is flapping
		}
		notifiers := p.ungroupedLocked(c) // groups.go: a grouping route's notifiers page through the group
		if !pg.triggered {
			if now.Sub(pg.openedAt) < Settle {
				continue // settle
			}
			if !mayTrigger {
				continue // suppressed by a parent, or waiting for one
			}
			p.joinGroupsLocked(c, pg) // groups.go
			ev := pg.trigger
			if st, _, _, _, _ := p.o.Checks.State(pg.check); st == quorum.StateDown {
				if cv, ok := p.o.Checks.Check(pg.check); ok {
					ev.Regions = regionVotes(cv.Regions) // the fullest view
				}
			}
			pg := pg
			jobs = append(jobs, job{ev: ev, notifiers: notifiers, done: func() {
				pg.triggered = true
				if err := p.o.Incidents.MarkPaged(pg.check, pg.trigger.IncidentID); err != nil {
					p.log.Warn("announce paged incident", "incident_id", pg.trigger.IncidentID, "err", err)
				}
			}})
			continue // the resolve waits for the trigger
		}
		if pg.resolve != nil && !pg.resolved {
			pg := pg
			jobs = append(jobs, job{ev: *pg.resolve, notifiers: notifiers, done: func() { pg.resolved, pg.doneAt = true, p.o.Now() }})
		}
	}
	slices.SortFunc(jobs, func(a, b job) int { return a.ev.StartedAt.Compare(b.ev.StartedAt) })
	return jobs
}

// dependsLocked is the depends_on stage of a child's untriggered page: it
// reports whether the trigger may go out. The trigger waits depends_wait
// after the incident opened for a listed check to go down; while any is
// down the page is suppressed (shown, never paged: neither trigger nor
// resolve); once none is, a child still down pages after another
// depends_wait, under its own id. A child that recovers first pages
// nothing.
func (p *Pager) dependsLocked(c *config.Check, pg *page, now time.Time) bool {
	wait := c.DependsWait
	if pg.resolve != nil {
		pg.resolved, pg.doneAt = true, now // over before it could page: nobody is told
		pg.suppressedBy, pg.parentIncident = nil, ""
		return false
	}
	var down []string
	parent := ""
	for _, name := range c.DependsOn {
		if st, _, id, _, ok := p.o.Checks.State(name); ok && st == quorum.StateDown {
			down = append(down, name)
			if parent == "" {
				parent = id
			}
		}
	}
	if len(down) > 0 {
		if !pg.suppressed {
			p.log.Info("incident suppressed: a check it depends on is down", "check", c.Name,
				"incident_id", pg.trigger.IncidentID, "suppressed_by", down, "parent_incident_id", parent)
		}
		pg.suppressed, pg.suppressedBy, pg.parentIncident, pg.parentsUpAt = true, down, parent, time.Time{}
		return false
	}
	if !pg.suppressed {
		return now.Sub(pg.openedAt) >= wait
	}
	if pg.parentsUpAt.IsZero() {
		pg.parentsUpAt = now
		pg.suppressedBy = nil
	}
	return now.Sub(pg.parentsUpAt) >= wait
}

// suppressedPage is a suppression Options.Suppressed is to be told.
type suppressedPage struct {
	pg                      *page
	check, incident, parent string
}

// parentsLocked lists the suppressions Options.Suppressed has not taken.
func (p *Pager) parentsLocked() []suppressedPage {
	if p.o.Suppressed == nil {
		return nil
	}
	var out []suppressedPage
	for id, pg := range p.pages {
		if pg.doneAt.IsZero() && pg.suppressed && pg.parentIncident != "" && pg.parentIncident != pg.parentTold {
			out = append(out, suppressedPage{pg, pg.check, id, pg.parentIncident})
		}
	}
	return out
}

// tellParents tells Options.Suppressed the suppressions it has not taken.
func (p *Pager) tellParents(list []suppressedPage) {
	for _, s := range list {
		if err := p.o.Suppressed(s.check, s.incident, s.parent); err != nil {
			continue // again at the next sweep
		}
		p.mu.Lock()
		if s.pg.trigger.IncidentID == s.incident {
			s.pg.parentTold = s.parent
		}
		p.mu.Unlock()
	}
}

// Parent is the incident that suppresses incident's pages now (depends_on),
// "" if none does.
func (p *Pager) Parent(incident string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pg, ok := p.pages[incident]; ok && pg.doneAt.IsZero() && pg.suppressed && len(pg.suppressedBy) > 0 {
		return pg.parentIncident
	}
	return ""
}

// Suppression is a check's incident held back by depends_on.
type Suppression struct {
	By             []string // the listed checks down now
	ParentIncident string   // the first one's incident
}

// Suppressions lists the checks whose open incident is suppressed now.
func (p *Pager) Suppressions() map[string]Suppression {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]Suppression{}
	for _, pg := range p.pages {
		if pg.doneAt.IsZero() && !pg.triggered && len(pg.suppressedBy) > 0 {
			out[pg.check] = Suppression{By: slices.Clone(pg.suppressedBy), ParentIncident: pg.parentIncident}
		}
	}
	return out
}

// deliver runs one notification through dedup, claim and enqueue.
func (p *Pager) deliver(ctx context.Context, j job, view *verdict.View, now time.Time) {
	id, key := j.ev.IncidentID, j.ev.Key()
	log := p.log.With("check", j.ev.Check, "incident_id", id, "action", key, "kind", j.ev.Kind)
	// dedup
	ns := p.o.Sent.Unsent(id, key, j.notifiers)
	if len(ns) == 0 {
		p.markDone(j)
		return
	}
	// claim
	if holder, held := p.o.Claims.Held(id, key, now, view.IsAlive); held {
		log.Debug("claimed by a peer; not sending", "holder", holder)
		return
	}
	if err := p.o.Claims.Claim(id, key, ns); err != nil {
		log.Warn("gossip send claim", "err", err)
	}
	// enqueue
	ectx, cancel := context.WithTimeout(ctx, enqueueTimeout)
	err := p.o.Outbox.Enqueue(ectx, j.ev, ns...)
	cancel()
	if err != nil {
		log.Error("queue notification; will retry", "notifiers", ns, "err", err)
		if err := p.o.Claims.Release(id, key); err != nil {
			log.Warn("release send claim", "err", err)
		}
		return
	}
	if j.queued != nil { // groups.go
		j.queued(ns)
	}
	p.markDone(j)
}

func (p *Pager) markDone(j job) {
	if j.done == nil {
		return
	}
	p.mu.Lock()
	j.done()
	p.mu.Unlock()
}

// renewClaims renews this node's claims whose deliveries are still
// pending and drops the finished ones.
func (p *Pager) renewClaims(now time.Time) {
	for _, c := range p.o.Claims.Own() {
		if len(p.o.Sent.Unsent(c.Incident, c.Action, c.Notifiers)) == 0 {
			p.o.Claims.Drop(c.Incident, c.Action)
			continue
		}
		if now.Sub(c.At) >= mesh.ClaimRenew {
			if err := p.o.Claims.Claim(c.Incident, c.Action, c.Notifiers); err != nil {
				p.log.Warn("renew send claim", "incident_id", c.Incident, "err", err)
			}
		}
	}
}

// notifiersLocked is the notifiers that get c's incidents: its notify list
// and its routes, limited to the notifiers this node runs.
func (p *Pager) notifiersLocked(c *config.Check) []string {
	return p.runningLocked(p.router.Notifiers(c))
}

func (p *Pager) runningLocked(names []string) []string {
	return slices.DeleteFunc(names, func(name string) bool { return p.cfg.NotifierByName(name) == nil })
}

// eventLocked describes an incident for the notifiers.
func (p *Pager) eventLocked(c *config.Check, id string, start time.Time, regions map[string]verdict.RegionView, resolvedAt *time.Time) notifier.Event {
	ev := notifier.Event{
		Action: notifier.ActionTrigger, IncidentID: id, Check: c.Name, DisplayName: c.DisplayName, Target: c.TargetString(),
		StartedAt: start.UTC(), Severity: c.Severity, StatusPageURL: p.cfg.StatusPage.URL, Group: c.Group,
		Regions: regionVotes(regions),
	}
	if resolvedAt != nil {
		ev.Action, ev.ResolvedAt = notifier.ActionResolve, resolvedAt
	}
	return ev
}

// regionVotes turns the verdict's regions into an event's.
func regionVotes(regions map[string]verdict.RegionView) map[string]notifier.RegionVote {
	out := make(map[string]notifier.RegionVote, len(regions))
	for r, rv := range regions {
		out[r] = notifier.RegionVote{Vote: string(rv.Vote), Error: rv.Code, LatencyMS: rv.LatencyMS}
	}
	return out
}

// Pending is the number of incidents this node still has notifications
// to decide on (tests, metrics).
func (p *Pager) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pg := range p.pages {
		if pg.doneAt.IsZero() {
			n++
		}
	}
	return n
}
