package subscribe

import (
	"context"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/paging"
)

// The fan-out. Every node learns every incident event: the verdict's
// changes (an incident opened, resolved) and operators' writes (a manual
// incident opened, an update, a manual incident resolved), its own and
// its peers'. Only the designated sender sends. For each event it passes
// the stages the pager passes (paging/), per subscriber:
//
//	settle    an event waits Settle after this node learned it, so the
//	          cluster agrees on an incident's id
//	takeover  a node that has just become the sender waits Takeover for
//	          the subscribers' sent log and claims of earlier events
//	dedup     subscribers the subscribers' sent log shows as served are
//	          skipped, as are those the event was queued for here
//	claim     nothing is sent of an event an alive peer holds a live claim
//	          on; otherwise this node gossips its claim, renewed while its
//	          deliveries are pending
//	enqueue   one outbox entry per subscriber ("sub:SUBSCRIBER:INCIDENT",
//	          the event's key), committed before it counts as queued
//
// A subscriber gets the events that happened after it subscribed. The
// outbox consults the subscribers' sent log before each attempt (Log) and
// records each delivery in it, so a new sender sends only what nobody
// delivered. Events older than MaxAge are dropped unsent.

// Timing of the fan-out.
const (
	Settle   = time.Second
	Takeover = 5 * time.Second
	// MaxAge bounds how long an event waits to be sent.
	MaxAge = 24 * time.Hour
	// maxEvents bounds the events remembered; the oldest go first.
	maxEvents = 1000
	// enqueueTimeout bounds one outbox write.
	enqueueTimeout = 10 * time.Second
)

// Event is one incident event every subscriber is told of once.
type Event struct {
	Incident string          // the incident's id
	Action   notifier.Action // trigger (started), update, resolve
	Seq      int             // an update's number (UpdateSeq); 0 otherwise
	Check    string          // the check of an automatic incident
	Title    string          // the incident's public title
	Status   string          // an update's status: investigating, identified, monitoring, resolved
	Body     string          // the update's text, or the incident's public details
	Manual   bool            // an operator's incident
	At       time.Time       // when it happened, on this node's clock
}

// Key is the event's key in the outbox and the sent log: trigger,
// resolve, update#N.
func (e Event) Key() string {
	return notifier.Event{Action: e.Action, Seq: e.Seq}.Key()
}

// UpdateSeq numbers an operator's update by its id: the same on every
// node, from 1.
func UpdateSeq(updateID string) int {
	h := fnv.New32a()
	h.Write([]byte(updateID))
	return int(h.Sum32()&0x3fffffff) + 1
}

// OutboxID is the outbox's incident id of subscriber sub's messages of
// incident.
func OutboxID(sub, incident string) string {
	return notifier.SubscriberPrefix + sub + ":" + incident
}

// splitOutboxID is OutboxID's inverse; ok is false for a confirmation
// mail's id.
func splitOutboxID(id string) (sub, incident string, ok bool) {
	rest, found := strings.CutPrefix(id, notifier.SubscriberPrefix)
	if !found {
		return "", "", false
	}
	sub, incident, ok = strings.Cut(rest, ":")
	if !ok || sub == "confirm" || sub == "" || incident == "" {
		return "", "", false
	}
	return sub, incident, true
}

// Outbox is where messages go: the node's subscriptions outbox.
type Outbox interface {
	Enqueue(ctx context.Context, e notifier.Event, notifiers ...string) error
}

// Composer builds an event's message to one subscriber.
type Composer func(e Event, sub mesh.Subscriber) (*notifier.SubscriberMessage, error)

// DispatchOptions configure a Dispatcher.
type DispatchOptions struct {
	Self string
	Now  func() time.Time
	// Sender reports whether this node is the designated sender now, and
	// which peers are alive.
	Sender func() (isSender bool, alive func(node string) bool)
	// Subscribers are the live subscribers (mesh.Subscribers.Live).
	Subscribers func() []mesh.Subscriber
	Sent        *mesh.SentLog // the subscribers' sent log
	Claims      *mesh.Claims  // the subscribers' claims
	Outbox      Outbox
	Provider    string // the outbox's subscriber provider
	Compose     Composer
	Logger      *slog.Logger
}

