package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/store"
)

// KeySeries is the cluster key of the series table.
const KeySeries = "series"

// Series shares the nodes' buckets (store's series: per node, check and
// minute, hour or day), so that every node holds every region's history:
//
//   - Live: every LiveEvery a node broadcasts its own minute buckets that
//     its results changed, once the minute has ended (Settle later, for
//     the probes still running at its end), or at once when they hold
//     failures (a running outage). A bucket changed again (a late result)
//     is sent again and replaces the one held.
//   - Anti-entropy: MarshalBinary, which push-pull carries on join and every
//     PushPullInterval, is a digest: per origin node, step and block, the
//     sum of the hashes of the buckets that ended at least two minutes ago
//     (store.Digest). A node that holds something else for a block sends a
//     want to the peer that showed it: its own unit hashes of that block.
//     The peer answers with rows messages addressed to the asker, holding
//     its buckets of the units whose hashes differ, newest blocks first,
//     at most AnswerRate bytes a second. A want unanswered (a lost chunk)
//     is sent again after WantRetry, backing off while the peer's block
//     stays the same.
//
// Everything a peer sends is decoded with bounds and validated: names,
// steps, aligned and sane times (within retention, at most two minutes
// ahead), finite, consistent figures (store.Bucket.Validate), checks this
// node runs, at most MaxOrigins nodes' buckets, one message at most 32 KiB;
// the store keeps one version per node, check and bucket, so what a peer
// can make this node hold is bounded by checks × nodes × retention.
type Series struct {
	o       SeriesOptions
	log     *slog.Logger
	st      *store.Store
	session uint64 // this run's, in its wants

	mu     sync.Mutex
	b      Broadcaster
	wanted map[blockKey]*wantState

	digests chan digestMsg

	wantMu   sync.Mutex
	wantQ    []wantMsg // FIFO of wants to answer
	wantWake chan struct{}

	seq uint64 // names small answers apart (answering goroutine only)

	// sent remembers, by asker, the units answered lately with their
	// hashes: a want that crossed an answer still being sent (the asker
	// listed what it held before it) does not send them again.
	sent map[string]map[blockKey]sentUnit

	stats seriesCounters
}

// SeriesOptions configure a Series.
type SeriesOptions struct {
	Self   string
	Region string
	Store  *store.Store
	Now    func() time.Time
	Logger *slog.Logger
	// Check reports whether this node runs a check; other checks' buckets
	// are refused. nil accepts any valid name.
	Check func(string) bool
	// Region reports whether a region may hold buckets (the configured
	// regions); nil accepts any valid name.
	RegionOK func(string) bool

	LiveEvery  time.Duration // how often own buckets are shared; default 10 s
	Settle     time.Duration // how long after its minute ends a bucket is shared; default 15 s
	WantRetry  time.Duration // how long before an unanswered want is sent again; default 30 s
	AnswerRate int           // bytes per second of answers; default 256 KiB
	// Lag is how old a bucket must be to count in digests: it must have
	// ended that long ago, so that its live message has arrived; default
	// Settle + 2 × LiveEvery + 10 s (45 s), at most 2 minutes.
	Lag time.Duration
}

func (o *SeriesOptions) setDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LiveEvery <= 0 {
		o.LiveEvery = 10 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 15 * time.Second
	}
	if o.WantRetry <= 0 {
		o.WantRetry = 30 * time.Second
	}
	if o.AnswerRate <= 0 {
		o.AnswerRate = 256 << 10
	}
	if o.Lag <= 0 {
		// a bucket's live message has had time to arrive
		o.Lag = o.Settle + 2*o.LiveEvery + 10*time.Second
	}
	o.Lag = min(o.Lag, 2*time.Minute)
}

type seriesCounters struct {
	liveBuckets, liveBytes      atomic.Uint64
	wantsSent, wantsAnswered    atomic.Uint64
	answerBuckets, answerBytes  atomic.Uint64
	received, refused, notForUs atomic.Uint64
	storeFull, digests, dropped atomic.Uint64
}

