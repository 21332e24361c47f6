package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate adapts memberlist's callbacks to the Cluster.
type delegate struct{ c *Cluster }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
	_ memberlist.PingDelegate  = (*delegate)(nil)
)

// NodeMeta advertises region, version and config hash.
func (d *delegate) NodeMeta(limit int) []byte {
	c := d.c
	c.mu.Lock()
	m := nodeMeta{Region: c.cfg.Region, Version: c.cfg.Version, ConfigHash: c.configHash}
	c.mu.Unlock()
	return encodeMeta(m, limit)
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.queue.GetBroadcasts(overhead, limit)
}

// LocalState is this node's push-pull state (version 2).
func (d *delegate) LocalState(join bool) []byte { return d.c.localState() }

// MergeRemoteState decodes a peer's push-pull state and queues each part.
func (d *delegate) MergeRemoteState(buf []byte, join bool) { d.c.mergeRemoteState(buf) }

// NotifyMsg handles one gossiped message: drop our own, stale copies and
// kinds it does not know, relay when gossip alone would not reach every
// node, and deliver. A State message or chunk is only decoded, checked and
// queued here: its state's goroutine reassembles and merges it.
func (d *delegate) NotifyMsg(b []byte) {
	c := d.c
	e, err := decodeEnvelope(b)
	if err != nil {
		c.log.Debug("dropping malformed gossip message", "err", err)
		return
	}
	if e.origin == c.cfg.Name {
		return
	}
	// dedup names what a newer stamp replaces; qname is the transmit
	// queue name for relaying.
	dedup, qname := e.name, ""
	var (
		st *stateEntry
		ch chunk
	)
	switch e.kind {
	case kindLeave:
		qname = e.origin + "/leave"
	case kindState:
		key, name, err := splitStateName(e.name)
		if err != nil {
			c.log.Debug("dropping malformed state message", "from", e.origin, "err", err)
			return
		}
		if len(e.payload) > MaxMessageSize {
			c.log.Debug("dropping oversized state message", "from", e.origin, "key", key, "bytes", len(e.payload))
			return
		}
		qname = stateQueueName(e.origin, key, name, 0)
		st = c.states[key]
	case kindChunk:
		if ch, err = decodeChunk(e.payload); err != nil {
			c.log.Debug("dropping malformed state chunk", "from", e.origin, "err", err)
			return
		}
		dedup = strconv.Itoa(ch.index) + "/" + ch.key + "/" + ch.name
		qname = stateQueueName(e.origin, ch.key, ch.name, ch.index)
		st = c.states[ch.key]
	default:
		c.log.Debug("dropping gossip message of unknown kind", "from", e.origin, "kind", e.kind)
		return
	}
	key := e.origin + "\x00" + string(rune(e.kind)) + "\x00" + dedup
	now := time.Now()
	c.mu.Lock()
	s, ok := c.seen[key]
	// A stamp older than one seen recently is a stale copy; after a minute
	// of silence accept anything (the origin may have restarted with a
	// clock behind its previous run).
	if ok && e.stamp <= s.stamp && now.Sub(s.recvAt) < time.Minute {
		c.mu.Unlock()
		return
	}
	c.seen[key] = seenEntry{stamp: e.stamp, recvAt: now}
	c.mu.Unlock()
	c.offsets.add(e.origin, e.stamp, c.now())

	if c.NumAlive()-1 > c.mlc.GossipNodes {
		// memberlist sends a broadcast to GossipNodes random peers per
		// round; in a larger cluster, pass new messages on (states whose
		// key this node does not have too).
		c.queue.QueueBroadcast(&broadcast{name: qname, msg: bytes.Clone(b)})
	}

	switch {
	case e.kind == kindLeave:
		c.mu.Lock()
		c.leaving[e.origin] = true
		changed := false
		if p := c.peers[e.origin]; p != nil && p.state == StateDead {
			p.state, p.changedAt, changed = StateLeft, now, true
		}
		c.mu.Unlock()
		if changed {
			c.membershipChanged()
		}
	case e.kind == kindState && st != nil:
		c.enqueue(st, delivery{from: e.origin, data: bytes.Clone(e.payload)})
	case e.kind == kindChunk && st != nil:
		ch.data = bytes.Clone(ch.data)
		c.enqueue(st, delivery{from: e.origin, stamp: e.stamp, data: ch.data, chunk: &ch})
	}
}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.c.setPeer(n, StateAlive) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.c.setPeer(n, StateAlive) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.c.setPeer(n, StateDead) }

func (d *delegate) AckPayload() []byte { return nil }

// NotifyPingComplete clears a suspicion: the member answered our probe.
func (d *delegate) NotifyPingComplete(n *memberlist.Node, _ time.Duration, _ []byte) {
	c := d.c
	c.mu.Lock()
	p := c.peers[n.Name]
	changed := p != nil && p.state == StateSuspect
	if changed {
		p.state, p.changedAt = StateAlive, time.Now()
	}
	c.mu.Unlock()
	if changed {
		c.membershipChanged()
	}
}

