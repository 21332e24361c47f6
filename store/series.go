package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Series: every region's buckets, keyed by the node that made them.
//
// A bucket is the aggregate of one node's results of one check during one
// minute, hour or UTC day (the step). A node's own results update its
// buckets as they are written; its peers' buckets arrive through
// MergeBuckets. A region's figure for a period is the sum of its nodes'
// buckets, so nothing is counted twice: a bucket that arrives again
// replaces the one held instead of adding to it.
//
// Merging is a join: of two versions of a bucket the larger one is kept,
// larger meaning more results (a node's bucket only ever gains results),
// ties broken by comparing the remaining figures, so merging is
// idempotent, commutative and associative, and every node that received
// the same buckets, in any order and any number of times, holds the same.
// Hour and day buckets are the sum of the node's minute and hour buckets
// below them, kept as the larger of that sum and any version received
// from a peer (after a node's minute buckets have aged out, its hour and
// day buckets can only be received), so they converge too.
//
// For anti-entropy every bucket has a 64-bit hash; a unit (one node, one
// step, one bucket start: every check's bucket of that period) hashes as
// the sum of its buckets' hashes, and a block (a day of minutes, 10 days of
// hours, 100 days of days) as the sum of its units'. Units are kept in
// series_units, blocks in memory; a peer compares blocks, then units, and
// asks for the buckets of the units that differ.

// Step is the length of a series bucket.
type Step uint8

// Steps.
const (
	StepMinute Step = iota
	StepHour
	StepDay
	numSteps
)

const hourMS = int64(3_600_000)

var (
	stepMS  = [numSteps]int64{minuteMS, hourMS, dayMS}
	blockMS = [numSteps]int64{dayMS, 10 * dayMS, 100 * dayMS}
	// maxCount bounds one node's results of one check in one bucket:
	// 10,000 a minute is far beyond a 1 s interval with every retry.
	maxCount = [numSteps]int64{10_000, 600_000, 14_400_000}
)

// Valid reports whether s is a known step.
func (s Step) Valid() bool { return s < numSteps }

// Duration is the bucket length.
func (s Step) Duration() time.Duration { return time.Duration(stepMS[s]) * time.Millisecond }

// Block is the length of the blocks anti-entropy compares, and the unit
// retention removes.
func (s Step) Block() time.Duration { return time.Duration(blockMS[s]) * time.Millisecond }

// String is the API's name of the step: 1m, 1h or 1d.
func (s Step) String() string {
	switch s {
	case StepMinute:
		return "1m"
	case StepHour:
		return "1h"
	case StepDay:
		return "1d"
	}
	return fmt.Sprintf("step(%d)", uint8(s))
}

// ParseStep parses 1m, 1h or 1d.
func ParseStep(s string) (Step, bool) {
	switch s {
	case "1m":
		return StepMinute, true
	case "1h":
		return StepHour, true
	case "1d":
		return StepDay, true
	}
	return 0, false
}

// Floor rounds t down to the step (UTC days for StepDay).
func (s Step) Floor(t time.Time) time.Time { return msTime(floorTo(t.UnixMilli(), stepMS[s])) }

// Bounds of a bucket's figures: a latency is at most an hour.
const (
	MaxLatencyUS = int64(time.Hour / time.Microsecond)
	// HistBuckets is the number of latency histogram buckets.
	HistBuckets = histBuckets
)

// Hist is a latency histogram: counts per log-scale bucket (see the
// package comment).
type Hist = hist

// Agg is a bucket's figures. Latency fields cover the LatCount results
// with a measured latency, in microseconds; they are 0 when LatCount is 0.
type Agg struct {
	Count, Failures int64
	LatCount        int64
	LatMinUS        int64
	LatMaxUS        int64
	LatSumUS        int64
	Hist            Hist
}

func (a *agg) export() Agg {
	return Agg{Count: a.count, Failures: a.failures, LatCount: a.latN, LatMinUS: a.latMin, LatMaxUS: a.latMax, LatSumUS: a.latSum, Hist: a.h}
}

func (a *Agg) internal() agg {
	return agg{count: a.Count, failures: a.Failures, latN: a.LatCount, latMin: a.LatMinUS, latMax: a.LatMaxUS, latSum: a.LatSumUS, h: a.Hist}
}

// Aggregate is the bucket's figures as the page shows them.
func (a *Agg) Aggregate() Aggregate {
	in := a.internal()
	return in.aggregate()
}

// Bucket is one node's bucket of one check.
type Bucket struct {
	Check  string
	Node   string
	Region string
	Step   Step
	Start  time.Time // aligned to the step
	Agg
}