// SeriesStats are a Series' counters since it was made.
type SeriesStats struct {
	LiveBuckets, LiveBytes     uint64 // own buckets broadcast, and their message bytes
	WantsSent, WantsAnswered   uint64 // wants sent, and peers' wants answered
	AnswerBuckets, AnswerBytes uint64 // buckets and bytes sent in answers
	Received, Refused          uint64 // peers' buckets handed to the store, and refused
	StoreFull                  uint64 // buckets lost to a full store queue (anti-entropy repairs)
	Digests, DigestsDropped    uint64 // peers' digests compared, and dropped while busy
}

// Stats returns the counters.
func (s *Series) Stats() SeriesStats {
	c := &s.stats
	return SeriesStats{LiveBuckets: c.liveBuckets.Load(), LiveBytes: c.liveBytes.Load(), WantsSent: c.wantsSent.Load(),
		WantsAnswered: c.wantsAnswered.Load(), AnswerBuckets: c.answerBuckets.Load(), AnswerBytes: c.answerBytes.Load(),
		Received: c.received.Load(), Refused: c.refused.Load(), StoreFull: c.storeFull.Load(),
		Digests: c.digests.Load(), DigestsDropped: c.dropped.Load()}
}

// blockKey is one origin's block of one step.
type blockKey struct {
	origin string
	step   store.Step
	start  int64
}

// wantState is the last want sent for a block.
type wantState struct {
	peer     string
	peerHash uint64
	at       time.Time
	backoff  int
}

// answerNames is how many broadcast names an asker's answers take turns
// among.
const answerNames = 4

// sentUnit is a unit sent in an answer.
type sentUnit struct {
	hash uint64
	at   time.Time
}

// Bounds of the queues.
const (
	// maxSentUnits bounds the units remembered as sent per asker, and
	// maxAskers the askers.
	maxSentUnits     = 1 << 20
	maxAskers        = 2 * MaxOrigins
	maxQueuedDigests = 16
	maxQueuedWants   = 256
	// maxWantsPerDigest bounds the wants one digest makes.
	maxWantsPerDigest = 256
	maxWantBackoff    = 5 // after three tries, WantRetry × 2^(tries-3), at most 2^5
)

// NewSeries returns the table of a node.
func NewSeries(o SeriesOptions) *Series {
	o.setDefaults()
	return &Series{o: o, log: o.Logger.With("component", "series"), st: o.Store, b: nopBroadcaster{}, session: rand.Uint64(),
		wanted: map[blockKey]*wantState{}, digests: make(chan digestMsg, maxQueuedDigests), wantWake: make(chan struct{}, 1),
		sent: map[string]map[blockKey]sentUnit{}}
}

func (s *Series) setBroadcaster(b Broadcaster) {
	s.mu.Lock()
	s.b = b
	s.mu.Unlock()
}

func (s *Series) broadcaster() Broadcaster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b
}

// Register registers the table with the cluster under KeySeries.
func (s *Series) Register(r Registry) error {
	return Register(r, map[string]sharer{KeySeries: s})
}

// Run shares own buckets, compares peers' digests and answers their wants
// until ctx ends. The store tracks own buckets while it runs.
func (s *Series) Run(ctx context.Context) {
	s.st.TrackLive(true)
	defer s.st.TrackLive(false)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.answerLoop(ctx)
	}()
	t := time.NewTicker(s.o.LiveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			s.shareLive()
		case d := <-s.digests:
			if err := s.compare(ctx, d); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
				s.log.Warn("compare a peer's series digest", "peer", d.Sender, "err", err)
			}
		}
	}
}