// setPeer records a membership event. It runs under memberlist's node lock:
// it must not call back into memberlist.
func (c *Cluster) setPeer(n *memberlist.Node, state string) {
	meta, metaErr := decodeMeta(n.Meta)
	c.mu.Lock()
	p := c.peers[n.Name]
	if p == nil {
		p = &peer{}
		c.peers[n.Name] = p
	}
	p.node = *n
	p.node.Meta = bytes.Clone(n.Meta)
	p.meta, p.metaErr = meta, metaErr
	switch {
	case state == StateAlive:
		delete(c.leaving, n.Name)
	case n.Name == c.cfg.Name && c.left, c.leaving[n.Name]:
		state = StateLeft
	}
	p.state, p.changedAt = state, time.Now()
	var warn bool
	if n.Name != c.cfg.Name && state == StateAlive && metaErr == nil &&
		meta.ConfigHash != c.configHash && c.warnedHash[n.Name] != meta.ConfigHash {
		c.warnedHash[n.Name] = meta.ConfigHash
		warn = true
	}
	ours := c.configHash
	c.mu.Unlock()

	lvl := slog.LevelInfo
	if state == StateDead {
		lvl = slog.LevelWarn
	}
	c.log.Log(context.Background(), lvl, "member "+state, "member", n.Name, "addr", n.Address(), "region", meta.Region, "version", meta.Version)
	if metaErr != nil && state == StateAlive {
		c.log.Warn("member sent unreadable metadata", "member", n.Name, "err", metaErr)
	}
	if warn {
		c.log.Warn("member advertises a different config hash",
			"member", n.Name, "config_hash", meta.ConfigHash, "ours", ours)
	}
	c.membershipChanged()
}

// markSuspect is called when our probe of a member failed.
func (c *Cluster) markSuspect(name string) {
	c.mu.Lock()
	p := c.peers[name]
	changed := p != nil && p.state == StateAlive
	if changed {
		p.state, p.changedAt = StateSuspect, time.Now()
	}
	c.mu.Unlock()
	if changed {
		c.membershipChanged()
	}
}

// Members returns every node this node knows of, itself included, sorted by
// name. Dead members are remembered; left members too.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	out := make([]Member, 0, len(c.peers)+1)
	haveSelf := false
	for name, p := range c.peers {
		st := c.stateLocked(p, now)
		m := Member{
			Name:       name,
			Region:     p.meta.Region,
			State:      st,
			Addr:       p.node.Address(),
			Version:    p.meta.Version,
			ConfigHash: p.meta.ConfigHash,
		}
		if name == c.cfg.Name {
			haveSelf = true
			m.Region, m.Version, m.ConfigHash = c.cfg.Region, c.cfg.Version, c.configHash
		} else {
			m.ConfigMismatch = p.metaErr != nil || p.meta.ConfigHash != c.configHash
		}
		out = append(out, m)
	}
	if !haveSelf {
		st := StateAlive
		if c.left {
			st = StateLeft
		}
		out = append(out, Member{Name: c.cfg.Name, Region: c.cfg.Region, State: st, Addr: c.self,
			Version: c.cfg.Version, ConfigHash: c.configHash})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// stateLocked returns p's state, expiring a stale suspicion (memberlist
// would have declared the member dead by now had it not refuted).
func (c *Cluster) stateLocked(p *peer, now time.Time) string {
	if p.state == StateSuspect && now.Sub(p.changedAt) > c.suspectTTL {
		p.state, p.changedAt = StateAlive, now
	}
	return p.state
}

// NumAlive is the number of alive (or suspect: still members until
// declared dead) nodes, this one included.
func (c *Cluster) NumAlive() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	n := 0
	haveSelf := false
	for name, p := range c.peers {
		if name == c.cfg.Name {
			haveSelf = true
			if !c.left {
				n++
			}
			continue
		}
		if st := c.stateLocked(p, now); st == StateAlive || st == StateSuspect {
			n++
		}
	}
	if !haveSelf && !c.left {
		n++
	}
	return n
}

// mlLogWriter turns memberlist's log lines into slog records and spots the
// failed-probe line that marks a member suspect.
type mlLogWriter struct{ c *Cluster }

func (w *mlLogWriter) Write(b []byte) (int, error) {
	line := strings.TrimSpace(string(b))
	lvl := slog.LevelInfo
	for _, p := range []struct {
		prefix string
		lvl    slog.Level
	}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}} {
		if rest, ok := strings.CutPrefix(line, p.prefix); ok {
			line, lvl = strings.TrimSpace(rest), p.lvl
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if rest, ok := strings.CutPrefix(line, "Suspect "); ok {
		if name, ok := strings.CutSuffix(rest, " has failed, no acks received"); ok {
			w.c.markSuspect(name)
		}
	}
	w.c.log.Log(context.Background(), lvl, line, "source", "memberlist")
	return len(b), nil
}
