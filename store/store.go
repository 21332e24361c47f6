package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Errors returned by the store.
var (
	ErrClosed   = errors.New("store: closed")
	ErrNotFound = errors.New("store: not found")
)

// Result is one probe result of one node.
type Result struct {
	Node, Region, Check string
	Time                time.Time // start of the probe; stored with millisecond precision
	OK                  bool
	Latency             time.Duration // total; 0 = not measured
	DNS                 time.Duration // phase timings; 0 = phase did not happen
	Connect             time.Duration
	TLS                 time.Duration
	FirstByte           time.Duration
	Code                string // machine error code; "" when OK
	Message             string // human message; "" when OK
}

// Options configures a Store. Zero values select the defaults.
type Options struct {
	Logger *slog.Logger // default: slog.Default()

	BatchSize     int           // results per write transaction; default 500
	FlushInterval time.Duration // longest a result waits in memory; default 1s
	QueueSize     int           // results the queue holds; default max(8*BatchSize, 8192)
	// EnqueueTimeout is how long Add blocks when the queue is full before it
	// drops the result (counted in Stats.Dropped and logged); default 2s.
	EnqueueTimeout time.Duration

	// Retention. 0 selects the default, a negative value keeps forever.
	RetainRaw    time.Duration // raw results; default 7 days
	RetainMinute time.Duration // minute buckets; default 30 days
	RetainHour   time.Duration // hour buckets; default 90 days
	RetainDaily  time.Duration // day buckets; default 0 = forever
	// PruneInterval is how often retention runs (also once at Open);
	// default 10 minutes.
	PruneInterval time.Duration
	// PruneChunk is the most rows one prune transaction deletes; default 2000.
	PruneChunk int

	Now func() time.Time // clock used for retention and zero result times; default time.Now

	// ReadConns is the size of the read pool; default 4.
	ReadConns int
	// PageCacheKiB bounds SQLite's page cache of the writer connection;
	// each read connection gets a quarter of it (default 1024: 1 MiB for
	// the writer, 256 KiB per reader, 2 MiB in all with the default pool).
	// The caches fill as the database grows, so their bound is part of a
	// node's steady RSS (docs/performance.md); a miss reads the page from
	// the kernel's page cache. The writer touches one leaf page per check
	// and step each minute, scattered over the file, so a larger cache
	// saves little.
	PageCacheKiB int

	cacheLimit int // rollup rows cached by the writer; tests shrink it
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = max(8*o.BatchSize, 8192)
	}
	if o.EnqueueTimeout <= 0 {
		o.EnqueueTimeout = 2 * time.Second
	}
	if o.RetainRaw == 0 {
		o.RetainRaw = 7 * 24 * time.Hour
	}
	if o.RetainMinute == 0 {
		o.RetainMinute = 30 * 24 * time.Hour
	}
	if o.RetainHour == 0 {
		o.RetainHour = 90 * 24 * time.Hour
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = 10 * time.Minute
	}
	if o.PruneChunk <= 0 {
		o.PruneChunk = 2000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.PageCacheKiB <= 0 {
		o.PageCacheKiB = 1024
	}
	if o.cacheLimit <= 0 {
		o.cacheLimit = defaultCacheLimit
	}
}

// Store is the result database. All methods are safe for concurrent use.
type Store struct {
	opts Options
	log  *slog.Logger
	path string

	wdb *sql.DB // exactly one connection, used only by the writer goroutine
	rdb *sql.DB // read pool, query_only

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	ops    chan op

	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	w *writer // state of the writer goroutine; touched only by it

	// counters
	accepted    atomic.Uint64 // results taken into the queue
	written     atomic.Uint64 // results committed
	failed      atomic.Uint64 // results lost to a failed write transaction
	dropped     atomic.Uint64 // results refused (queue full or closed)
	lastDropLog atomic.Int64  // unix ns of the last drop log line

	statMu sync.Mutex
	st     batchStats

	// series digests and sharing
	digMu   sync.RWMutex
	blocks  map[bkey]udelta // block digests, from series_units
	pastGen atomic.Uint64   // bumped when a past day's bucket changes
	liveMu  sync.Mutex
	live    live

	mergeDropped atomic.Uint64 // received buckets refused: queue full
	mergeRefused atomic.Uint64 // received buckets refused: invalid or out of range
	mergeOps     atomic.Uint64 // merge transactions
	mergeChanged atomic.Uint64 // buckets changed by merges (received or derived)
	mergeErrors  atomic.Uint64 // failed merge transactions
}

// op is one request to the writer goroutine.
// op is one item of the writer's queue, whose buffer is allocated at its
// bound (8,192 ops): 24 bytes, a result by pointer and the other kinds'
// arguments behind one.
type op struct {
	kind opKind
	res  *Result // opResult's
	*opArgs
}

// opArgs are the arguments of every op but opResult.
type opArgs struct {
	batch []Result
	fn    func(*sql.Tx) error
	// claim is an opExec's: the writer takes it (0 → 1) before it runs fn,
	// a caller that gives up takes it (0 → 2) so fn never runs; a caller
	// that finds fn running waits for it, so fn never writes the caller's
	// variables after exec has returned.
	claim   *atomic.Int32
	buckets []Bucket
	done    chan error
}