// shareLive broadcasts the own buckets due.
func (s *Series) shareLive() {
	bs := s.st.TakeLive(s.o.Now(), s.o.Settle)
	if len(bs) == 0 {
		return
	}
	b := s.broadcaster()
	var e rowsEncoder
	page := 0
	flush := func() {
		if e.n == 0 {
			return
		}
		msg := e.bytes()
		name := fmt.Sprintf("l%d", page)
		if len(msg) < cluster.MaxMessageSize {
			// a message that fits a packet travels by gossip alone: one
			// name per tick, so that the next does not replace it
			name = fmt.Sprintf("l%d/%d", page, s.o.Now().Unix())
		}
		if err := b.Broadcast(name, msg); err != nil {
			s.log.Warn("broadcast own buckets; anti-entropy repairs", "err", err)
		}
		s.stats.liveBuckets.Add(uint64(e.n))
		s.stats.liveBytes.Add(uint64(len(msg)))
		page++
		e.n = 0
	}
	for i := range bs {
		x := &bs[i]
		h := rowsMsg{Origin: x.Node, Region: x.Region, Step: x.Step}
		if e.n > 0 && (h != e.hdr || e.size() >= seriesPage-512) {
			flush()
		}
		if e.n == 0 {
			e.reset(h)
		}
		e.add(x)
	}
	flush()
}

// MarshalBinary implements cluster.State: the digest of the buckets that
// ended at least Lag ago.
func (s *Series) MarshalBinary() ([]byte, error) {
	cutoff := s.o.Now().Add(-s.o.Lag).UnixMilli()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	blocks, err := s.st.Digest(ctx, cutoff)
	if err != nil {
		return nil, err
	}
	if len(blocks) == 0 {
		return nil, nil
	}
	return encodeDigest(digestMsg{Sender: s.o.Self, Cutoff: cutoff, Blocks: blocks}), nil
}

// Merge implements cluster.State: rows are validated and stored, digests
// and wants are queued for the table's goroutines.
func (s *Series) Merge(from string, b []byte) error {
	r := reader{b: b}
	r.version(seriesFormat)
	kind := r.byte()
	if r.err != nil {
		return fmt.Errorf("series from %s: %w", from, r.err)
	}
	switch kind {
	case kindRows:
		return s.mergeRows(from, &r)
	case kindDigest:
		d := decodeDigest(&r)
		if err := r.end(); err != nil {
			return fmt.Errorf("series digest from %s: %w", from, err)
		}
		if d.Sender != from || d.Sender == s.o.Self {
			return nil
		}
		select {
		case s.digests <- d:
		default:
			s.stats.dropped.Add(1) // the next push-pull brings another
		}
		return nil
	case kindWant:
		m := decodeWant(&r)
		if err := r.end(); err != nil {
			return fmt.Errorf("series want from %s: %w", from, err)
		}
		if m.To != s.o.Self || from == s.o.Self || !validNode(from) {
			return nil
		}
		s.queueWant(from, m)
		return nil
	}
	return fmt.Errorf("series from %s: unknown kind %d", from, kind)
}