// Name and field bounds of a bucket.
const (
	maxBucketName   = 253
	maxBucketRegion = 64
)

func validName(s string, n int) bool {
	if s == "" || len(s) > n || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Validate checks a bucket as a peer may send it: names, an aligned start,
// at least one result and consistent, bounded figures.
func (b *Bucket) Validate() error {
	switch {
	case !validName(b.Check, maxBucketName):
		return fmt.Errorf("bucket: bad check name %q", b.Check)
	case !validName(b.Node, maxBucketName):
		return fmt.Errorf("bucket: bad node name %q", b.Node)
	case !validName(b.Region, maxBucketRegion):
		return fmt.Errorf("bucket: bad region %q", b.Region)
	case !b.Step.Valid():
		return fmt.Errorf("bucket: bad step %d", b.Step)
	case b.Start.UnixMilli()%stepMS[b.Step] != 0 || b.Start.Nanosecond()%int(time.Millisecond) != 0:
		return fmt.Errorf("bucket: start %v not aligned to %s", b.Start, b.Step)
	}
	return b.Agg.Validate(b.Step)
}

// Validate checks a bucket's figures for the step.
func (a *Agg) Validate(step Step) error {
	if !step.Valid() {
		return fmt.Errorf("bucket: bad step %d", step)
	}
	switch {
	case a.Count < 1 || a.Count > maxCount[step]:
		return fmt.Errorf("bucket: %d results", a.Count)
	case a.Failures < 0 || a.Failures > a.Count:
		return fmt.Errorf("bucket: %d failures of %d", a.Failures, a.Count)
	case a.LatCount < 0 || a.LatCount > a.Count:
		return fmt.Errorf("bucket: %d latencies of %d", a.LatCount, a.Count)
	}
	var total uint64
	first, last := -1, -1
	for i, c := range a.Hist {
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
			total += c
		}
	}
	if total != uint64(a.LatCount) {
		return fmt.Errorf("bucket: histogram holds %d latencies, %d counted", total, a.LatCount)
	}
	if a.LatCount == 0 {
		if a.LatMinUS != 0 || a.LatMaxUS != 0 || a.LatSumUS != 0 {
			return errors.New("bucket: latency figures without latencies")
		}
		return nil
	}
	switch {
	case a.LatMinUS < 0 || a.LatMinUS > a.LatMaxUS || a.LatMaxUS > MaxLatencyUS:
		return fmt.Errorf("bucket: latency range %d..%d µs", a.LatMinUS, a.LatMaxUS)
	case a.LatSumUS < a.LatCount*a.LatMinUS || a.LatSumUS > a.LatCount*a.LatMaxUS:
		return fmt.Errorf("bucket: latency sum %d µs out of range", a.LatSumUS)
	case bucketOf(a.LatMinUS) != first || bucketOf(a.LatMaxUS) != last:
		return errors.New("bucket: histogram does not match the latency range")
	}
	return nil
}

// greater reports whether a is the larger version of a bucket than b: the
// order merges keep the larger of. A node's bucket only gains results, so
// the version with more results is the newer; the rest breaks ties so
// that every node picks the same.
func greater(a, b *row) bool {
	if c := cmpRow(a, b); c != 0 {
		return c > 0
	}
	return false
}

func cmpRow(a, b *row) int {
	for _, p := range [...][2]int64{{a.count, b.count}, {a.failures, b.failures}, {a.latN, b.latN},
		{a.latSum, b.latSum}, {a.latMax, b.latMax}, {-a.latMin, -b.latMin}} {
		if p[0] != p[1] {
			if p[0] > p[1] {
				return 1
			}
			return -1
		}
	}
	for i := range a.h {
		if a.h[i] != b.h[i] {
			if a.h[i] > b.h[i] {
				return 1
			}
			return -1
		}
	}
	return strings.Compare(a.region, b.region)
}

// row is one bucket's value in the writer: figures and region.
type row struct {
	agg
	region string
}

// rowHash hashes a bucket: FNV-1a over its canonical encoding, finished
// with a mixer so that sums of hashes spread well. buf is scratch space;
// the grown buffer is returned for reuse.
func rowHash(buf []byte, k rkey, r *row) (uint64, []byte) {
	b := buf[:0]
	b = append(b, k.check...)
	b = append(b, 0)
	b = append(b, k.node...)
	b = append(b, 0, byte(k.step))
	b = binary.AppendVarint(b, k.start)
	b = append(b, r.region...)
	b = append(b, 0)
	for _, v := range [...]int64{r.count, r.failures, r.latN, r.latMin, r.latMax, r.latSum} {
		b = binary.AppendVarint(b, v)
	}
	b = r.h.appendTo(b)
	return fnvMix(b), b
}

