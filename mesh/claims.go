package mesh

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Send claims. The designated sender gossips a claim before it queues a
// notification and renews it while the delivery is pending; it gossips the
// sent log once the provider accepted, and releases the claim when it
// could not queue. A node that becomes the sender does not send what a
// live, alive peer has claimed: a slow delivery (a provider that keeps
// answering 503) is not duplicated by a takeover. When the claimer dies or
// its lease runs out unrenewed, the new sender pages.
const (
	// ClaimLease is how long a claim holds without renewal; longer than
	// the outbox's longest backoff (30 s), so a node retrying a slow
	// provider renews it several times before it could lapse.
	ClaimLease = 2 * time.Minute
	// ClaimRenew is how often the claimer renews a pending claim.
	ClaimRenew = 30 * time.Second
	// maxClaims bounds the table.
	maxClaims = 20_000
)

// Claim says Node has queued Action of Incident for Notifiers and is
// delivering it; Released says it gave the claim up.
type Claim struct {
	Node      string    `json:"node"`
	Incident  string    `json:"incident"`
	Action    string    `json:"action"`
	Notifiers []string  `json:"notifiers"`
	At        time.Time `json:"at"`
	Released  bool      `json:"released,omitempty"`
	// AgeMS is how old the claim was when sent; Recv is when it was made
	// on this node's clock. A lease runs on Recv: peers' clocks are not
	// ours.
	AgeMS int64     `json:"age_ms,omitempty"`
	Recv  time.Time `json:"-"`
}

// ClaimKey identifies what is claimed.
type ClaimKey struct{ Incident, Action string }

func (c Claim) key() ClaimKey { return ClaimKey{c.Incident, c.Action} }

func (c Claim) valid() error {
	switch {
	case !validNode(c.Node):
		return fmt.Errorf("claim: bad node name %q", c.Node)
	case c.Incident == "" || len(c.Incident) > maxIDLen:
		return fmt.Errorf("claim: bad incident id %q", c.Incident)
	case c.Action == "" || len(c.Action) > 32:
		return fmt.Errorf("claim: bad action %q", c.Action)
	case len(c.Notifiers) > maxNotifiers:
		return fmt.Errorf("claim: %d notifiers", len(c.Notifiers))
	case !validTime(c.At):
		return fmt.Errorf("claim: time out of range")
	case c.AgeMS < 0 || c.AgeMS > int64(24*time.Hour/time.Millisecond):
		return fmt.Errorf("claim: age %d ms", c.AgeMS)
	}
	for _, n := range c.Notifiers {
		if n == "" || len(n) > MaxNameLen {
			return fmt.Errorf("claim: bad notifier %q", n)
		}
	}
	return nil
}

// Claims is the table of send claims; the newest claim per (incident,
// action) wins.
type Claims struct {
	self string
	now  func() time.Time
	log  *slog.Logger

	mu sync.RWMutex
	b  Broadcaster
	m  map[ClaimKey]Claim
}

// NewClaims returns an empty table.
func NewClaims(self string, now func() time.Time, log *slog.Logger) *Claims {
	return &Claims{self: self, now: now, log: log, b: nopBroadcaster{}, m: map[ClaimKey]Claim{}}
}

func (t *Claims) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Claim records and gossips this node's claim (a new one or a renewal).
func (t *Claims) Claim(incident, action string, notifiers []string) error {
	now := t.now().UTC()
	return t.put(Claim{Node: t.self, Incident: incident, Action: action, Notifiers: slices.Clone(notifiers), At: now, Recv: now})
}

// Release gives up this node's claim (it could not queue the
// notification), so the next sender need not wait for the lease.
func (t *Claims) Release(incident, action string) error {
	t.mu.RLock()
	c, ok := t.m[ClaimKey{incident, action}]
	t.mu.RUnlock()
	if !ok || c.Node != t.self {
		return nil
	}
	c.Released, c.At = true, t.now().UTC()
	c.Recv = c.At
	return t.put(c)
}

func (t *Claims) put(c Claim) error {
	if err := c.valid(); err != nil {
		return err
	}
	t.mu.Lock()
	if _, ok := t.m[c.key()]; !ok && len(t.m) >= maxClaims {
		t.mu.Unlock()
		return fmt.Errorf("mesh: claim table full (%d)", maxClaims)
	}
	t.m[c.key()] = c
	b := t.b
	t.mu.Unlock()
	return broadcastEntries(b, broadcastName("claim", c.Incident, c.Action), c)
}

// Held reports which peer, if any, holds a live claim on (incident,
// action) at now: not released, its lease not run out, and alive.
func (t *Claims) Held(incident, action string, now time.Time, alive func(node string) bool) (string, bool) {
	t.mu.RLock()
	c, ok := t.m[ClaimKey{incident, action}]
	t.mu.RUnlock()
	if !ok || c.Released || c.Node == t.self || now.Sub(c.Recv) >= ClaimLease || !alive(c.Node) {
		return "", false
	}
	return c.Node, true
}

// Own returns this node's unreleased claims.
func (t *Claims) Own() []Claim {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Claim
	for _, c := range t.m {
		if c.Node == t.self && !c.Released {
			out = append(out, c)
		}
	}
	return out
}

// Drop forgets this node's claim: its delivery finished.
func (t *Claims) Drop(incident, action string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.m[ClaimKey{incident, action}]; ok && c.Node == t.self {
		delete(t.m, c.key())
	}
}

// Expire forgets peers' claims long past their lease.
func (t *Claims) Expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, c := range t.m {
		if c.Node != t.self && now.Sub(c.Recv) > 2*ClaimLease {
			delete(t.m, k)
		}
	}
}

// MarshalBinary implements cluster.State.
func (t *Claims) MarshalBinary() ([]byte, error) {
	now := t.now()
	t.mu.RLock()
	vs := make([]Claim, 0, len(t.m))
	for _, c := range t.m {
		c.AgeMS = max(0, now.Sub(c.Recv).Milliseconds())
		vs = append(vs, c)
	}
	t.mu.RUnlock()
	return encodeEntries(vs)
}

// Merge implements cluster.State: a peer's claim replaces an older one.
func (t *Claims) Merge(from string, b []byte) error {
	vs, err := decodeEntries[Claim](b)
	if err != nil {
		return fmt.Errorf("claims from %s: %w", from, err)
	}
	var bad invalid
	now := t.now()
	t.mu.Lock()
	for _, c := range vs {
		if err := c.valid(); err != nil {
			bad.add(err)
			continue
		}
		if c.Node == t.self {
			continue
		}
		c.Recv = now.Add(-time.Duration(c.AgeMS) * time.Millisecond)
		old, have := t.m[c.key()]
		// One claimer's claims are ordered by its clock, different
		// claimers' by when they were made on this node's.
		if have && ((old.Node == c.Node && !c.At.After(old.At)) || (old.Node != c.Node && !c.Recv.After(old.Recv))) {
			continue
		}
		if !have && len(t.m) >= maxClaims {
			continue
		}
		t.m[c.key()] = c
	}
	t.mu.Unlock()
	return bad.err("claims", from)
}
