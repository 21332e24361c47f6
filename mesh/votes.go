package mesh

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Vote values, as quorum.Vote spells them.
const (
	VoteUp      = "up"
	VoteDown    = "down"
	VoteAbstain = "abstain"
)

// Vote is one node's latest vote on one check.
type Vote struct {
	Node      string
	Region    string
	Check     string
	Vote      string    // up, down or abstain
	At        time.Time // when the node voted (its clock), millisecond precision
	Failures  int       // its current run of consecutive failures
	Code      string    // error code of its latest result ("" when it passed)
	LatencyMS float64   // latency of its latest result
	DownSince time.Time // when its vote turned down (zero unless Vote is down)
	// Key is the digest of the check's settings the node probes with
	// (config.Check.ProbeKey): votes made with other settings than the
	// majority's do not count.
	Key uint64
	// Recv is when the vote was made on this node's clock: its age as the
	// sender knew it, taken from this node's clock when it arrived. Peers'
	// clocks are not ours: freshness is judged by Recv, order by At (one
	// voter's own clock).
	Recv time.Time
	age  time.Duration // on the wire: how old the sender knew it to be
}

// maxAge bounds a vote's age on the wire (a year: older is meaningless).
const maxAge = 365 * 24 * time.Hour

func (v Vote) valid() error {
	switch {
	case !validNode(v.Node):
		return fmt.Errorf("mesh: vote: bad node name %q", v.Node)
	case !validCheck(v.Check):
		return fmt.Errorf("mesh: vote: bad check name %q", v.Check)
	case len(v.Region) > MaxRegionLen:
		return fmt.Errorf("mesh: vote: region of %d bytes", len(v.Region))
	case v.Vote != VoteUp && v.Vote != VoteDown && v.Vote != VoteAbstain:
		return fmt.Errorf("mesh: vote: %q is not up, down or abstain", v.Vote)
	case !validTime(v.At) || !validOptTime(v.DownSince):
		return fmt.Errorf("mesh: vote: time out of range")
	case !validMS(v.LatencyMS):
		return fmt.Errorf("mesh: vote: latency %v", v.LatencyMS)
	case v.Failures < 0 || v.Failures > 1<<20:
		return fmt.Errorf("mesh: vote: %d failures", v.Failures)
	}
	return nil
}

// maxNodesPerCheck bounds the voters of one check.
const maxNodesPerCheck = 1024

// Votes is the vote table: each node's latest vote on each check. The
// newest vote of a node (by its At) wins; this node's own entry is written
// only by Put. Votes of checks this node does not run are refused.
type Votes struct {
	self, region string
	now          func() time.Time
	notify       func(check string)
	log          *slog.Logger

	mu      sync.RWMutex
	b       Broadcaster
	byCheck map[string]map[string]Vote // check -> node -> vote
	keep    map[string]bool
	onPut   func(Vote)
}

// NewVotes returns an empty table that accepts no check until Retain.
func NewVotes(self, region string, now func() time.Time, notify func(string), log *slog.Logger) *Votes {
	return &Votes{self: self, region: region, now: now, notify: notify, log: log, b: nopBroadcaster{},
		byCheck: map[string]map[string]Vote{}, keep: map[string]bool{}}
}

// SetOnPut sets what is told of each vote this node records with Put,
// after it is stored and before it is gossiped (it must not block). It is
// how the node acts on its own vote turning down without scanning the
// table.
func (t *Votes) SetOnPut(f func(Vote)) {
	t.mu.Lock()
	t.onPut = f
	t.mu.Unlock()
}

func (t *Votes) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Put records this node's vote and gossips it. Node and Region are this
// node's.
func (t *Votes) Put(v Vote) error {
	v.Node, v.Region = t.self, t.region
	v.At = v.At.Truncate(time.Millisecond)
	v.Recv = v.At
	if err := v.valid(); err != nil {
		return err
	}
	t.mu.Lock()
	if !t.keep[v.Check] {
		t.mu.Unlock()
		return fmt.Errorf("mesh: vote on unknown check %q", v.Check)
	}
	t.setLocked(v)
	b, onPut := t.b, t.onPut
	t.mu.Unlock()
	if onPut != nil {
		onPut(v)
	}
	w := writer{b: []byte{fmtDelta}}
	w.time(v.At) // sent as soon as made
	msg := appendVote(w.b, v, false, v.At)
	if err := b.Broadcast(broadcastName(v.Check), msg); err != nil {
		return fmt.Errorf("mesh: gossip vote on %s: %w", v.Check, err)
	}
	return nil
}

func (t *Votes) setLocked(v Vote) {
	m := t.byCheck[v.Check]
	if m == nil {
		m = map[string]Vote{}
		t.byCheck[v.Check] = m
	}
	m[v.Node] = v
}

// Forget drops this node's own vote on check (its probe changed).
func (t *Votes) Forget(check string) {
	t.mu.Lock()
	delete(t.byCheck[check], t.self)
	t.mu.Unlock()
}

// Of appends the votes on check to buf, in no order.
func (t *Votes) Of(check string, buf []Vote) []Vote {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, v := range t.byCheck[check] {
		buf = append(buf, v)
	}
	return buf
}

