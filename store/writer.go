package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

const (
	minuteMS = int64(60_000)
	dayMS    = int64(86_400_000)

	// defaultCacheLimit is the number of buckets the writer keeps in
	// memory before evicting old ones.
	defaultCacheLimit = 32768
)

// agg is one bucket's figures: the aggregate of the results of one check
// by one node during one minute, hour or UTC day.
type agg struct {
	count, failures int64
	latN            int64 // results with Latency > 0; the latency fields cover only these
	latMin, latMax  int64 // microseconds
	latSum          int64 // microseconds
	h               hist
}

func durUS(d time.Duration) int64 { return int64(d / time.Microsecond) }

func (a *agg) add(r *Result) {
	a.count++
	if !r.OK {
		a.failures++
	}
	if r.Latency <= 0 {
		return
	}
	us := min(durUS(r.Latency), MaxLatencyUS)
	if a.latN == 0 || us < a.latMin {
		a.latMin = us
	}
	if a.latN == 0 || us > a.latMax {
		a.latMax = us
	}
	a.latN++
	a.latSum += us
	a.h.add(us)
}

func (a *agg) merge(b *agg) {
	if b.latN > 0 {
		if a.latN == 0 || b.latMin < a.latMin {
			a.latMin = b.latMin
		}
		if a.latN == 0 || b.latMax > a.latMax {
			a.latMax = b.latMax
		}
	}
	a.count += b.count
	a.failures += b.failures
	a.latN += b.latN
	a.latSum += b.latSum
	a.h.merge(&b.h)
}

// rkey identifies a bucket.
type rkey struct {
	check, node string
	step        Step
	start       int64 // unix ms of the bucket's start
}

func (k rkey) unit() ukey { return ukey{k.node, k.step, k.start} }

// parent is the bucket of the next step that holds k.
func (k rkey) parent() rkey {
	p := k.step + 1
	return rkey{k.check, k.node, p, floorTo(k.start, stepMS[p])}
}

func floorTo(ms, unit int64) int64 {
	q := ms / unit
	if ms%unit < 0 {
		q--
	}
	return q * unit
}

// crow is a cached bucket, its histogram kept encoded (a few bytes
// instead of 512).
type crow struct {
	region                                        string
	count, failures, latN, latMin, latMax, latSum int64
	hist                                          []byte
}

func pack(r *row) *crow {
	return &crow{region: r.region, count: r.count, failures: r.failures, latN: r.latN, latMin: r.latMin,
		latMax: r.latMax, latSum: r.latSum, hist: r.h.encode(nil)}
}

func (c *crow) unpack() row {
	r := row{region: c.region, agg: agg{count: c.count, failures: c.failures, latN: c.latN, latMin: c.latMin,
		latMax: c.latMax, latSum: c.latSum}}
	_ = r.h.addEncoded(c.hist) // encoded by pack
	return r
}

// writer is the state of the single writer goroutine. Only that goroutine
// touches it (close runs after it exited).
type writer struct {
	s *Store

	insResult, selRow, upRow, selChildren, selUnit, upUnit *sql.Stmt

	pending       []Result
	flushT        *time.Timer
	timerOn       bool
	errSinceFlush error
	finalErr      error

	// cache holds current buckets. maxStart[i] is the newest start of any
	// bucket of step i in the database; every existing bucket with start
	// >= authFrom[i] is in the cache, so a miss there means a new bucket
	// and needs no SELECT.
	cache    map[rkey]*crow
	maxStart [numSteps]int64
	authFrom [numSteps]int64
	sweptAt  int64 // maxStart[0] at the last eviction sweep

	// per transaction
	deltas  map[rkey]*row // own results' additions
	changed map[rkey]*row // new values of the buckets written
	units   map[ukey]udelta
	buf     []byte
	blob    []byte

	prune pruneState
}

type pruneState struct {
	active  bool
	phase   int // 0 raw, 1 minute, 2 hour, 3 day buckets, 4 done
	nodes   []string
	node    int // index in nodes of the node being pruned
	now     time.Time
	deleted int64
	waiters []chan error
	err     error
}

const bucketCols = `region, count, failures, lat_count, lat_min_us, lat_max_us, lat_sum_us, hist`