// mergeRows validates a rows message and hands its buckets to the store.
func (s *Series) mergeRows(from string, r *reader) error {
	h, bs := decodeRows(r)
	if err := r.end(); err != nil {
		return fmt.Errorf("series rows from %s: %w", from, err)
	}
	if h.To != "" && h.To != s.o.Self {
		s.stats.notForUs.Add(uint64(len(bs)))
		return nil
	}
	if !validNode(h.Origin) || (s.o.RegionOK != nil && !s.o.RegionOK(h.Region)) {
		s.stats.refused.Add(uint64(len(bs)))
		return fmt.Errorf("series rows from %s: origin %q or region %q refused", from, h.Origin, h.Region)
	}
	if !s.originOK(h.Origin) {
		s.stats.refused.Add(uint64(len(bs)))
		return fmt.Errorf("series rows from %s: already %d origins, %q refused", from, MaxOrigins, h.Origin)
	}
	now := s.o.Now()
	horizon := s.st.Horizon(h.Step, now)
	ahead := now.Add(s.o.Lag)
	var bad invalid
	ok := bs[:0]
	for i := range bs {
		b := &bs[i]
		err := b.Validate()
		switch {
		case err != nil:
		case !validCheck(b.Check) || (s.o.Check != nil && !s.o.Check(b.Check)):
			err = fmt.Errorf("check %q not run here", b.Check)
		case b.Start.Before(horizon):
			err = fmt.Errorf("bucket of %v is past retention", b.Start)
		case b.Start.After(ahead):
			err = fmt.Errorf("bucket of %v is in the future", b.Start)
		}
		if err != nil {
			bad.add(err)
			continue
		}
		ok = append(ok, *b)
	}
	s.stats.refused.Add(uint64(bad.n))
	if len(ok) > 0 {
		if s.st.MergeBuckets(slices.Clip(ok)) {
			s.stats.received.Add(uint64(len(ok)))
		} else {
			s.stats.storeFull.Add(uint64(len(ok)))
		}
	}
	if bad.n > 0 && bad.n < len(bs) {
		return nil // checks this node does not run (a config change): not worth a warning
	}
	return bad.err("buckets", from)
}

// originOK reports whether buckets of origin may be kept: a known origin,
// or a new one while fewer than MaxOrigins are.
func (s *Series) originOK(origin string) bool {
	os := s.st.Origins()
	_, found := slices.BinarySearch(os, origin)
	return found || len(os) < MaxOrigins
}

// compare compares a peer's digest with this node's and sends a want for
// every block that differs, newest first.
func (s *Series) compare(ctx context.Context, d digestMsg) error {
	s.stats.digests.Add(1)
	now := s.o.Now()
	// Compare what both held at the peer's cutoff. A peer whose clock is
	// so far ahead that its cutoff is in this node's future is ignored.
	cutoff := d.Cutoff
	if cutoff > now.UnixMilli() {
		s.log.Debug("peer's series digest is from the future; clocks differ", "peer", d.Sender)
		return nil
	}
	mine, err := s.st.Digest(ctx, cutoff)
	if err != nil {
		return err
	}
	held := make(map[blockKey]store.BlockDigest, len(mine))
	for _, b := range mine {
		held[blockKey{b.Node, b.Step, b.Start}] = b
	}
	blocks := slices.Clone(d.Blocks)
	// newest first; minutes, then days, then hours
	rank := [3]int{0, 2, 1}
	slices.SortStableFunc(blocks, func(a, b store.BlockDigest) int {
		if a.Start != b.Start {
			if a.Start+int64(a.Step.Block()/1e6) > b.Start+int64(b.Step.Block()/1e6) {
				return -1
			}
			return 1
		}
		return rank[a.Step] - rank[b.Step]
	})
	sent := 0
	s.mu.Lock()
	for k, w := range s.wanted {
		if now.Sub(w.at) > time.Hour {
			delete(s.wanted, k)
		}
	}
	s.mu.Unlock()
	for _, b := range blocks {
		k := blockKey{b.Node, b.Step, b.Start}
		if m, ok := held[k]; ok && m.Hash == b.Hash && m.Rows == b.Rows {
			s.mu.Lock()
			delete(s.wanted, k)
			s.mu.Unlock()
			continue
		}
		if !validNode(b.Node) || !s.originOK(b.Node) {
			continue
		}
		if h := s.st.Horizon(b.Step, now); b.Start < h.UnixMilli() && !h.IsZero() {
			continue
		}
		if !s.due(k, d.Sender, b.Hash, now) {
			continue
		}
		if sent >= maxWantsPerDigest {
			break
		}
		stepMS := int64(b.Step.Duration() / 1e6)
		end := min(b.Start+int64(b.Step.Block()/1e6), cutoff-stepMS+1)
		units, err := s.st.Units(ctx, b.Node, b.Step, b.Start, end)
		if err != nil {
			return err
		}
		msg := encodeWant(wantMsg{To: d.Sender, Origin: b.Node, Step: b.Step, Start: b.Start, Cutoff: cutoff, Session: s.session, Units: units})
		if err := s.broadcaster().Broadcast(broadcastName("w", d.Sender, b.Node, b.Step.String(), fmt.Sprint(b.Start)), msg); err != nil {
			s.log.Warn("broadcast a want for buckets", "peer", d.Sender, "err", err)
			continue
		}
		s.stats.wantsSent.Add(1)
		s.log.Debug("want sent", "peer", d.Sender, "origin", b.Node, "step", b.Step, "block", msTimeUTC(b.Start),
			"units_held", len(units), "peer_buckets", b.Rows)
		sent++
	}
	return nil
}

