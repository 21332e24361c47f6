package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/hashicorp/memberlist"
	"sync"
	"sync/atomic"
	"time"
)

// State is one replicated table.
type State interface {
	// MarshalBinary returns the state's full content for push-pull
	// anti-entropy; nil or empty shares nothing. It is called on
	// memberlist's goroutines, concurrently with Merge.
	MarshalBinary() ([]byte, error)
	// Merge takes one of a peer's broadcasts (a delta) or its full state
	// from push-pull. from is the name of the node that made it (the
	// envelope's origin; for push-pull the remote node's name). b is
	// untrusted input, and the state's to keep. Merge is called on the
	// state's own delivery goroutine, one call at a time, never on
	// memberlist's goroutines. Deltas may arrive out of order, twice, or
	// not at all (push-pull repairs): carry versions or timestamps in them.
	Merge(from string, b []byte) error
}

// StateStats counts a state's deliveries since the node was created.
type StateStats struct {
	Delivered   uint64 // messages and push-pull states handed to Merge
	Dropped     uint64 // items dropped because the state's queue was full
	MergeErrors uint64 // Merge calls that returned an error
}

// Limits of the State API.
const (
	// MaxStateMessage bounds one State broadcast; one larger than a packet
	// travels in chunks.
	MaxStateMessage = 32 << 10
	// MaxStateNameLen bounds a State broadcast's name.
	MaxStateNameLen = 128
	// maxStateKeyLen bounds a state's key.
	maxStateKeyLen = 32
	// maxStates bounds the states registered on one node.
	maxStates = 32
	// stateQueueLen and stateQueueBytes bound each state's delivery queue.
	stateQueueLen   = 4096
	stateQueueBytes = 64 << 20
	// maxPushPull bounds the push-pull state, as memberlist does for the
	// state it receives.
	maxPushPull = 20 << 20
	// logEvery rate-limits the warnings about one state.
	logEvery = 10 * time.Second
)

// validKey checks a state key: 1 to 32 bytes of [a-z0-9-].
func validKey(key string) error {
	if len(key) == 0 || len(key) > maxStateKeyLen {
		return fmt.Errorf("cluster: state key %q: want 1 to %d bytes", key, maxStateKeyLen)
	}
	for i := range len(key) {
		if b := key[i]; !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-') {
			return fmt.Errorf("cluster: state key %q: want only [a-z0-9-]", key)
		}
	}
	return nil
}

func validStateName(name string) error {
	if len(name) == 0 || len(name) > MaxStateNameLen {
		return fmt.Errorf("cluster: broadcast name of %d bytes: want 1 to %d", len(name), MaxStateNameLen)
	}
	return nil
}

// splitStateName splits a state message's envelope name, key "/" name.
func splitStateName(s string) (key, name string, err error) {
	for i := range len(s) {
		if s[i] == '/' {
			key, name = s[:i], s[i+1:]
			if err := validKey(key); err != nil {
				return "", "", err
			}
			if err := validStateName(name); err != nil {
				return "", "", err
			}
			return key, name, nil
		}
	}
	return "", "", fmt.Errorf("cluster: state message name %q lacks a key", s)
}

// stateQueueName is the transmit queue name of a state message (index 0)
// or of one chunk: a newer message replaces the same index of an older
// one. It is unambiguous and cannot equal another kind's queue name, which
// starts with the origin's name.
func stateQueueName(origin, key, name string, index int) string {
	w := writer{b: append(make([]byte, 0, 8+len(origin)+len(key)+len(name)), "\x00state"...)}
	w.str(origin, MaxNameLen)
	w.uvarint(uint64(index))
	w.str(key, maxStateKeyLen)
	w.str(name, MaxStateNameLen)
	return string(w.b)
}

// Channel broadcasts one state's deltas.
type Channel struct {
	c   *Cluster
	key string
}

// Key is the key of the Channel's state.
func (ch *Channel) Key() string { return ch.key }

