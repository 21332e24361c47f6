package mesh

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// HealthEntry is a node's health: its canary verdict (while not OK its
// votes do not count) and whether it can write its data directory (while
// Degraded it does not act as the designated sender).
type HealthEntry struct {
	Node           string    `json:"node"`
	OK             bool      `json:"ok"`
	Reason         string    `json:"reason,omitempty"`
	Degraded       bool      `json:"degraded,omitempty"`
	DegradedReason string    `json:"degraded_reason,omitempty"`
	At             time.Time `json:"at"`
}

func (h HealthEntry) valid() error {
	switch {
	case !validNode(h.Node):
		return fmt.Errorf("health: bad node name %q", h.Node)
	case len(h.Reason) > maxReasonLen || len(h.DegradedReason) > maxReasonLen:
		return fmt.Errorf("health: reason of %d bytes", len(h.Reason))
	case !validTime(h.At):
		return fmt.Errorf("health: time out of range")
	}
	return nil
}

const (
	// maxHealth bounds the nodes whose health is kept.
	maxHealth = 4096
	// healthTTL is how long a node's verdict is kept without news.
	healthTTL = 24 * time.Hour
)

// Health is the canary table: each node's latest canary verdict. A node
// without an entry counts as healthy.
type Health struct {
	self     string
	now      func() time.Time
	onChange func()
	log      *slog.Logger

	mu sync.RWMutex
	b  Broadcaster
	m  map[string]HealthEntry
}

// NewHealth returns an empty table; onChange (may be nil) is told when a
// peer's verdict or degraded flag flips.
func NewHealth(self string, now func() time.Time, onChange func(), log *slog.Logger) *Health {
	if onChange == nil {
		onChange = func() {}
	}
	return &Health{self: self, now: now, onChange: onChange, log: log, b: nopBroadcaster{}, m: map[string]HealthEntry{}}
}

func (t *Health) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Put records and gossips this node's canary verdict.
func (t *Health) Put(ok bool, reason string) error {
	return t.update(func(h *HealthEntry) { h.OK, h.Reason = ok, reason })
}

// PutDegraded records and gossips whether this node can write its data
// directory.
func (t *Health) PutDegraded(degraded bool, reason string) error {
	return t.update(func(h *HealthEntry) { h.Degraded, h.DegradedReason = degraded, reason })
}

func (t *Health) update(f func(*HealthEntry)) error {
	t.mu.Lock()
	h, ok := t.m[t.self]
	if !ok {
		h = HealthEntry{Node: t.self, OK: true}
	}
	f(&h)
	h.Reason, h.DegradedReason = cut(h.Reason), cut(h.DegradedReason)
	h.At = t.now().UTC()
	if !h.At.After(t.m[t.self].At) {
		h.At = t.m[t.self].At.Add(time.Millisecond) // a newer entry wins at peers
	}
	t.m[t.self] = h
	b := t.b
	t.mu.Unlock()
	return broadcastEntries(b, "health", h)
}

func cut(s string) string {
	if len(s) > maxReasonLen {
		return s[:maxReasonLen]
	}
	return s
}

// Degraded lists the nodes that cannot write their data directory, this
// one included.
func (t *Health) Degraded() map[string]bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := map[string]bool{}
	for n, h := range t.m {
		if h.Degraded {
			out[n] = true
		}
	}
	return out
}

// Own is this node's entry.
func (t *Health) Own() HealthEntry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	h, ok := t.m[t.self]
	if !ok {
		return HealthEntry{Node: t.self, OK: true}
	}
	return h
}

// Healthy reports whether node's canaries pass (true when unknown), and if
// not, why.
func (t *Health) Healthy(node string) (bool, string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	h, ok := t.m[node]
	if !ok {
		return true, ""
	}
	return h.OK, h.Reason
}

// MarshalBinary implements cluster.State.
func (t *Health) MarshalBinary() ([]byte, error) {
	t.mu.RLock()
	vs := make([]HealthEntry, 0, len(t.m))
	for _, h := range t.m {
		vs = append(vs, h)
	}
	t.mu.RUnlock()
	return encodeEntries(vs)
}

// Merge implements cluster.State. A node's newest verdict wins; this
// node's own is not taken from peers.
func (t *Health) Merge(from string, b []byte) error {
	vs, err := decodeEntries[HealthEntry](b)
	if err != nil {
		return fmt.Errorf("health from %s: %w", from, err)
	}
	var bad invalid
	flipped := false
	t.mu.Lock()
	for _, h := range vs {
		if err := h.valid(); err != nil {
			bad.add(err)
			continue
		}
		if h.Node == t.self {
			continue
		}
		old, have := t.m[h.Node]
		if have && !h.At.After(old.At) {
			continue
		}
		if !have && len(t.m) >= maxHealth {
			continue
		}
		t.m[h.Node] = h
		wasOK := !have || old.OK // a node without an entry counts as healthy
		flipped = flipped || wasOK != h.OK || old.Degraded != h.Degraded
	}
	t.mu.Unlock()
	if flipped {
		t.onChange()
	}
	return bad.err("health entries", from)
}

// Expire forgets verdicts not renewed for a day.
func (t *Health) Expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for n, h := range t.m {
		if n != t.self && now.Sub(h.At) > healthTTL {
			delete(t.m, n)
		}
	}
}