// due reports whether a want for block k may be sent to peer now, and
// records it.
func (s *Series) due(k blockKey, peer string, peerHash uint64, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.wanted[k]
	switch {
	case w == nil:
		s.wanted[k] = &wantState{peer: peer, peerHash: peerHash, at: now}
		return true
	case w.peer != peer && w.peerHash == peerHash && now.Sub(w.at) < s.o.WantRetry:
		return false // another peer holding the same is answering
	case w.peerHash != peerHash:
		// the peer holds something else, or more since: ask (an
		// answer skips what it just sent this run, see answer)
		w.backoff = 0
	case now.Sub(w.at) < s.o.WantRetry<<min(max(w.backoff-2, 0), maxWantBackoff):
		return false
	default:
		w.backoff++ // the answer changed nothing, or was lost: back off
	}
	w.peer, w.peerHash, w.at = peer, peerHash, now
	return true
}

// queueWant queues a peer's want; a newer want of the same block from the
// same peer replaces a queued one.
func (s *Series) queueWant(from string, m wantMsg) {
	m.To = from // who to answer
	s.wantMu.Lock()
	replaced := false
	for i, q := range s.wantQ {
		if q.To == m.To && q.Origin == m.Origin && q.Step == m.Step && q.Start == m.Start {
			s.wantQ[i], replaced = m, true
			break
		}
	}
	if !replaced {
		if len(s.wantQ) >= maxQueuedWants {
			s.wantMu.Unlock()
			return // asked again later
		}
		s.wantQ = append(s.wantQ, m)
	}
	s.wantMu.Unlock()
	select {
	case s.wantWake <- struct{}{}:
	default:
	}
}

func (s *Series) answerLoop(ctx context.Context) {
	for {
		s.wantMu.Lock()
		var m wantMsg
		ok := len(s.wantQ) > 0
		if ok {
			m = s.wantQ[0]
			s.wantQ = s.wantQ[1:]
		}
		s.wantMu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.wantWake:
				continue
			}
		}
		if err := s.answer(ctx, m); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
			s.log.Warn("answer a want for buckets", "peer", m.To, "err", err)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// answer sends m.To this node's buckets of the units of the wanted block