// Broadcast gossips b to every other node's state of the same key. A newer
// broadcast with the same name replaces an older one still queued (use a
// unique name for messages that must all arrive); name is 1 to
// MaxStateNameLen bytes. b larger than fits a packet is cut into chunks
// and reassembled on the receivers before Merge; b is at most
// MaxStateMessage bytes. Broadcast does not keep b.
func (ch *Channel) Broadcast(name string, b []byte) error {
	if ch == nil || ch.c == nil {
		return errors.New("cluster: broadcast on a nil channel")
	}
	c := ch.c
	if err := validStateName(name); err != nil {
		return fmt.Errorf("cluster: broadcast on %q: %w", ch.key, err)
	}
	if len(b) > MaxStateMessage {
		return fmt.Errorf("cluster: broadcast on %q: message of %d bytes exceeds %d", ch.key, len(b), MaxStateMessage)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrShutdown
	}
	origin := c.cfg.Name
	stamp := c.nextStamp()
	if msg := encodeEnvelope(kindState, origin, ch.key+"/"+name, stamp, b); len(msg) <= MaxMessageSize {
		c.queue.QueueBroadcast(&broadcast{name: stateQueueName(origin, ch.key, name, 0), msg: msg})
		return nil
	}
	chunks, err := encodeChunks(origin, stamp, ch.key, name, b)
	if err != nil {
		return fmt.Errorf("cluster: broadcast on %q: %w", ch.key, err)
	}
	for i, msg := range chunks {
		c.queue.QueueBroadcast(&broadcast{name: stateQueueName(origin, ch.key, name, i), msg: msg})
	}
	c.sendDirect(chunks)
	return nil
}

// sendDirect sends the chunks of a message once to every alive member,
// over UDP, besides gossiping them. Gossip sends a queued message to a few
// random peers, one chunk per packet when several are queued: with gossip
// alone the odds that some member misses one chunk of many are high.
func (c *Cluster) sendDirect(msgs [][]byte) {
	ml := c.memberlist()
	if ml == nil {
		return
	}
	// Our copies of the alive members, not ml.Members(): memberlist hands
	// out its own nodes, whose address it rewrites under its lock when a
	// member comes back (a data race with reading it here).
	c.mu.Lock()
	to := make([]memberlist.Node, 0, len(c.peers))
	for name, p := range c.peers {
		if name != c.cfg.Name && p.state == StateAlive {
			to = append(to, p.node)
		}
	}
	c.mu.Unlock()
	for i := range to {
		n := &to[i]
		for _, m := range msgs {
			if err := ml.SendBestEffort(n, m); err != nil {
				c.log.Debug("direct send of a chunk failed", "member", n.Name, "err", err)
				break
			}
		}
	}
}

// delivery is one item of a state's queue: a whole message or push-pull
// state, or one chunk.
type delivery struct {
	from  string
	stamp uint64 // a chunk's envelope stamp
	data  []byte // the message, the state, or the chunk's data
	chunk *chunk // nil unless a chunk; its data is data
}

// stateEntry is a registered state with its delivery queue.
type stateEntry struct {
	key    string
	s      State
	qBytes atomic.Int64
	// q is the delivery queue, at most stateQueueLen items: a slice that
	// grows as items arrive and is dropped once drained, rather than a
	// channel of that capacity allocated up front (with 17 states, 3.8 MB
	// of a small node's heap); wake tells the goroutine there is more.
	qmu  sync.Mutex
	q    []delivery
	wake chan struct{}

	delivered, dropped, mergeErrors atomic.Uint64

	dropLog, errLog, sizeLog logLimiter

	asm reassembler // the delivery goroutine's
}

// AddState registers s under key (1 to 32 bytes of [a-z0-9-]), before
// Start; a key may be registered once. The returned Channel broadcasts the
// state's deltas.
func (c *Cluster) AddState(key string, s State) (*Channel, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("cluster: state %q is nil", key)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, fmt.Errorf("cluster: add state %q: shut down", key)
	case c.started:
		return nil, fmt.Errorf("cluster: add state %q: states are added before Start", key)
	case c.states[key] != nil:
		return nil, fmt.Errorf("cluster: state %q is already registered", key)
	case len(c.states) >= maxStates:
		return nil, fmt.Errorf("cluster: add state %q: at most %d states", key, maxStates)
	}
	e := &stateEntry{key: key, s: s, wake: make(chan struct{}, 1)}
	c.states[key] = e
	c.stateList = append(c.stateList, e)
	return &Channel{c: c, key: key}, nil
}