type opKind uint8

const (
	opResult opKind = iota
	opBatch
	opFlush
	opExec
	opPrune
	opMerge
)

func sqliteDSN(path string, params ...string) string {
	// SQLite URI filenames decode %HH; escape what would end the path.
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path) + "?" + strings.Join(params, "&")
}

// Open opens (creating if needed) the database at path, applies pending
// schema migrations and starts the writer goroutine.
func Open(path string, opts Options) (*Store, error) {
	opts.setDefaults()
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	wdb, err := sql.Open("sqlite", sqliteDSN(path,
		"_pragma=busy_timeout(5000)",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(NORMAL)",
		"_pragma=foreign_keys(1)",
		fmt.Sprintf("_pragma=cache_size(%d)", -opts.PageCacheKiB),
		"_txlock=immediate",
	))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)

	ctx := context.Background()
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	var mode string
	if err := wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		wdb.Close()
		return nil, fmt.Errorf("store: open %s: journal_mode is %q, want wal (%v)", path, mode, err)
	}
	if _, err := migrateWith(ctx, wdb, migrations, migrationSteps); err != nil {
		wdb.Close()
		return nil, err
	}

	rdb, err := sql.Open("sqlite", sqliteDSN(path,
		"_pragma=busy_timeout(5000)",
		"_pragma=query_only(1)",
		"_pragma=foreign_keys(1)",
		fmt.Sprintf("_pragma=cache_size(%d)", -max(opts.PageCacheKiB/4, 64)),
	))
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(opts.ReadConns)
	rdb.SetMaxIdleConns(opts.ReadConns)
	if err := rdb.PingContext(ctx); err != nil {
		rdb.Close()
		wdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	s := &Store{
		opts:       opts,
		log:        opts.Logger.With("component", "store"),
		path:       path,
		wdb:        wdb,
		rdb:        rdb,
		ops:        make(chan op, opts.QueueSize),
		writerDone: make(chan struct{}),
		blocks:     map[bkey]udelta{},
	}
	w, err := newWriter(s)
	if err != nil {
		rdb.Close()
		wdb.Close()
		return nil, err
	}
	s.w = w
	go w.run()
	return s, nil
}

// Path returns the database file name.
func (s *Store) Path() string { return s.path }

// Add queues a result for the writer. It returns at once unless the queue is
// full; then it blocks up to Options.EnqueueTimeout and, if the queue is still
// full, drops the result, counting it in Stats.Dropped and logging.
// It reports whether the result was queued.
func (s *Store) Add(r Result) bool {
	return s.enqueue(op{kind: opResult, res: &r}, 1)
}

// AddBatch queues several results at once (the slice is copied). Same
// semantics as Add.
func (s *Store) AddBatch(rs []Result) bool {
	if len(rs) == 0 {
		return true
	}
	cp := make([]Result, len(rs))
	copy(cp, rs)
	return s.enqueue(op{kind: opBatch, opArgs: &opArgs{batch: cp}}, len(cp))
}

func (s *Store) enqueue(o op, n int) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.drop(n, "store closed")
		return false
	}
	s.accepted.Add(uint64(n))
	select {
	case s.ops <- o:
		return true
	default:
	}
	t := time.NewTimer(s.opts.EnqueueTimeout)
	defer t.Stop()
	select {
	case s.ops <- o:
		return true
	case <-t.C:
		s.accepted.Add(^uint64(n - 1)) // -n
		s.drop(n, "write queue full")
		return false
	}
}

func (s *Store) drop(n int, why string) {
	total := s.dropped.Add(uint64(n))
	now := time.Now().UnixNano()
	last := s.lastDropLog.Load()
	if now-last >= int64(10*time.Second) && s.lastDropLog.CompareAndSwap(last, now) {
		s.log.Error("dropping results", "reason", why, "dropped_now", n, "dropped_total", total)
	}
}

// call sends a synchronous op to the writer and waits for its answer.
func (s *Store) call(ctx context.Context, o op) error {
	if o.opArgs == nil {
		o.opArgs = &opArgs{}
	}
	o.done = make(chan error, 1)
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.ops <- o:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		if o.claim != nil && !o.claim.CompareAndSwap(0, 2) {
			return <-o.done // fn is running: it ends within SQLite's busy timeout
		}
		return ctx.Err()
	}
}

// Flush waits until every result queued before the call is committed. It
// returns the first write error since the previous Flush, if any.
func (s *Store) Flush(ctx context.Context) error {
	return s.call(ctx, op{kind: opFlush})
}

// Prune runs retention now and waits for it to finish.
func (s *Store) Prune(ctx context.Context) error {
	return s.call(ctx, op{kind: opPrune})
}

// exec runs fn in its own write transaction on the writer goroutine.
func (s *Store) exec(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.call(ctx, op{kind: opExec, opArgs: &opArgs{fn: fn, claim: new(atomic.Int32)}})
}