// Get returns one node's vote on check.
func (t *Votes) Get(check, node string) (Vote, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	v, ok := t.byCheck[check][node]
	return v, ok
}

// Len is the number of votes held.
func (t *Votes) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for _, m := range t.byCheck {
		n += len(m)
	}
	return n
}

// Retain keeps the votes of the checks in keep, and from now on accepts
// only those.
func (t *Votes) Retain(keep map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keep = retain(t.byCheck, keep)
}

// Expire drops votes made (on this node's clock) before before: a
// departed node's votes, and any too old to count.
func (t *Votes) Expire(before time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c, m := range t.byCheck {
		for n, v := range m {
			if v.Recv.Before(before) {
				delete(m, n)
			}
		}
		if len(m) == 0 {
			delete(t.byCheck, c)
		}
	}
}

// Encodings: a delta is one vote of the sending node (its name is the
// envelope's origin), a full state the whole table. Both start with the
// sender's clock when it encoded them, and every vote carries its age
// then: a receiver places the vote on its own clock (Recv) and refuses
// one the sender made more than maxFuture after it sent it.
const (
	fmtDelta byte = 3
	fmtFull  byte = 4
	// maxFuture is how far past its message a vote's time may lie.
	maxFuture = 5 * time.Second
)

// MarshalBinary implements cluster.State: the whole table.
func (t *Votes) MarshalBinary() ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	now := t.now()
	w := writer{b: []byte{fmtFull}}
	w.time(now)
	n := 0
	for _, m := range t.byCheck {
		n += len(m)
	}
	w.uvarint(uint64(n))
	for _, m := range t.byCheck {
		for _, v := range m {
			w.b = appendVote(w.b, v, true, now)
		}
	}
	return w.b, nil
}

// Merge implements cluster.State: a peer's vote (delta, from its node) or
// its whole table.
func (t *Votes) Merge(from string, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	r := reader{b: b[1:]}
	var votes []Vote
	var sent time.Time
	switch b[0] {
	case fmtDelta:
		sent = r.time()
		v := readVote(&r, false)
		v.Node = from
		votes = append(votes, v)
	case fmtFull:
		sent = r.time()
		n := r.count(8)
		votes = make([]Vote, 0, n)
		for range n {
			votes = append(votes, readVote(&r, true))
			if r.err != nil {
				break
			}
		}
	default:
		return fmt.Errorf("mesh: votes: unknown format %d", b[0])
	}
	if err := r.end(); err != nil {
		return fmt.Errorf("mesh: votes from %s: %w", from, err)
	}
	changed := map[string]bool{}
	var bad int
	var firstErr error
	now := t.now()
	t.mu.Lock()
	for _, v := range votes {
		if v.Node == t.self {
			continue // this node's own vote is its own to make
		}
		err := v.valid()
		if err == nil && v.Node == from && v.At.After(sent.Add(maxFuture)) {
			err = fmt.Errorf("mesh: vote of %s on %s made %v after it was sent", v.Node, v.Check, v.At.Sub(sent))
		}
		v.Recv = now.Add(-v.age)
		if err != nil {
			bad++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if !t.keep[v.Check] {
			continue
		}
		m := t.byCheck[v.Check]
		old, have := m[v.Node]
		if have && !v.At.After(old.At) {
			continue
		}
		if !have && len(m) >= maxNodesPerCheck {
			continue
		}
		t.setLocked(v)
		changed[v.Check] = true
	}
	t.mu.Unlock()
	for c := range changed {
		t.notify(c)
	}
	if bad > 0 {
		return fmt.Errorf("mesh: %d invalid votes from %s, first: %w", bad, from, firstErr)
	}
	return nil
}

// appendVote encodes v as of now; full includes the node's name.
func appendVote(b []byte, v Vote, full bool, now time.Time) []byte {
	w := writer{b: b}
	if full {
		w.str(v.Node, MaxNameLen)
		w.str(v.Region, MaxRegionLen)
	}
	w.str(v.Check, MaxNameLen)
	w.str(v.Vote, 8)
	w.time(v.At)
	w.uvarint(uint64(max(0, v.Failures)))
	w.str(v.Code, maxCodeLen)
	w.f64(v.LatencyMS)
	w.time(v.DownSince)
	if !full {
		w.str(v.Region, MaxRegionLen)
	}
	w.uvarint(v.Key)
	age := now.Sub(v.Recv)
	if v.Recv.IsZero() || age < 0 {
		age = 0
	}
	w.uvarint(uint64(age / time.Millisecond))
	return w.b
}

func readVote(r *reader, full bool) Vote {
	var v Vote
	if full {
		v.Node = r.str(MaxNameLen)
		v.Region = r.str(MaxRegionLen)
	}
	v.Check = r.str(MaxNameLen)
	v.Vote = r.str(8)
	v.At = r.time()
	v.Failures = int(min(r.uvarint(), 1<<21))
	v.Code = r.str(maxCodeLen)
	v.LatencyMS = r.f64()
	v.DownSince = r.time()
	if !full {
		v.Region = r.str(MaxRegionLen)
	}
	v.Key = r.uvarint()
	v.age = time.Duration(min(r.uvarint(), uint64(maxAge/time.Millisecond))) * time.Millisecond
	return v
}