func newWriter(s *Store) (*writer, error) {
	w := &writer{
		s:       s,
		cache:   make(map[rkey]*crow),
		deltas:  make(map[rkey]*row),
		changed: make(map[rkey]*row),
		units:   make(map[ukey]udelta),
	}
	prep := func(q string) *sql.Stmt {
		if w.finalErr != nil {
			return nil
		}
		st, err := s.wdb.Prepare(q)
		if err != nil {
			w.finalErr = fmt.Errorf("store: prepare: %w", err)
		}
		return st
	}
	w.insResult = prep(`INSERT INTO results(check_name, node, region, ts, ok, latency_ms, dns_ms, connect_ms, tls_ms, first_byte_ms, code, message)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`)
	w.selRow = prep(`SELECT ` + bucketCols + ` FROM series WHERE check_name = ? AND node = ? AND step = ? AND start = ?`)
	w.upRow = prep(`INSERT INTO series(check_name, node, step, start, ` + bucketCols + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(check_name, node, step, start) DO UPDATE SET region = excluded.region, count = excluded.count,
		failures = excluded.failures, lat_count = excluded.lat_count, lat_min_us = excluded.lat_min_us,
		lat_max_us = excluded.lat_max_us, lat_sum_us = excluded.lat_sum_us, hist = excluded.hist`)
	w.selChildren = prep(`SELECT ` + bucketCols + ` FROM series
		WHERE check_name = ? AND node = ? AND step = ? AND start >= ? AND start < ? ORDER BY start`)
	w.selUnit = prep(`SELECT hash, rows FROM series_units WHERE node = ? AND step = ? AND start = ?`)
	w.upUnit = prep(`INSERT INTO series_units(node, step, start, hash, rows) VALUES (?,?,?,?,?)
		ON CONFLICT(node, step, start) DO UPDATE SET hash = excluded.hash, rows = excluded.rows`)
	if w.finalErr != nil {
		err := w.finalErr
		w.close()
		return nil, err
	}
	if err := w.loadDigests(); err != nil {
		w.close()
		return nil, err
	}
	w.flushT = time.NewTimer(time.Hour)
	w.flushT.Stop()
	return w, nil
}

func (w *writer) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{w.insResult, w.selRow, w.upRow, w.selChildren, w.selUnit, w.upUnit} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

func (w *writer) run() {
	defer close(w.s.writerDone)
	tick := time.NewTicker(w.s.opts.PruneInterval)
	defer tick.Stop()
	w.startPrune(nil)
	for {
		if w.prune.active {
			// Retention runs in chunks; between two chunks up to BatchSize
			// queued ops are served, so neither starves the other.
		serve:
			for i := 0; i < w.s.opts.BatchSize; i++ {
				select {
				case o, ok := <-w.s.ops:
					if !w.handle(o, ok) {
						return
					}
				case <-w.flushT.C:
					w.timerOn = false
					w.commitPending()
				default:
					break serve
				}
			}
			w.pruneChunk()
			continue
		}
		select {
		case o, ok := <-w.s.ops:
			if !w.handle(o, ok) {
				return
			}
		case <-w.flushT.C:
			w.timerOn = false
			w.commitPending()
		case <-tick.C:
			w.startPrune(nil)
		}
	}
}

// handle processes one op; it returns false when the queue is closed.
func (w *writer) handle(o op, ok bool) bool {
	if !ok {
		w.commitPending()
		w.finalErr = w.errSinceFlush
		for _, c := range w.prune.waiters {
			c <- ErrClosed
		}
		w.prune.waiters = nil
		return false
	}
	switch o.kind {
	case opResult:
		w.addPending(*o.res)
	case opBatch:
		for i := range o.batch {
			w.addPending(o.batch[i])
		}
	case opFlush:
		w.commitPending()
		err := w.errSinceFlush
		w.errSinceFlush = nil
		o.done <- err
	case opExec:
		if o.claim != nil && !o.claim.CompareAndSwap(0, 1) {
			o.done <- context.Canceled // the caller gave up before it ran
			break
		}
		o.done <- w.execTx(o.fn)
	case opPrune:
		w.startPrune(o.done)
	case opMerge:
		// Results queued before the buckets are committed first, so a
		// node's own results and received buckets keep their order.
		w.commitPending()
		n, err := w.merge(o.buckets)
		w.s.recordMerge(len(o.buckets), n, err)
		if err != nil {
			w.s.log.Warn("merge received buckets failed; anti-entropy brings them again", "buckets", len(o.buckets), "err", err)
		}
	}
	return true
}

func (w *writer) addPending(r Result) {
	if r.Time.IsZero() {
		r.Time = w.s.opts.Now()
	}
	w.pending = append(w.pending, r)
	if len(w.pending) >= w.s.opts.BatchSize {
		w.commitPending()
		return
	}
	if !w.timerOn {
		w.flushT.Reset(w.s.opts.FlushInterval)
		w.timerOn = true
	}
}

func (w *writer) commitPending() {
	if w.timerOn {
		w.flushT.Stop()
		w.timerOn = false
	}
	if len(w.pending) == 0 {
		return
	}
	n := len(w.pending)
	start := time.Now()
	err := w.commit(w.pending)
	d := time.Since(start)
	w.s.recordBatch(n, d, err)
	if err != nil {
		w.s.failed.Add(uint64(n))
		w.s.log.Error("write batch failed; results lost", "results", n, "err", err)
		if w.errSinceFlush == nil {
			w.errSinceFlush = err
		}
	} else {
		w.s.written.Add(uint64(n))
	}
	clear(w.pending) // drop string references
	w.pending = w.pending[:0]
}

func msVal(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func optMS(d time.Duration) any {
	if d <= 0 {
		return nil
	}
	return msVal(d)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// txStmts are the writer's statements bound to one transaction.
type txStmts struct {
	selRow, upRow, selChildren, selUnit, upUnit *sql.Stmt
}

func (w *writer) bind(ctx context.Context, tx *sql.Tx) txStmts {
	return txStmts{tx.StmtContext(ctx, w.selRow), tx.StmtContext(ctx, w.upRow), tx.StmtContext(ctx, w.selChildren),
		tx.StmtContext(ctx, w.selUnit), tx.StmtContext(ctx, w.upUnit)}
}

func (w *writer) begin() {
	clear(w.changed)
	clear(w.units)
}

// commit writes one batch of results and adds them to their nodes' minute,
// hour and day buckets, all in one transaction. The cache and the digests
// are updated only after the commit succeeded.
func (w *writer) commit(batch []Result) (err error) {
	ctx := context.Background()
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback() //nolint:errcheck
		}
	}()
	ins := tx.StmtContext(ctx, w.insResult)
	clear(w.deltas)
	w.begin()
	for i := range batch {
		r := &batch[i]
		ts := r.Time.UnixMilli()
		if _, err = ins.ExecContext(ctx, r.Check, r.Node, r.Region, ts, b2i(r.OK), msVal(max(r.Latency, 0)),
			optMS(r.DNS), optMS(r.Connect), optMS(r.TLS), optMS(r.FirstByte), r.Code, r.Message); err != nil {
			return fmt.Errorf("store: insert result: %w", err)
		}
		for st := StepMinute; st < numSteps; st++ {
			k := rkey{check: r.Check, node: r.Node, step: st, start: floorTo(ts, stepMS[st])}
			d := w.deltas[k]
			if d == nil {
				d = new(row)
				w.deltas[k] = d
			}
			d.add(r)
			d.region = r.Region
		}
	}
	stm := w.bind(ctx, tx)
	for k, d := range w.deltas {
		cur, existed, lerr := w.load(ctx, stm, k)
		if lerr != nil {
			return lerr
		}
		nr := cur
		nr.merge(&d.agg)
		nr.region = d.region
		if err = w.put(ctx, stm, k, &cur, existed, &nr); err != nil {
			return err
		}
	}
	if err = w.writeUnits(ctx, stm); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	w.install()
	for k := range w.deltas {
		if k.step == StepMinute {
			w.s.noteLive(k, *w.changed[k])
		}
	}
	clear(w.deltas)
	return nil
}

// merge keeps the larger version of each received bucket and updates the
// hour and day buckets above the ones that changed, in one transaction.
// It returns the number of buckets that changed (received or derived).
func (w *writer) merge(bs []Bucket) (n int, err error) {
	ctx := context.Background()
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tx.Rollback() //nolint:errcheck
		}
	}()
	w.begin()
	stm := w.bind(ctx, tx)
	now := w.s.opts.Now().UnixMilli()
	// parents[i]: buckets of step i+1 above changed buckets of step i.
	parents := [2]map[rkey]bool{{}, {}}
	for i := range bs {
		b := &bs[i]
		if b.Validate() != nil || !w.s.acceptable(b.Step, b.Start.UnixMilli(), now) {
			w.s.mergeRefused.Add(1)
			continue
		}
		k := rkey{check: b.Check, node: b.Node, step: b.Step, start: b.Start.UnixMilli()}
		nr := row{agg: b.Agg.internal(), region: b.Region}
		cur, existed, lerr := w.load(ctx, stm, k)
		if lerr != nil {
			return 0, lerr
		}
		if existed && !greater(&nr, &cur) {
			continue
		}
		if err = w.put(ctx, stm, k, &cur, existed, &nr); err != nil {
			return 0, err
		}
		if k.step < StepDay {
			parents[k.step][k.parent()] = true
		}
	}
	for st := range parents {
		for pk := range parents[st] {
			sum, ok, serr := w.sumChildren(ctx, stm, pk)
			if serr != nil {
				return 0, serr
			}
			if !ok {
				continue
			}
			cur, existed, lerr := w.load(ctx, stm, pk)
			if lerr != nil {
				return 0, lerr
			}
			if existed && !greater(&sum, &cur) {
				continue
			}
			if err = w.put(ctx, stm, pk, &cur, existed, &sum); err != nil {
				return 0, err
			}
			if pk.step == StepHour {
				parents[1][pk.parent()] = true
			}
		}
	}
	if len(w.changed) == 0 {
		err = tx.Rollback()
		return 0, err
	}
	if err = w.writeUnits(ctx, stm); err != nil {
		return 0, err
	}
	if err = tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: commit: %w", err)
	}
	n = len(w.changed)
	w.install()
	return n, nil
}

// load returns the current value of bucket k: written in this
// transaction, cached, known not to exist, or read.
func (w *writer) load(ctx context.Context, stm txStmts, k rkey) (row, bool, error) {
	if r := w.changed[k]; r != nil {
		return *r, true, nil
	}
	if c := w.cache[k]; c != nil {
		return c.unpack(), true, nil
	}
	if k.start >= w.authFrom[k.step] {
		return row{}, false, nil
	}
	var r row
	var blob []byte
	err := stm.selRow.QueryRowContext(ctx, k.check, k.node, int64(k.step), k.start).Scan(&r.region, &r.count, &r.failures,
		&r.latN, &r.latMin, &r.latMax, &r.latSum, &blob)
	if errors.Is(err, sql.ErrNoRows) {
		return row{}, false, nil
	}
	if err != nil {
		return row{}, false, fmt.Errorf("store: read bucket: %w", err)
	}
	if err := r.h.addEncoded(blob); err != nil {
		return row{}, false, err
	}
	return r, true, nil
}

// put writes bucket k's new value nr (cur is the old one when existed)
// and accounts for it in its unit's digest.
func (w *writer) put(ctx context.Context, stm txStmts, k rkey, cur *row, existed bool, nr *row) error {
	w.blob = nr.h.encode(w.blob)
	if _, err := stm.upRow.ExecContext(ctx, k.check, k.node, int64(k.step), k.start, nr.region, nr.count, nr.failures,
		nr.latN, nr.latMin, nr.latMax, nr.latSum, w.blob); err != nil {
		return fmt.Errorf("store: write bucket: %w", err)
	}
	var h uint64
	h, w.buf = rowHash(w.buf, k, nr)
	u := w.units[k.unit()]
	u.hash += h
	if existed {
		var old uint64
		old, w.buf = rowHash(w.buf, k, cur)
		u.hash -= old
	} else {
		u.rows++
	}
	w.units[k.unit()] = u
	cp := *nr
	w.changed[k] = &cp
	return nil
}

// sumChildren sums the node's buckets of the step below pk within pk's
// period; ok is false when there are none.
func (w *writer) sumChildren(ctx context.Context, stm txStmts, pk rkey) (row, bool, error) {
	rows, err := stm.selChildren.QueryContext(ctx, pk.check, pk.node, int64(pk.step-1), pk.start, pk.start+stepMS[pk.step])
	if err != nil {
		return row{}, false, fmt.Errorf("store: read buckets: %w", err)
	}
	defer rows.Close()
	var sum, c row
	var blob sql.RawBytes
	ok := false
	for rows.Next() {
		c.agg = agg{}
		if err := rows.Scan(&c.region, &c.count, &c.failures, &c.latN, &c.latMin, &c.latMax, &c.latSum, &blob); err != nil {
			return row{}, false, fmt.Errorf("store: read buckets: %w", err)
		}
		if err := c.h.addEncoded(blob); err != nil {
			return row{}, false, err
		}
		sum.merge(&c.agg)
		sum.region = c.region
		ok = true
	}
	return sum, ok, rows.Err()
}

// writeUnits adds the transaction's unit changes to series_units.
func (w *writer) writeUnits(ctx context.Context, stm txStmts) error {
	for u, d := range w.units {
		var h, n int64
		err := stm.selUnit.QueryRowContext(ctx, u.node, int64(u.step), u.start).Scan(&h, &n)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: read unit: %w", err)
		}
		if _, err := stm.upUnit.ExecContext(ctx, u.node, int64(u.step), u.start, int64(uint64(h)+d.hash), n+d.rows); err != nil {
			return fmt.Errorf("store: write unit: %w", err)
		}
	}
	return nil
}

// install applies a committed transaction: the cache, the watermarks, the
// block digests and the past-day generation.
func (w *writer) install() {
	today := floorTo(w.s.opts.Now().UnixMilli(), dayMS)
	past := false
	for k, r := range w.changed {
		if k.start >= w.authFrom[k.step] || w.cache[k] != nil {
			w.cache[k] = pack(r)
		}
		w.maxStart[k.step] = max(w.maxStart[k.step], k.start)
		if k.step == StepDay && k.start < today {
			past = true
		}
	}
	w.s.digMu.Lock()
	for u, d := range w.units {
		b := blockOf(u)
		v := w.s.blocks[b]
		v.hash += d.hash
		v.rows += d.rows
		w.s.blocks[b] = v
	}
	w.s.digMu.Unlock()
	if past {
		w.s.pastGen.Add(1)
	}
	clear(w.units)
	w.evict()
}

// evict keeps the cache small: once a minute (when the first bucket of a
// newer minute is written) and whenever it holds more than cacheLimit
// buckets, buckets well behind the newest ones are dropped (a late result
// reloads its bucket from the database). So it holds about six minute
// buckets, three hour buckets and three day buckets per check and node,
// not up to cacheLimit buckets (half an hour of minute buckets at 1,000
// checks) before the first eviction.
func (w *writer) evict() {
	if w.maxStart[0] <= w.sweptAt && len(w.cache) <= w.s.opts.cacheLimit {
		return
	}
	w.sweptAt = w.maxStart[0]
	thr := [numSteps]int64{w.maxStart[0] - 5*minuteMS, w.maxStart[1] - 2*hourMS, w.maxStart[2] - 2*dayMS}
	for k := range w.cache {
		if k.start < thr[k.step] {
			delete(w.cache, k)
		}
	}
	for i := range thr {
		w.authFrom[i] = max(w.authFrom[i], thr[i])
	}
	if len(w.cache) > w.s.opts.cacheLimit {
		w.resetCache()
	}
}

// resetCache empties the cache; buckets newer than any in the database
// cannot exist, so misses beyond them still need no SELECT.
func (w *writer) resetCache() {
	clear(w.cache)
	for i := range w.authFrom {
		w.authFrom[i] = w.maxStart[i] + 1
	}
}

// loadDigests reads the units into the block digests and initialises
// maxStart and authFrom.
func (w *writer) loadDigests() error {
	for i := range w.maxStart {
		w.maxStart[i] = math.MinInt64 + 1
	}
	rows, err := w.s.wdb.Query(`SELECT node, step, start, hash, rows FROM series_units`)
	if err != nil {
		return fmt.Errorf("store: read units: %w", err)
	}
	defer rows.Close()
	w.s.digMu.Lock()
	defer w.s.digMu.Unlock()
	for rows.Next() {
		var u ukey
		var step, h, n int64
		if err := rows.Scan(&u.node, &step, &u.start, &h, &n); err != nil {
			return fmt.Errorf("store: read units: %w", err)
		}
		if step < 0 || step >= int64(numSteps) {
			continue
		}
		u.step = Step(step)
		b := blockOf(u)
		v := w.s.blocks[b]
		v.hash += uint64(h)
		v.rows += n
		w.s.blocks[b] = v
		w.maxStart[u.step] = max(w.maxStart[u.step], u.start)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read units: %w", err)
	}
	w.resetCache()
	return nil
}

// execTx runs fn in its own write transaction.
func (w *writer) execTx(fn func(*sql.Tx) error) (err error) {
	tx, err := w.s.wdb.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	if err = fn(tx); err != nil {
		tx.Rollback() //nolint:errcheck
		return err
	}
	return tx.Commit()
}

// startPrune (re)starts a retention pass with the current clock. done, if
// not nil, is answered when the pass ends.
func (w *writer) startPrune(done chan error) {
	w.prune.active = true
	w.prune.phase = 0
	w.prune.node = 0
	w.prune.nodes = nil
	w.prune.now = w.s.opts.Now()
	w.prune.err = nil
	if done != nil {
		w.prune.waiters = append(w.prune.waiters, done)
	}
}

// pruneChunk deletes at most PruneChunk rows of the current phase (raw
// results, then each step's buckets node by node) in one short
// transaction and advances when a phase or node is done.
func (w *writer) pruneChunk() {
	p := &w.prune
	now := p.now.UnixMilli()
	var (
		res   sql.Result
		err   error
		what  string
		next  bool // this node or phase is done
		chunk = w.s.opts.PruneChunk
	)
	if p.phase == 0 {
		what = "results"
		if w.s.opts.RetainRaw < 0 {
			next = true
		} else {
			res, err = w.s.wdb.Exec(`DELETE FROM results WHERE id IN (SELECT id FROM results WHERE ts < ? LIMIT ?)`,
				now-w.s.opts.RetainRaw.Milliseconds(), chunk)
		}
	} else {
		step := Step(p.phase - 1)
		what = "buckets " + step.String()
		cutoff, ok := w.s.horizonMS(step, now)
		if p.nodes == nil {
			p.nodes = w.s.Origins()
			if p.nodes == nil {
				p.nodes = []string{}
			}
		}
		if !ok || p.node >= len(p.nodes) {
			p.phase++
			p.node, p.nodes = 0, nil
			w.finishPrune()
			return
		}
		node := p.nodes[p.node]
		res, err = w.s.wdb.Exec(`DELETE FROM series WHERE (check_name, node, step, start) IN
			(SELECT check_name, node, step, start FROM series WHERE node = ? AND step = ? AND start < ? LIMIT ?)`,
			node, int64(step), cutoff, chunk)
		if err == nil {
			if n, _ := res.RowsAffected(); n < int64(chunk) {
				// this node's buckets are gone: its units and blocks too
				if _, err = w.s.wdb.Exec(`DELETE FROM series_units WHERE node = ? AND step = ? AND start < ?`, node, int64(step), cutoff); err == nil {
					w.s.digMu.Lock()
					for b := range w.s.blocks {
						if b.node == node && b.step == step && b.start < cutoff {
							delete(w.s.blocks, b)
						}
					}
					w.s.digMu.Unlock()
				}
				p.node++
			}
		}
	}
	if err == nil && res != nil {
		var n int64
		n, err = res.RowsAffected()
		if err == nil {
			p.deleted += n
			w.s.recordPruned(n)
			if n > 0 && p.phase > 0 {
				// Buckets of the cache may be gone: forget them all.
				w.resetCache()
			}
			if p.phase == 0 && n < int64(chunk) {
				next = true
			}
		}
	}
	if err != nil {
		w.s.log.Error("retention failed", "what", what, "err", err)
		if p.err == nil {
			p.err = fmt.Errorf("store: prune %s: %w", what, err)
		}
		if p.phase > 0 {
			p.node++ // give up on this node for this pass
		} else {
			next = true
		}
	}
	if next {
		p.phase++
	}
	w.finishPrune()
}

// finishPrune ends the pass once every phase is done.
func (w *writer) finishPrune() {
	p := &w.prune
	if p.phase <= int(numSteps) {
		return
	}
	p.active = false
	w.s.recordPruneDone(p.now)
	if p.deleted > 0 {
		w.s.log.Debug("retention done", "deleted", p.deleted)
	}
	p.deleted = 0
	for _, c := range p.waiters {
		c <- p.err
	}
	p.waiters = nil
}