type pending struct {
	ev     Event
	learnt time.Time       // when this node learnt it
	queued map[string]bool // subscribers it was queued for here
}

// Dispatcher decides what this node sends to subscribers.
type Dispatcher struct {
	o   DispatchOptions
	log *slog.Logger

	mu          sync.Mutex
	events      map[string]*pending // by incident and key
	wasSender   bool
	senderSince time.Time
	kick        chan struct{}
}

// NewDispatcher returns a dispatcher with no events.
func NewDispatcher(o DispatchOptions) *Dispatcher {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Dispatcher{o: o, log: o.Logger, events: map[string]*pending{}, kick: make(chan struct{}, 1)}
}

// Add takes an event (the first of one incident and key counts); it never
// blocks.
func (d *Dispatcher) Add(e Event) {
	if e.Incident == "" {
		return
	}
	now := d.o.Now()
	k := e.Incident + "/" + e.Key()
	d.mu.Lock()
	if _, ok := d.events[k]; !ok {
		if len(d.events) >= maxEvents {
			d.dropOldestLocked()
		}
		if e.At.IsZero() {
			e.At = now
		}
		d.events[k] = &pending{ev: e, learnt: now, queued: map[string]bool{}}
	}
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) dropOldestLocked() {
	var oldest string
	var at time.Time
	for k, p := range d.events {
		if oldest == "" || p.ev.At.Before(at) {
			oldest, at = k, p.ev.At
		}
	}
	delete(d.events, oldest)
}

// Len is the number of events remembered (tests).
func (d *Dispatcher) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.events)
}

// Run sweeps every second and after each Add until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) { paging.RunSweeps(ctx, d.kick, d.Sweep) }

type job struct {
	p    *pending
	subs []mesh.Subscriber
}

// Sweep runs the stages once.
func (d *Dispatcher) Sweep(ctx context.Context) {
	now := d.o.Now()
	isSender, alive := d.o.Sender()
	if alive == nil {
		alive = func(string) bool { return false }
	}
	subs := d.o.Subscribers()
	d.mu.Lock()
	if isSender && !d.wasSender {
		d.senderSince = now
	}
	d.wasSender = isSender
	var jobs []job
	// An incident's events reach a subscriber in order: one waiting to
	// settle or for the takeover holds back the incident's later ones.
	waiting := map[string]time.Time{}
	for k, p := range d.events {
		if now.Sub(p.ev.At) > MaxAge || now.Sub(p.learnt) > MaxAge {
			delete(d.events, k)
			continue
		}
		if !isSender {
			continue
		}
		if now.Sub(p.learnt) < Settle || (now.Sub(d.senderSince) < Takeover && p.learnt.Before(d.senderSince)) {
			if w, ok := waiting[p.ev.Incident]; !ok || p.ev.At.Before(w) {
				waiting[p.ev.Incident] = p.ev.At
			}
		}
	}
	for _, p := range d.events {
		if !isSender {
			break
		}
		if w, ok := waiting[p.ev.Incident]; ok && !p.ev.At.Before(w) {
			continue // settle, takeover, or an earlier event of the incident waits
		}
		var due []mesh.Subscriber
		for _, s := range subs {
			if s.Created.After(p.ev.At) || p.queued[s.ID] {
				continue
			}
			if _, done := d.o.Sent.DeliveredBy(p.ev.Incident, p.ev.Key(), s.ID); done {
				continue // dedup
			}
			due = append(due, s)
		}
		if len(due) > 0 {
			jobs = append(jobs, job{p: p, subs: due})
		}
	}
	d.mu.Unlock()
	d.renewClaims(now, subs)
	slices.SortFunc(jobs, func(a, b job) int { return a.p.ev.At.Compare(b.p.ev.At) })
	for _, j := range jobs {
		if ctx.Err() != nil {
			return
		}
		d.deliver(ctx, j, now, alive)
	}
}