// whose hashes differ from the asker's, newest first, paced.
func (s *Series) answer(ctx context.Context, m wantMsg) error {
	stepMS := int64(m.Step.Duration() / 1e6)
	end := min(m.Start+int64(m.Step.Block()/1e6), m.Cutoff-stepMS+1)
	mine, err := s.st.Units(ctx, m.Origin, m.Step, m.Start, end)
	if err != nil {
		return err
	}
	theirs := make(map[int64]uint64, len(m.Units))
	for _, u := range m.Units {
		theirs[u.Start] = u.Hash
	}
	recent := s.sentTo(fmt.Sprintf("%s/%x", m.To, m.Session), s.o.Now())
	var diff []int64
	for _, u := range mine {
		h, ok := theirs[u.Start]
		if u.Rows == 0 || ok && h == u.Hash {
			continue
		}
		k := blockKey{m.Origin, m.Step, u.Start}
		if su, ok := recent[k]; ok && su.hash == u.Hash {
			continue // just sent, as it is: the want crossed the answer
		}
		diff = append(diff, u.Start)
		recent[k] = sentUnit{hash: u.Hash}
	}
	if len(diff) == 0 {
		return nil
	}
	defer func() {
		// the units count as sent from the end of the answer
		now := s.o.Now()
		for _, st := range diff {
			k := blockKey{m.Origin, m.Step, st}
			u := recent[k]
			u.at = now
			recent[k] = u
		}
	}()
	s.stats.wantsAnswered.Add(1)
	s.log.Debug("answering a want", "peer", m.To, "origin", m.Origin, "step", m.Step, "block", msTimeUTC(m.Start),
		"units", len(diff), "first", msTimeUTC(diff[0]), "last", msTimeUTC(diff[len(diff)-1]))
	want := make(map[int64]bool, len(diff))
	for _, st := range diff {
		want[st] = true
	}
	// Read in slices of at most 60 units, newest first; within a slice
	// by check, then start, so a page holds few checks' hours. A slice's
	// pages are encoded before any is sent, so no read is held open while
	// answers are paced.
	slice := 60 * stepMS
	b := s.broadcaster()
	var (
		e     rowsEncoder
		pages [][]byte
	)
	cut := func() {
		if e.n > 0 {
			pages = append(pages, e.bytes())
			s.stats.answerBuckets.Add(uint64(e.n))
			e.n = 0
		}
	}
	for hi := diff[len(diff)-1] + stepMS; hi > diff[0]; {
		lo := max(floorTo(hi-1, slice), diff[0])
		pages = pages[:0]
		err := s.st.ReadBuckets(ctx, m.Origin, m.Step, lo, hi, func(x *store.Bucket) error {
			if !want[x.Start.UnixMilli()] {
				return nil
			}
			h := rowsMsg{To: m.To, Origin: x.Node, Region: x.Region, Step: x.Step}
			if e.n > 0 && (h != e.hdr || e.size() >= seriesPage-512) {
				cut()
			}
			if e.n == 0 {
				e.reset(h)
			}
			e.add(x)
			return nil
		})
		if err != nil {
			return err
		}
		cut()
		for _, msg := range pages {
			// A message that fits a packet is only gossiped, and may be
			// lost while the asker (re)joins; a larger one the cluster
			// cuts into chunks and also sends directly to every member:
			// answers are padded to be that large. Consecutive answers
			// take turns among a few names: back-to-back chunked
			// messages of one name lose some (the cluster takes a newer
			// chunk of a name for a stale copy of an older one), and a
			// bounded set of names keeps few of them in the gossip queue.
			s.seq++
			n := broadcastName("p", m.To, strconv.FormatUint(s.seq%answerNames, 10))
			msg = padded(msg, cluster.MaxMessageSize+64)
			if err := b.Broadcast(n, msg); err != nil {
				return err
			}
			s.stats.answerBytes.Add(uint64(len(msg)))
			pause := time.Duration(float64(len(msg)) / float64(s.o.AnswerRate) * float64(time.Second))
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		hi = lo
	}
	return nil
}

// sentTo returns the units answered lately to asker, after dropping the
// ones answered more than WantRetry ago (their answer may have been lost).
// Only the answering goroutine uses it.
func (s *Series) sentTo(asker string, now time.Time) map[blockKey]sentUnit {
	m := s.sent[asker]
	if m == nil {
		if len(s.sent) >= maxAskers {
			clear(s.sent)
		}
		m = map[blockKey]sentUnit{}
		s.sent[asker] = m
	}
	if len(m) >= maxSentUnits {
		clear(m)
	}
	for k, u := range m {
		if !u.at.IsZero() && now.Sub(u.at) >= s.o.WantRetry {
			delete(m, k)
		}
	}
	return m
}

func floorTo(v, unit int64) int64 {
	q := v / unit
	if v%unit < 0 {
		q--
	}
	return q * unit
}

func msTimeUTC(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