func fnvMix(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	// splitmix64 finaliser
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// ukey is a unit: one node's buckets of one step and start, every check.
type ukey struct {
	node  string
	step  Step
	start int64
}

// udelta is a change of a unit: hashes add (wrapping), rows count new
// buckets.
type udelta struct {
	hash uint64
	rows int64
}

// bkey is a block of units.
type bkey struct {
	node  string
	step  Step
	start int64
}

func blockOf(u ukey) bkey { return bkey{u.node, u.step, floorTo(u.start, blockMS[u.step])} }

// BlockDigest is what a node holds of one block: the sum of its units'
// hashes and its number of buckets.
type BlockDigest struct {
	Node  string
	Step  Step
	Start int64 // unix ms, aligned to Step.Block()
	Hash  uint64
	Rows  int64
}

// UnitDigest is what a node holds of one unit.
type UnitDigest struct {
	Start int64 // unix ms
	Hash  uint64
	Rows  int64
}

// Blocks returns the digest of every block held, sorted by node, step and
// start.
func (s *Store) Blocks() []BlockDigest {
	s.digMu.RLock()
	out := make([]BlockDigest, 0, len(s.blocks))
	for k, v := range s.blocks {
		if v.rows > 0 {
			out = append(out, BlockDigest{Node: k.node, Step: k.step, Start: k.start, Hash: v.hash, Rows: v.rows})
		}
	}
	s.digMu.RUnlock()
	slices.SortFunc(out, func(a, b BlockDigest) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		if a.Step != b.Step {
			return int(a.Step) - int(b.Step)
		}
		return cmpInt(a.Start, b.Start)
	})
	return out
}

// Origins returns the nodes whose buckets this store holds, sorted.
func (s *Store) Origins() []string {
	s.digMu.RLock()
	defer s.digMu.RUnlock()
	return s.originsLocked()
}

func (s *Store) originsLocked() []string {
	seen := map[string]bool{}
	for k, v := range s.blocks {
		if v.rows > 0 {
			seen[k.node] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SeriesGen changes whenever a past day's bucket changes (a peer's late or
// backfilled buckets): the page re-reads what it keeps of past days.
func (s *Store) SeriesGen() uint64 { return s.pastGen.Load() }

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Horizon is the oldest bucket start of a step that retention keeps at
// now: older buckets are pruned and refused from peers. It is aligned to
// the step's block, so every node prunes whole blocks. The zero time
// means forever.
func (s *Store) Horizon(step Step, now time.Time) time.Time {
	ms, ok := s.horizonMS(step, now.UnixMilli())
	if !ok {
		return time.Time{}
	}
	return msTime(ms)
}

func (s *Store) horizonMS(step Step, now int64) (int64, bool) {
	var r time.Duration
	switch step {
	case StepMinute:
		r = s.opts.RetainMinute
	case StepHour:
		r = s.opts.RetainHour
	case StepDay:
		r = s.opts.RetainDaily
	}
	if r <= 0 {
		return 0, false
	}
	return floorTo(now-r.Milliseconds(), blockMS[step]), true
}

// MergeBuckets hands peers' buckets to the writer, which keeps the larger
// version of each (see above) and updates the hour and day buckets above
// changed ones. It never blocks: with the write queue full it refuses the
// buckets and returns false (anti-entropy brings them again). Invalid
// buckets and buckets older than the horizon are dropped.
func (s *Store) MergeBuckets(bs []Bucket) bool {
	if len(bs) == 0 {
		return true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	select {
	case s.ops <- op{kind: opMerge, opArgs: &opArgs{buckets: bs}}:
		return true
	default:
		s.mergeDropped.Add(uint64(len(bs)))
		return false
	}
}

// live is the set of own buckets changed by results and not yet shared.
type live struct {
	on   bool
	rows map[rkey]*crow // packed: a few bytes of histogram, not 512
}

// maxLive bounds the own buckets waiting to be shared.
const maxLive = 1 << 20

// TrackLive makes the store remember the minute buckets that results
// change, for TakeLive. Off by default (a node without peers shares
// nothing).
func (s *Store) TrackLive(on bool) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	s.live.on = on
	if !on {
		s.live.rows = nil
	}
}

func (s *Store) noteLive(k rkey, r row) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if !s.live.on {
		return
	}
	if s.live.rows == nil {
		s.live.rows = map[rkey]*crow{}
	}
	if _, ok := s.live.rows[k]; !ok && len(s.live.rows) >= maxLive {
		return
	}
	s.live.rows[k] = pack(&r)
}

// TakeLive returns, and forgets, the own minute buckets changed since they
// were last taken whose minute ended at least settle before now, or that
// hold failures (a running outage is shared at once). They are sorted by
// start, then check.
func (s *Store) TakeLive(now time.Time, settle time.Duration) []Bucket {
	cut := now.Add(-settle).UnixMilli()
	s.liveMu.Lock()
	var out []Bucket
	for k, c := range s.live.rows {
		if k.start+minuteMS <= cut || c.failures > 0 {
			r := c.unpack()
			out = append(out, Bucket{Check: k.check, Node: k.node, Region: r.region, Step: k.step, Start: msTime(k.start), Agg: r.export()})
			delete(s.live.rows, k)
		}
	}
	s.liveMu.Unlock()
	slices.SortFunc(out, func(a, b Bucket) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.Check, b.Check)
	})
	return out
}

