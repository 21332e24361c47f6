package mesh

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Sent records that a node delivered a notification, so no node sends it
// again: not the sender after a restart, not a node that takes over.
type Sent struct {
	Node     string    `json:"node"`
	Incident string    `json:"incident"`
	Check    string    `json:"check,omitempty"`
	Start    time.Time `json:"start"`  // the incident's start
	Action   string    `json:"action"` // the event's key: trigger, resolve, repeat#N
	Notifier string    `json:"notifier"`
	At       time.Time `json:"at"` // when it was delivered (the deliverer's clock)
}

// SentKey identifies one delivery.
type SentKey struct{ Incident, Action, Notifier string }

func (s Sent) key() SentKey { return SentKey{s.Incident, s.Action, s.Notifier} }

func (s Sent) valid() error {
	switch {
	case !validNode(s.Node):
		return fmt.Errorf("sent: bad node name %q", s.Node)
	case s.Check != "" && !validCheck(s.Check):
		return fmt.Errorf("sent: bad check name %q", s.Check)
	case s.Incident == "" || len(s.Incident) > maxIDLen:
		return fmt.Errorf("sent: bad incident id %q", s.Incident)
	case s.Action == "" || len(s.Action) > 32:
		return fmt.Errorf("sent: bad action %q", s.Action)
	case s.Notifier == "" || len(s.Notifier) > MaxNameLen:
		return fmt.Errorf("sent: bad notifier %q", s.Notifier)
	case !validOptTime(s.Start) || !validTime(s.At):
		return fmt.Errorf("sent: time out of range")
	}
	return nil
}

const (
	// sentTTL is how long a delivery is remembered.
	sentTTL = 14 * 24 * time.Hour
	// maxSent bounds the log; past it the oldest deliveries are forgotten.
	maxSent = 20_000
)

// ActionTrigger is the key of an incident's first notification.
const ActionTrigger = "trigger"

// SentLog is the cluster's sent log. The first record of a delivery is
// kept; every node shares the whole log in push-pull.
type SentLog struct {
	self   string
	now    func() time.Time
	notify func(check string)
	log    *slog.Logger

	max int           // bound on the deliveries held (maxSent by default)
	ttl time.Duration // how long a delivery is remembered (sentTTL by default)

	mu    sync.RWMutex
	b     Broadcaster
	m     map[SentKey]Sent
	paged map[string]Sent // check -> its latest incident's delivered trigger
	trig  map[string]int  // incident -> notifiers its trigger was delivered to
}

// NewSentLog returns an empty log; notify is told the check of a trigger
// learned from a peer.
func NewSentLog(self string, now func() time.Time, notify func(string), log *slog.Logger) *SentLog {
	return NewSentLogBounded(self, now, notify, log, maxSent, sentTTL)
}

// NewSentLogBounded is NewSentLog holding at most max deliveries, each
// for ttl (the subscribers' sent log: subscribers.go).
func NewSentLogBounded(self string, now func() time.Time, notify func(string), log *slog.Logger, max int, ttl time.Duration) *SentLog {
	if notify == nil {
		notify = func(string) {}
	}
	return &SentLog{self: self, now: now, notify: notify, log: log, b: nopBroadcaster{}, max: max, ttl: ttl,
		m: map[SentKey]Sent{}, paged: map[string]Sent{}, trig: map[string]int{}}
}

func (t *SentLog) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Record logs and gossips a delivery made by this node.
func (t *SentLog) Record(s Sent) error {
	s.Node, s.At = t.self, t.now().UTC()
	if err := s.valid(); err != nil {
		return err
	}
	t.mu.Lock()
	t.addLocked(s)
	b := t.b
	t.mu.Unlock()
	return broadcastEntries(b, broadcastName("sent", s.Incident, s.Action, s.Notifier), s)
}

// addLocked adds s unless the delivery is known, and reports whether it
// did.
func (t *SentLog) addLocked(s Sent) bool {
	if _, ok := t.m[s.key()]; ok {
		return false
	}
	if len(t.m) >= t.max {
		t.evictOldestLocked()
	}
	t.m[s.key()] = s
	if s.Action == ActionTrigger {
		t.trig[s.Incident]++
	}
	if s.Action == ActionTrigger && s.Check != "" {
		if old, ok := t.paged[s.Check]; !ok || s.Start.After(old.Start) || (s.Start.Equal(old.Start) && s.Incident < old.Incident) {
			t.paged[s.Check] = s
		}
	}
	return true
}

func (t *SentLog) evictOldestLocked() {
	var oldest SentKey
	var at time.Time
	first := true
	for k, s := range t.m {
		if first || s.At.Before(at) {
			oldest, at, first = k, s.At, false
		}
	}
	t.deleteLocked(oldest)
}

func (t *SentLog) deleteLocked(k SentKey) {
	s, ok := t.m[k]
	if !ok {
		return
	}
	delete(t.m, k)
	if s.Action == ActionTrigger {
		if t.trig[s.Incident]--; t.trig[s.Incident] <= 0 {
			delete(t.trig, s.Incident)
		}
	}
	if p, ok := t.paged[s.Check]; ok && p.key() == k {
		delete(t.paged, s.Check)
	}
}

// DeliveredBy reports which node delivered (incident, action, notifier).
func (t *SentLog) DeliveredBy(incident, action, notifier string) (string, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s, ok := t.m[SentKey{incident, action, notifier}]
	return s.Node, ok
}

// Unsent returns the notifiers of names for which (incident, action) was
// not delivered.
func (t *SentLog) Unsent(incident, action string, names []string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for _, n := range names {
		if _, ok := t.m[SentKey{incident, action, n}]; !ok {
			out = append(out, n)
		}
	}
	return out
}

// Triggered reports whether a trigger of incident was delivered to any
// notifier.
func (t *SentLog) Triggered(incident string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.trig[incident] > 0
}

// Paged returns the delivered trigger of check's latest paged incident.
func (t *SentLog) Paged(check string) (Sent, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s, ok := t.paged[check]
	return s, ok
}

// Len is the number of deliveries held.
func (t *SentLog) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// Expire forgets deliveries older than sentTTL.
func (t *SentLog) Expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, s := range t.m {
		if now.Sub(s.At) > t.ttl {
			t.deleteLocked(k)
		}
	}
}

// MarshalBinary implements cluster.State: the whole log.
func (t *SentLog) MarshalBinary() ([]byte, error) {
	t.mu.RLock()
	vs := make([]Sent, 0, len(t.m))
	for _, s := range t.m {
		vs = append(vs, s)
	}
	t.mu.RUnlock()
	return encodeEntries(vs)
}

// Merge implements cluster.State.
func (t *SentLog) Merge(from string, b []byte) error {
	vs, err := decodeEntries[Sent](b)
	if err != nil {
		return fmt.Errorf("sent log from %s: %w", from, err)
	}
	var bad invalid
	triggered := map[string]bool{}
	t.mu.Lock()
	for _, s := range vs {
		if err := s.valid(); err != nil {
			bad.add(err)
			continue
		}
		if t.addLocked(s) && s.Action == ActionTrigger && s.Check != "" {
			triggered[s.Check] = true
		}
	}
	t.mu.Unlock()
	for c := range triggered {
		t.notify(c)
	}
	return bad.err("sent log entries", from)
}

// All returns a copy of the log.
func (t *SentLog) All() []Sent {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Sent, 0, len(t.m))
	for _, s := range t.m {
		out = append(out, s)
	}
	return out
}
