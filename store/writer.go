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

	// defaultCacheLimit is the number of rollup rows the writer keeps in
	// memory before evicting old ones.
	defaultCacheLimit = 16384
)

// agg is one rollup row: the aggregate of the results of one check in one
// region during one minute or one UTC day.
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
	us := durUS(r.Latency)
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

// rkey identifies a rollup row.
type rkey struct {
	check, region string
	start         int64 // unix ms of the minute or day start
	daily         bool
}

func floorTo(ms, unit int64) int64 {
	q := ms / unit
	if ms%unit < 0 {
		q--
	}
	return q * unit
}

// writer is the state of the single writer goroutine. Only that goroutine
// touches it (close runs after it exited).
type writer struct {
	s *Store

	insResult, selMinute, selDay, upMinute, upDay *sql.Stmt

	pending       []Result
	flushT        *time.Timer
	timerOn       bool
	errSinceFlush error
	finalErr      error

	// cache holds current rollup rows. maxStart[i] is the newest start of
	// any row of kind i (0 minute, 1 day) in the database; every existing
	// row with start >= authFrom[i] is in the cache, so a miss there means
	// a new row and needs no SELECT.
	cache    map[rkey]*agg
	maxStart [2]int64
	authFrom [2]int64
	deltas   map[rkey]*agg
	blob     []byte

	prune pruneState
}

type pruneState struct {
	active  bool
	phase   int // 0 raw, 1 minute rollups, 2 daily rollups, 3 done
	now     time.Time
	deleted int64
	waiters []chan error
	err     error
}

const upsertCols = `count = excluded.count, failures = excluded.failures, lat_count = excluded.lat_count,
	lat_min_us = excluded.lat_min_us, lat_max_us = excluded.lat_max_us, lat_sum_us = excluded.lat_sum_us, hist = excluded.hist`