// Close commits what is queued, stops the writer and closes the database.
// Calling it again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.ops)
		s.mu.Unlock()
		<-s.writerDone
		errs := []error{s.w.finalErr}
		errs = append(errs, s.w.close())
		if _, err := s.wdb.Exec("PRAGMA optimize"); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, s.rdb.Close(), s.wdb.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Stats are the store's counters, for metrics.
type Stats struct {
	ResultsAccepted uint64 // taken into the queue
	ResultsWritten  uint64 // committed
	ResultsFailed   uint64 // lost in a failed write transaction
	Dropped         uint64 // refused: queue full past EnqueueTimeout, or store closed
	QueueDepth      int    // accepted, not yet committed or failed
	QueueCapacity   int    // Options.QueueSize (in queue entries)

	Batches           uint64 // committed result transactions
	BatchErrors       uint64 // failed result transactions
	LastBatchSize     int
	LastBatchDuration time.Duration
	AvgBatchDuration  time.Duration
	MaxBatchDuration  time.Duration
	// BatchDuration is a histogram of result transaction durations:
	// BatchDurationCounts[i] counts batches that took at most
	// BatchDurationBounds[i] (not cumulative); the last count is for
	// slower ones.
	BatchDurationBounds []time.Duration
	BatchDurationCounts []uint64
	BatchDurationSum    time.Duration

	PrunedRows uint64 // rows deleted by retention
	LastPrune  time.Time

	// Received buckets (MergeBuckets).
	MergeOps      uint64 // merge transactions committed or found no change
	MergeChanged  uint64 // buckets changed by them, received or derived
	MergeErrors   uint64 // failed merge transactions
	MergeDropped  uint64 // buckets refused because the write queue was full
	MergeRefused  uint64 // buckets refused as invalid or out of retention
	SeriesBlocks  int    // blocks held, all nodes and steps
	SeriesBuckets int64  // buckets held, all nodes and steps
}

var batchDurationBounds = []time.Duration{
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond,
}

type batchStats struct {
	batches, batchErrors uint64
	lastSize             int
	last, max, sum       time.Duration
	counts               [12]uint64
	pruned               uint64
	lastPrune            time.Time
}

func (s *Store) recordBatch(n int, d time.Duration, err error) {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	if err != nil {
		s.st.batchErrors++
		return
	}
	s.st.batches++
	s.st.lastSize = n
	s.st.last = d
	s.st.sum += d
	s.st.max = max(s.st.max, d)
	i := 0
	for i < len(batchDurationBounds) && d > batchDurationBounds[i] {
		i++
	}
	s.st.counts[i]++
}

func (s *Store) recordPruned(n int64) {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	s.st.pruned += uint64(n)
}

func (s *Store) recordPruneDone(at time.Time) {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	s.st.lastPrune = at
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	s.statMu.Lock()
	b := s.st
	s.statMu.Unlock()
	st := Stats{
		ResultsAccepted:     s.accepted.Load(),
		ResultsWritten:      s.written.Load(),
		ResultsFailed:       s.failed.Load(),
		Dropped:             s.dropped.Load(),
		QueueCapacity:       s.opts.QueueSize,
		Batches:             b.batches,
		BatchErrors:         b.batchErrors,
		LastBatchSize:       b.lastSize,
		LastBatchDuration:   b.last,
		MaxBatchDuration:    b.max,
		BatchDurationBounds: append([]time.Duration(nil), batchDurationBounds...),
		BatchDurationCounts: append([]uint64(nil), b.counts[:]...),
		BatchDurationSum:    b.sum,
		PrunedRows:          b.pruned,
		LastPrune:           b.lastPrune,
	}
	if b.batches > 0 {
		st.AvgBatchDuration = b.sum / time.Duration(b.batches)
	}
	st.MergeOps, st.MergeChanged, st.MergeErrors = s.mergeOps.Load(), s.mergeChanged.Load(), s.mergeErrors.Load()
	st.MergeDropped, st.MergeRefused = s.mergeDropped.Load(), s.mergeRefused.Load()
	s.digMu.RLock()
	st.SeriesBlocks = len(s.blocks)
	for _, b := range s.blocks {
		st.SeriesBuckets += b.rows
	}
	s.digMu.RUnlock()
	depth := int64(st.ResultsAccepted) - int64(st.ResultsWritten) - int64(st.ResultsFailed)
	st.QueueDepth = int(max(depth, 0))
	return st
}

func (s *Store) recordMerge(n, changed int, err error) {
	if err != nil {
		s.mergeErrors.Add(1)
		return
	}
	s.mergeOps.Add(1)
	s.mergeChanged.Add(uint64(changed))
}

// acceptable reports whether a bucket of step starting at start (unix ms)
// may be stored at now: within retention and not in the future.
func (s *Store) acceptable(step Step, start, now int64) bool {
	if h, ok := s.horizonMS(step, now); ok && start < h {
		return false
	}
	return start <= now+5*minuteMS
}

// discardLogger is used by tests and benchmarks.
var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))