// StateStats returns each registered state's counters, by key.
func (c *Cluster) StateStats() map[string]StateStats {
	c.mu.Lock()
	list := c.stateList
	c.mu.Unlock()
	out := make(map[string]StateStats, len(list))
	for _, e := range list {
		out[e.key] = StateStats{Delivered: e.delivered.Load(), Dropped: e.dropped.Load(), MergeErrors: e.mergeErrors.Load()}
	}
	return out
}

// enqueue hands an item to a state's delivery goroutine, or drops it when
// the queue is full. It never blocks.
func (c *Cluster) enqueue(e *stateEntry, d delivery) {
	n := int64(len(d.data))
	if e.qBytes.Add(n) > stateQueueBytes {
		e.qBytes.Add(-n)
		c.drop(e, d)
		return
	}
	e.qmu.Lock()
	if len(e.q) >= stateQueueLen {
		e.qmu.Unlock()
		e.qBytes.Add(-n)
		c.drop(e, d)
		return
	}
	e.q = append(e.q, d)
	e.qmu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// next takes the queue's first item, if any.
func (e *stateEntry) next() (delivery, bool) {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	if len(e.q) == 0 {
		e.q = nil // drained: let the array go
		return delivery{}, false
	}
	d := e.q[0]
	e.q[0] = delivery{}
	e.q = e.q[1:]
	e.qBytes.Add(-int64(len(d.data)))
	return d, true
}

// queued is the number of items in the queue.
func (e *stateEntry) queued() int {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	return len(e.q)
}

func (c *Cluster) drop(e *stateEntry, d delivery) {
	e.dropped.Add(1)
	if ok, n := e.dropLog.allow(time.Now()); ok {
		c.log.Warn("state delivery queue full: dropping (push-pull repairs)", "key", e.key, "from", d.from,
			"queued", e.queued(), "queued_bytes", e.qBytes.Load(), "dropped_since_last_warning", n)
	}
}

// deliverLoop calls the state's Merge for each queued item, in order, until
// Shutdown.
func (c *Cluster) deliverLoop(e *stateEntry) {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-e.wake:
		}
		for {
			d, ok := e.next()
			if !ok {
				break
			}
			select {
			case <-c.done:
				return
			default:
			}
			c.deliver(e, d)
		}
	}
}

func (c *Cluster) deliver(e *stateEntry, d delivery) {
	b := d.data
	if d.chunk != nil {
		msg, complete, err := e.asm.add(d.from, d.stamp, *d.chunk, time.Now())
		if err != nil {
			c.log.Debug("dropping state chunk", "key", e.key, "from", d.from, "err", err)
			return
		}
		if !complete {
			return
		}
		b = msg
	}
	e.delivered.Add(1)
	if err := e.s.Merge(d.from, b); err != nil {
		e.mergeErrors.Add(1)
		if ok, n := e.errLog.allow(time.Now()); ok {
			c.log.Warn("state merge failed", "key", e.key, "from", d.from, "err", err, "failed_since_last_warning", n)
		}
	}
}

// Push-pull state, sent over memberlist's TCP push-pull:
//
//	version  1 byte   pushPullVersion (2)
//	node     string   the sending node's name, 1 to MaxNameLen bytes
//	count    uvarint  number of entries, at most maxStates
//	entries  count times:
//	  key    string   a state's key
//	  data   string   its MarshalBinary bytes (a node sends none empty)
//
// Keys are valid and distinct, and nothing follows the last entry.
// Version 1 (a single opaque blob) is retired: a receiver logs and ignores
// any version but 2.

type ppEntry struct {
	key  string
	data []byte
}

// minPPEntry is the fewest bytes an entry takes: a key of one byte and a
// data length.
const minPPEntry = 3

func encodePushPull(node string, entries []ppEntry) []byte {
	size := 16 + len(node)
	for _, e := range entries {
		size += 2*binary.MaxVarintLen64 + len(e.key) + len(e.data)
	}
	w := writer{b: make([]byte, 0, size)}
	w.b = append(w.b, pushPullVersion)
	w.str(node, MaxNameLen)
	w.uvarint(uint64(len(entries)))
	for _, e := range entries {
		w.str(e.key, maxStateKeyLen)
		w.uvarint(uint64(len(e.data)))
		w.b = append(w.b, e.data...)
	}
	return w.b
}