// deliver runs one event's due subscribers through claim and enqueue.
func (d *Dispatcher) deliver(ctx context.Context, j job, now time.Time, alive func(string) bool) {
	e := j.p.ev
	log := d.log.With("incident_id", e.Incident, "action", e.Key())
	if holder, held := d.o.Claims.Held(e.Incident, e.Key(), now, alive); held {
		log.Debug("subscribers: a peer is delivering this event", "holder", holder)
		return
	}
	if err := d.o.Claims.Claim(e.Incident, e.Key(), nil); err != nil {
		log.Warn("subscribers: gossip send claim", "err", err)
	}
	queued := 0
	for _, s := range j.subs {
		msg, err := d.o.Compose(e, s)
		if err != nil {
			log.Error("subscribers: compose message; not sent", "subscriber", s.ID, "err", err)
			d.markQueued(j.p, s.ID) // it would fail again
			continue
		}
		ev := notifier.Event{Kind: notifier.KindSubscriber, Action: e.Action, Seq: e.Seq, IncidentID: OutboxID(s.ID, e.Incident),
			Check: e.Check, StartedAt: e.At.UTC(), Subscriber: msg}
		ectx, cancel := context.WithTimeout(ctx, enqueueTimeout)
		err = d.o.Outbox.Enqueue(ectx, ev, d.o.Provider)
		cancel()
		if err != nil {
			log.Error("subscribers: queue message; will retry", "subscriber", s.ID, "err", err)
			if queued == 0 {
				if err := d.o.Claims.Release(e.Incident, e.Key()); err != nil {
					log.Warn("subscribers: release send claim", "err", err)
				}
			}
			return
		}
		queued++
		d.markQueued(j.p, s.ID)
	}
	if queued > 0 {
		log.Info("subscribers: event queued", "subscribers", queued)
	}
}

func (d *Dispatcher) markQueued(p *pending, id string) {
	d.mu.Lock()
	p.queued[id] = true
	d.mu.Unlock()
}

// renewClaims renews this node's claims whose deliveries are pending and
// drops the others.
func (d *Dispatcher) renewClaims(now time.Time, subs []mesh.Subscriber) {
	for _, c := range d.o.Claims.Own() {
		d.mu.Lock()
		p := d.events[c.Incident+"/"+c.Action]
		var ids []string
		if p != nil {
			for id := range p.queued {
				ids = append(ids, id)
			}
		}
		d.mu.Unlock()
		if len(d.o.Sent.Unsent(c.Incident, c.Action, ids)) == 0 {
			d.o.Claims.Drop(c.Incident, c.Action)
			continue
		}
		if now.Sub(c.At) >= mesh.ClaimRenew {
			if err := d.o.Claims.Claim(c.Incident, c.Action, nil); err != nil {
				d.log.Warn("subscribers: renew send claim", "incident_id", c.Incident, "err", err)
			}
		}
	}
}

// Log is the subscribers' sent log as the subscriptions outbox's
// notifier.Log: the outbox skips what another node delivered to a
// subscriber and records its own deliveries, which the log gossips.
// Confirmation mails are this node's alone and are not recorded.
type Log struct {
	Sent   *mesh.SentLog
	Logger *slog.Logger
}

var _ notifier.Log = Log{}

// DeliveredBy implements notifier.Log.
func (l Log) DeliveredBy(incident, key, _ string) (string, bool) {
	sub, inc, ok := splitOutboxID(incident)
	if !ok {
		return "", false
	}
	return l.Sent.DeliveredBy(inc, key, sub)
}

// Delivered implements notifier.Log.
func (l Log) Delivered(e notifier.Event, _ string) {
	sub, inc, ok := splitOutboxID(e.IncidentID)
	if !ok {
		return
	}
	if err := l.Sent.Record(mesh.Sent{Incident: inc, Start: e.StartedAt, Action: e.Key(), Notifier: sub}); err != nil && l.Logger != nil {
		l.Logger.Warn("subscribers: gossip sent log", "incident_id", inc, "subscriber", sub, "err", err)
	}
}

// Rename moves the events of incident old to id new: the verdict took
// the designated sender's id for an incident it had named itself.
func (d *Dispatcher) Rename(old, new string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, p := range d.events {
		if p.ev.Incident != old {
			continue
		}
		delete(d.events, k)
		p.ev.Incident = new
		nk := new + "/" + p.ev.Key()
		if _, ok := d.events[nk]; !ok {
			d.events[nk] = p
		}
	}
}