// Units returns the digests of node's units of step with from <= start <
// to (unix ms), by start.
func (s *Store) Units(ctx context.Context, node string, step Step, from, to int64) ([]UnitDigest, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT start, hash, rows FROM series_units
		WHERE node = ? AND step = ? AND start >= ? AND start < ? ORDER BY start`, node, int64(step), from, to)
	if err != nil {
		return nil, fmt.Errorf("store: read units: %w", err)
	}
	defer rows.Close()
	var out []UnitDigest
	for rows.Next() {
		var u UnitDigest
		var h int64
		if err := rows.Scan(&u.Start, &h, &u.Rows); err != nil {
			return nil, fmt.Errorf("store: read units: %w", err)
		}
		u.Hash = uint64(h)
		out = append(out, u)
	}
	return out, rows.Err()
}

// ReadBuckets calls fn with node's buckets of step with from <= start < to
// (unix ms), ordered by check, then start; fn's error stops the reading
// and is returned.
func (s *Store) ReadBuckets(ctx context.Context, node string, step Step, from, to int64, fn func(*Bucket) error) error {
	rows, err := s.rdb.QueryContext(ctx, `SELECT check_name, start, `+bucketCols+` FROM series
		WHERE node = ? AND step = ? AND start >= ? AND start < ? ORDER BY check_name, start`, node, int64(step), from, to)
	if err != nil {
		return fmt.Errorf("store: read buckets: %w", err)
	}
	defer rows.Close()
	var (
		r    row
		blob sql.RawBytes
	)
	for rows.Next() {
		b := Bucket{Node: node, Step: step}
		var start int64
		r.agg = agg{}
		if err := rows.Scan(&b.Check, &start, &b.Region, &r.count, &r.failures, &r.latN, &r.latMin, &r.latMax, &r.latSum, &blob); err != nil {
			return fmt.Errorf("store: read buckets: %w", err)
		}
		if err := r.h.addEncoded(blob); err != nil {
			return fmt.Errorf("store: read buckets: %w", err)
		}
		b.Start = msTime(start)
		b.Agg = r.export()
		if err := fn(&b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Digest returns the block digests of the units that ended by cutoff
// (unix ms): the digest of what anti-entropy compares, which leaves out the
// minutes still being shared. Sorted as Blocks.
func (s *Store) Digest(ctx context.Context, cutoff int64) ([]BlockDigest, error) {
	blocks := s.Blocks()
	idx := make(map[bkey]int, len(blocks))
	for i, b := range blocks {
		idx[bkey{b.Node, b.Step, b.Start}] = i
	}
	for _, node := range s.Origins() {
		for st := StepMinute; st < numSteps; st++ {
			units, err := s.Units(ctx, node, st, cutoff-stepMS[st]+1, math.MaxInt64)
			if err != nil {
				return nil, err
			}
			for _, u := range units {
				if i, ok := idx[blockOf(ukey{node, st, u.Start})]; ok {
					blocks[i].Hash -= u.Hash
					blocks[i].Rows -= u.Rows
				}
			}
		}
	}
	out := blocks[:0]
	for _, b := range blocks {
		if b.Rows > 0 {
			out = append(out, b)
		}
	}
	return out, nil
}

// Add counts one result in the figures, as the writer does.
func (a *Agg) Add(ok bool, latency time.Duration) {
	in := a.internal()
	in.add(&Result{OK: ok, Latency: latency})
	*a = in.export()
}