// decodePushPull decodes and validates a push-pull state. The entries'
// data alias b.
func decodePushPull(b []byte) (node string, entries []ppEntry, err error) {
	if len(b) == 0 {
		return "", nil, errShort
	}
	if b[0] != pushPullVersion {
		return "", nil, fmt.Errorf("cluster: push-pull state version %d, want %d", b[0], pushPullVersion)
	}
	if len(b) > maxPushPull+64<<10 {
		return "", nil, fmt.Errorf("cluster: push-pull state of %d bytes exceeds %d", len(b), maxPushPull)
	}
	r := reader{b: b[1:]}
	node = r.str()
	count := r.uvarint()
	if r.err != nil {
		return "", nil, fmt.Errorf("cluster: push-pull state header: %w", r.err)
	}
	if node == "" || len(node) > MaxNameLen {
		return "", nil, fmt.Errorf("cluster: push-pull state from a node name of %d bytes", len(node))
	}
	if count > maxStates || count > uint64(len(r.b)/minPPEntry) {
		return "", nil, fmt.Errorf("cluster: push-pull state claims %d entries in %d bytes (max %d)", count, len(r.b), maxStates)
	}
	entries = make([]ppEntry, 0, count)
	for i := range count {
		key := r.str()
		n := r.uvarint()
		if r.err != nil {
			return "", nil, fmt.Errorf("cluster: push-pull state entry %d: %w", i, r.err)
		}
		if err := validKey(key); err != nil {
			return "", nil, fmt.Errorf("cluster: push-pull state entry %d: %w", i, err)
		}
		if n > uint64(len(r.b)) {
			return "", nil, fmt.Errorf("cluster: push-pull state entry %q claims %d bytes, %d left", key, n, len(r.b))
		}
		for _, e := range entries {
			if e.key == key {
				return "", nil, fmt.Errorf("cluster: push-pull state lists %q twice", key)
			}
		}
		entries = append(entries, ppEntry{key: key, data: r.b[:n:n]})
		r.b = r.b[n:]
	}
	if len(r.b) != 0 {
		return "", nil, fmt.Errorf("cluster: push-pull state has %d trailing bytes", len(r.b))
	}
	return node, entries, nil
}

// localState is this node's push-pull state: every registered state's
// content.
func (c *Cluster) localState() []byte {
	var entries []ppEntry
	total := 0
	for _, e := range c.stateList {
		b, err := e.s.MarshalBinary()
		if err != nil {
			if ok, _ := e.sizeLog.allow(time.Now()); ok {
				c.log.Warn("state not shared by push-pull: marshal failed", "key", e.key, "err", err)
			}
			continue
		}
		if len(b) == 0 {
			continue
		}
		if total+len(b) > maxPushPull {
			if ok, _ := e.sizeLog.allow(time.Now()); ok {
				c.log.Warn("state not shared by push-pull: too large", "key", e.key, "bytes", len(b),
					"total", total, "max", maxPushPull)
			}
			continue
		}
		total += len(b)
		entries = append(entries, ppEntry{key: e.key, data: b})
	}
	return encodePushPull(c.cfg.Name, entries)
}

// mergeRemoteState takes a peer's push-pull state: each known state's part
// goes to its queue. Unknown keys are ignored.
func (c *Cluster) mergeRemoteState(buf []byte) {
	if len(buf) == 0 {
		return
	}
	if buf[0] != pushPullVersion {
		c.log.Warn("ignoring push-pull state of unknown version", "version", buf[0])
		return
	}
	node, entries, err := decodePushPull(buf)
	if err != nil {
		c.log.Warn("ignoring malformed push-pull state", "err", err)
		return
	}
	if node == c.cfg.Name {
		return
	}
	for _, e := range entries {
		if len(e.data) == 0 {
			continue
		}
		if st := c.states[e.key]; st != nil {
			c.enqueue(st, delivery{from: node, data: bytes.Clone(e.data)})
		}
	}
}

// logLimiter lets a warning through at most once per logEvery.
type logLimiter struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether to log now, and how many were suppressed since
// the last time it did.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.next, l.suppressed = now.Add(logEvery), 0
	return true, n
}

// keyList formats keys for logs.
func keyList(es []*stateEntry) string {
	b := make([]byte, 0, 16*len(es))
	for i, e := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.key...)
	}
	return string(b)
}
