package mesh

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Receipt is the latest report of a push check's job that a node took
// (POST /api/v1/push/{name} on any node).
type Receipt struct {
	Check string    `json:"check"`
	Node  string    `json:"node"` // the node that took it
	At    time.Time `json:"at"`   // when, by the sender's clock
	// Sent is the sender's clock when it sent the entry: the receiver
	// places At on its own clock as now - (Sent - At), so peers' clocks
	// need not agree.
	Sent time.Time `json:"sent"`
}

func (r Receipt) valid() error {
	switch {
	case !validCheck(r.Check):
		return fmt.Errorf("receipt: bad check name %q", r.Check)
	case !validNode(r.Node):
		return fmt.Errorf("receipt: bad node name %q", r.Node)
	case !validTime(r.At) || !validTime(r.Sent):
		return fmt.Errorf("receipt: time out of range")
	case r.At.After(r.Sent):
		return fmt.Errorf("receipt: taken after it was sent")
	}
	return nil
}

// Receipts is the table of push checks' latest receipts, on this node's
// clock; the latest wins.
type Receipts struct {
	now    func() time.Time
	notify func(check string)
	log    *slog.Logger

	mu   sync.RWMutex
	b    Broadcaster
	self string
	m    map[string]Receipt // check -> latest, At on this node's clock
	keep map[string]bool
}

// NewReceipts returns an empty table that accepts no check until Retain.
func NewReceipts(self string, now func() time.Time, notify func(string), log *slog.Logger) *Receipts {
	return &Receipts{self: self, now: now, notify: notify, log: log, b: nopBroadcaster{}, m: map[string]Receipt{}, keep: map[string]bool{}}
}

func (t *Receipts) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Take records a report of check's job taken by this node now, and
// gossips it.
func (t *Receipts) Take(check string) error {
	now := t.now().UTC()
	r := Receipt{Check: check, Node: t.self, At: now, Sent: now}
	if err := r.valid(); err != nil {
		return err
	}
	t.mu.Lock()
	if !t.keep[check] {
		t.mu.Unlock()
		return fmt.Errorf("mesh: receipt of unknown check %q", check)
	}
	t.m[check] = r
	b := t.b
	t.mu.Unlock()
	t.notify(check)
	return broadcastEntries(b, broadcastName("receipt", check), r)
}

// Last returns when check's job last reported, on this node's clock.
func (t *Receipts) Last(check string) (time.Time, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	r, ok := t.m[check]
	return r.At, ok
}

// Retain keeps the checks in keep and accepts only those.
func (t *Receipts) Retain(keep map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keep = retain(t.m, keep)
}

// MarshalBinary implements cluster.State: every check's latest receipt,
// sent now.
func (t *Receipts) MarshalBinary() ([]byte, error) {
	now := t.now().UTC()
	t.mu.RLock()
	vs := make([]Receipt, 0, len(t.m))
	for _, r := range t.m {
		if r.At.After(now) {
			r.At = now
		}
		r.Sent = now
		vs = append(vs, r)
	}
	t.mu.RUnlock()
	return encodeEntries(vs)
}

// Merge implements cluster.State.
func (t *Receipts) Merge(from string, b []byte) error {
	vs, err := decodeEntries[Receipt](b)
	if err != nil {
		return fmt.Errorf("receipts from %s: %w", from, err)
	}
	now := t.now().UTC()
	var bad invalid
	changed := map[string]bool{}
	t.mu.Lock()
	for _, r := range vs {
		if err := r.valid(); err != nil {
			bad.add(err)
			continue
		}
		if !t.keep[r.Check] {
			continue
		}
		r.At = now.Add(-r.Sent.Sub(r.At)) // on this node's clock
		if old, ok := t.m[r.Check]; ok && !r.At.After(old.At.Add(time.Millisecond)) {
			continue
		}
		t.m[r.Check] = r
		changed[r.Check] = true
	}
	t.mu.Unlock()
	for c := range changed {
		t.notify(c)
	}
	return bad.err("receipts", from)
}