func newWriter(s *Store) (*writer, error) {
	w := &writer{
		s:      s,
		cache:  make(map[rkey]*agg),
		deltas: make(map[rkey]*agg),
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
	w.selMinute = prep(`SELECT count, failures, lat_count, lat_min_us, lat_max_us, lat_sum_us, hist
		FROM minute_rollups WHERE check_name = ? AND minute = ? AND region = ?`)
	w.selDay = prep(`SELECT count, failures, lat_count, lat_min_us, lat_max_us, lat_sum_us, hist
		FROM daily_rollups WHERE check_name = ? AND day = ? AND region = ?`)
	w.upMinute = prep(`INSERT INTO minute_rollups(check_name, minute, region, count, failures, lat_count, lat_min_us, lat_max_us, lat_sum_us, hist)
		VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(check_name, minute, region) DO UPDATE SET ` + upsertCols)
	w.upDay = prep(`INSERT INTO daily_rollups(check_name, day, region, count, failures, lat_count, lat_min_us, lat_max_us, lat_sum_us, hist)
		VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(check_name, day, region) DO UPDATE SET ` + upsertCols)
	if w.finalErr != nil {
		err := w.finalErr
		w.close()
		return nil, err
	}
	if err := w.loadWatermarks(); err != nil {
		w.close()
		return nil, err
	}
	w.flushT = time.NewTimer(time.Hour)
	w.flushT.Stop()
	return w, nil
}

func (w *writer) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{w.insResult, w.selMinute, w.selDay, w.upMinute, w.upDay} {
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
		w.addPending(o.res)
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
		o.done <- w.execTx(o.fn)
	case opPrune:
		w.startPrune(o.done)
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

// commit writes one batch of results and updates its rollups, all in one
// transaction. The rollup cache is updated only after the commit succeeded.
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
	for i := range batch {
		r := &batch[i]
		ts := r.Time.UnixMilli()
		if _, err = ins.ExecContext(ctx, r.Check, r.Node, r.Region, ts, b2i(r.OK), msVal(max(r.Latency, 0)),
			optMS(r.DNS), optMS(r.Connect), optMS(r.TLS), optMS(r.FirstByte), r.Code, r.Message); err != nil {
			return fmt.Errorf("store: insert result: %w", err)
		}
		for _, k := range [2]rkey{
			{check: r.Check, region: r.Region, start: floorTo(ts, minuteMS)},
			{check: r.Check, region: r.Region, start: floorTo(ts, dayMS), daily: true},
		} {
			a := w.deltas[k]
			if a == nil {
				a = new(agg)
				w.deltas[k] = a
			}
			a.add(r)
		}
	}
	sel := [2]*sql.Stmt{tx.StmtContext(ctx, w.selMinute), tx.StmtContext(ctx, w.selDay)}
	up := [2]*sql.Stmt{tx.StmtContext(ctx, w.upMinute), tx.StmtContext(ctx, w.upDay)}
	for k, d := range w.deltas {
		i := 0
		if k.daily {
			i = 1
		}
		cur := new(agg)
		if c, ok := w.cache[k]; ok {
			*cur = *c
		} else if k.start < w.authFrom[i] {
			if err = loadAgg(ctx, sel[i], k, cur); err != nil {
				return err
			}
		}
		cur.merge(d)
		w.blob = cur.h.encode(w.blob)
		if _, err = up[i].ExecContext(ctx, k.check, k.start, k.region, cur.count, cur.failures, cur.latN,
			cur.latMin, cur.latMax, cur.latSum, w.blob); err != nil {
			return fmt.Errorf("store: upsert rollup: %w", err)
		}
		w.deltas[k] = cur // now the new full row, installed after commit
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	for k, a := range w.deltas {
		w.cache[k] = a
		i := kindOf(k)
		w.maxStart[i] = max(w.maxStart[i], k.start)
	}
	clear(w.deltas)
	w.evict()
	return nil
}

func loadAgg(ctx context.Context, st *sql.Stmt, k rkey, a *agg) error {
	var blob []byte
	err := st.QueryRowContext(ctx, k.check, k.start, k.region).Scan(&a.count, &a.failures, &a.latN,
		&a.latMin, &a.latMax, &a.latSum, &blob)
	if errors.Is(err, sql.ErrNoRows) {
		*a = agg{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: read rollup: %w", err)
	}
	return a.h.addEncoded(blob)
}

func kindOf(k rkey) int {
	if k.daily {
		return 1
	}
	return 0
}

// evict keeps the rollup cache bounded: rows well behind the newest ones
// are dropped (a late result reloads its row from the database).
func (w *writer) evict() {
	if len(w.cache) <= w.s.opts.cacheLimit {
		return
	}
	thr := [2]int64{w.maxStart[0] - 5*minuteMS, w.maxStart[1] - dayMS}
	for k := range w.cache {
		if k.start < thr[kindOf(k)] {
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

// resetCache empties the rollup cache; rows newer than any in the
// database cannot exist, so misses beyond them still need no SELECT.
func (w *writer) resetCache() {
	clear(w.cache)
	for i := range w.authFrom {
		w.authFrom[i] = w.maxStart[i] + 1
	}
}

// loadWatermarks initialises maxStart and authFrom from the database.
func (w *writer) loadWatermarks() error {
	for i, q := range []string{`SELECT max(minute) FROM minute_rollups`, `SELECT max(day) FROM daily_rollups`} {
		var m sql.NullInt64
		if err := w.s.wdb.QueryRow(q).Scan(&m); err != nil {
			return fmt.Errorf("store: read rollups: %w", err)
		}
		w.maxStart[i] = math.MinInt64 + 1
		if m.Valid {
			w.maxStart[i] = m.Int64
		}
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
	w.prune.now = w.s.opts.Now()
	w.prune.err = nil
	if done != nil {
		w.prune.waiters = append(w.prune.waiters, done)
	}
}

// pruneCutoff returns the table, the time column and the cutoff (rows with
// column < cutoff go) of a phase; ok is false when the phase keeps all.
func (w *writer) pruneCutoff(phase int) (table, col string, cutoff int64, ok bool) {
	now := w.prune.now.UnixMilli()
	o := &w.s.opts
	switch phase {
	case 0:
		if o.RetainRaw < 0 {
			return "", "", 0, false
		}
		return "results", "ts", now - o.RetainRaw.Milliseconds(), true
	case 1:
		if o.RetainMinute < 0 {
			return "", "", 0, false
		}
		// A minute goes once it ended before the cutoff.
		return "minute_rollups", "minute", now - o.RetainMinute.Milliseconds() - minuteMS + 1, true
	case 2:
		if o.RetainDaily <= 0 {
			return "", "", 0, false
		}
		return "daily_rollups", "day", now - o.RetainDaily.Milliseconds() - dayMS + 1, true
	}
	return "", "", 0, false
}

// pruneChunk deletes at most PruneChunk rows of the current phase in one
// short transaction and advances the phase when it is done.
func (w *writer) pruneChunk() {
	p := &w.prune
	table, col, cutoff, ok := w.pruneCutoff(p.phase)
	if ok {
		var q string
		if table == "results" {
			q = `DELETE FROM results WHERE id IN (SELECT id FROM results WHERE ts < ? LIMIT ?)`
		} else {
			q = fmt.Sprintf(`DELETE FROM %[1]s WHERE (check_name, %[2]s, region) IN
				(SELECT check_name, %[2]s, region FROM %[1]s WHERE %[2]s < ? LIMIT ?)`, table, col)
		}
		res, err := w.s.wdb.Exec(q, cutoff, w.s.opts.PruneChunk)
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			w.s.log.Error("retention failed", "table", table, "err", err)
			if p.err == nil {
				p.err = fmt.Errorf("store: prune %s: %w", table, err)
			}
			ok = false // give up on this phase for this pass
		} else {
			p.deleted += n
			w.s.recordPruned(n)
			if n > 0 && table != "results" {
				// Rows of the cache may be gone: forget them all.
				w.resetCache()
			}
			if n >= int64(w.s.opts.PruneChunk) {
				return // more to do in this phase
			}
		}
	}
	p.phase++
	if p.phase < 3 {
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
