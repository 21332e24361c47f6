// Package scheduler runs every check at its interval on gocron v2.
//
// # Phases
//
// A check runs at fixed points of wall-clock time, not at fixed delays after
// the node started: at every time t with
//
//	t (Unix nanoseconds) ≡ Phase(name, p, k, R, j, N)   (mod p)
//
// where p is the check's period (its interval, or what SetInterval set, such
// as its down_interval), k is this node's region's index among the R
// configured regions, j this node's index among the N nodes of its region
// (by name), and
//
//	Phase = ⌊(base + k·p/R + j·p/(R·N)) mod p⌋_Tick
//	      = ⌊(base + p·(k·N + j)/(R·N)) mod p⌋_Tick   (integer nanoseconds)
//	base  = FNV-1a-64(name) mod p
//
// where ⌊x⌋_Tick rounds x down to a whole Tick (100 ms).
//
// The base offset spreads checks over the whole period, so a thousand checks
// do not fire in one burst; the region term spreads the regions evenly over
// the period (at 60 s and three regions some region probes every 20 s); the
// node term spreads a region's nodes again between its phase and the next
// region's (two nodes of one of three regions at 60 s probe 10 s apart). A
// phase is a pure function of (name, p, k, R, j, N): every node computes
// the others' phases without talking to them, and a restarted node keeps its
// own. SetPlace changes (k, R, j, N) when membership changes and moves every
// check to its new phase; SetInterval changes one check's period.
//
// # Ticks
//
// Phases are whole Ticks, so for a period that is a whole number of Ticks
// (every interval the config accepts that is written in tenths of a second)
// a check runs only at the start of a tenth of a second, together with the
// other checks due in that tenth. A node then wakes at most ten times a
// second to start probes, however many checks it runs, and the probes of one
// tick share the wake-up: at 1,000 checks every 10 s a node wakes 10 times a
// second to start 10 probes instead of 100 times to start one (what this
// saves is in docs/performance.md). Rounding moves a check's phase by less
// than a Tick; the regions' spread (k·p/R) is kept to within a Tick.
//
// # Runs
//
// The checks with the same period and phase share a slot: one gocron
// duration job started at their next phase point, whose every run starts
// each of its checks' probes in a goroutine of its own. At 1,000 checks
// every 10 s there are at most 100 slots (a period's whole Ticks), so
// gocron keeps and wakes 100 jobs instead of 1,000 (what this saves is in
// docs/performance.md). For each check:
//   - its first run waits at most min(p, MaxSpread), as before phases were
//     staggered: when the check's next phase point is further than MaxSpread
//     away, it also runs once at Offset(name, p, MaxSpread) after it was
//     scheduled (at Start, or when Set adds or changes it), spread by name so
//     a thousand checks do not burst, and then at its phase points. Only Set
//     and Start do this; SetInterval and SetPlace never add a run;
//   - after SetInterval or SetPlace the next run is the next point of the new
//     phase, at most one (new) period later, never at once: a thousand checks
//     that change period together stay spread over it;
//   - it never overlaps itself: a run still going when the next is due skips
//     that slot, also across SetInterval, SetPlace and RunNow. These are the
//     semantics of gocron's singleton LimitModeReschedule, implemented with a
//     per-check flag because gocron's singleton mode keeps a goroutine and a
//     1,000-slot queue per job (16 MB of heap for 1,000 checks);
//   - it runs with a context that carries the check's timeout and is
//     cancelled on Shutdown or when the check is removed or changed by Set
//     (not by SetInterval or SetPlace, which keep a running probe going).
//
// There is no limit on concurrent jobs: a probe of a hung target holds only
// its own goroutine until its timeout, never a slot others need.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/bits"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"

	"github.com/vantage-dev/vantage/config"
)

// Run is called for every due probe of a check. ctx carries the check's
// timeout and is cancelled on shutdown.
type Run func(ctx context.Context, c *config.Check)

// Options tune the scheduler.
type Options struct {
	Logger *slog.Logger
	// MaxSpread bounds the wait for a check's first run after Start or after
	// Set adds or changes it (default 30s): a check never waits longer than
	// min(interval, MaxSpread) for it. See the package doc.
	MaxSpread time.Duration

	// This node's place, which staggers its phases (see the package doc):
	// Region is the index of its region in the configured region list
	// (0-based), Regions the length of that list (0 means 1); Node is its
	// index among its region's nodes ordered by name, Nodes their number
	// (0 means 1).
	Region, Regions int
	Node, Nodes     int

	// Clock is the scheduler's clock (default: the real clock); tests pass
	// a clockwork.FakeClock.
	Clock clockwork.Clock
}

// Scheduler owns one gocron scheduler, one job per check and one gocron
// job per slot.
type Scheduler struct {
	run   Run
	opts  Options
	clock clockwork.Clock
	s     gocron.Scheduler
	ctx   context.Context
	stop  context.CancelFunc
	extra sync.WaitGroup // probes: RunNow, first runs and slots' runs

	mu      sync.Mutex
	place   place
	started bool
	closed  bool
	jobs    map[string]*job
	slots   map[slotKey]*slot
}

// slotKey is a period and a phase in it.
type slotKey struct{ period, phase time.Duration }

func (k slotKey) String() string { return fmt.Sprintf("%v@%v", k.period, k.phase) }

// slot is the checks that run at the same period and phase, and the
// gocron job that runs them. Guarded by Scheduler.mu.
type slot struct {
	key  slotKey
	id   uuid.UUID // the gocron job
	jobs []*job    // in no order; a job's slotIdx is its index here
}

type place struct{ region, regions, node, nodes int }

// job is one check. Its fields other than running are guarded by
// Scheduler.mu.
type job struct {
	// check points into the config the scheduler was last Set with (not
	// a copy: 10,000 checks' copies were 6.5 MB); a Set that finds the
	// check unchanged points it at the new config's, so the old one is
	// not kept alive. Probes read it without the lock.
	check    atomic.Pointer[config.Check]
	ctx      context.Context // cancelled when the check is removed or changed
	cancel   context.CancelFunc
	override time.Duration // period set by SetInterval; 0: the check's interval
	running  atomic.Bool

	slot    *slot // nil until scheduled
	slotIdx int
	first   clockwork.Timer // pending first run (MaxSpread), or nil
	firstT  time.Time
}

func (j *job) periodOf() time.Duration {
	if j.override > 0 {
		return j.override
	}
	return j.check.Load().Interval
}

// New returns a scheduler that calls run for each due probe. Call Start.
func New(run Run, opts Options) (*Scheduler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxSpread <= 0 {
		opts.MaxSpread = 30 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	pl, err := newPlace(opts.Region, opts.Regions, opts.Node, opts.Nodes)
	if err != nil {
		return nil, err
	}
	s, err := gocron.NewScheduler(gocron.WithStopTimeout(30*time.Second), gocron.WithClock(opts.Clock))
	if err != nil {
		return nil, fmt.Errorf("new scheduler: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{run: run, opts: opts, clock: opts.Clock, s: s, ctx: ctx, stop: cancel, place: pl,
		jobs: map[string]*job{}, slots: map[slotKey]*slot{}}, nil
}

func newPlace(region, regions, node, nodes int) (place, error) {
	regions, nodes = max(regions, 1), max(nodes, 1)
	if region < 0 || region >= regions {
		return place{}, fmt.Errorf("scheduler: region index %d outside [0, %d)", region, regions)
	}
	if node < 0 || node >= nodes {
		return place{}, fmt.Errorf("scheduler: node index %d outside [0, %d)", node, nodes)
	}
	return place{region, regions, node, nodes}, nil
}

// Tick is the grid phases are rounded down to (see the package doc).
const Tick = 100 * time.Millisecond

// Offset is a stable fraction, from the FNV-1a hash of name, of
// min(interval, maxSpread). Offset(name, p, p) is a check's base phase;
// Offset(name, p, MaxSpread) the delay of its extra first run.
func Offset(name string, interval, maxSpread time.Duration) time.Duration {
	window := min(interval, maxSpread)
	if window <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(window))
}

// Phase is where in every period a check runs on the node at place
// (region k of regions R, node j of the region's nodes N): the check runs
// at the times whose Unix nanoseconds are ≡ Phase (mod period). It is
// (Offset(name, period, period) + period·(k·N + j)/(R·N)) mod period, that is
// base + k·period/R + j·period/(R·N) up to a nanosecond of rounding, rounded
// down to a whole Tick. R and N below 1 count as 1; k and j are taken modulo
// R and N.
func Phase(name string, period time.Duration, region, regions, node, nodes int) time.Duration {
	if period <= 0 {
		return 0
	}
	regions, nodes = max(regions, 1), max(nodes, 1)
	region, node = ((region%regions)+regions)%regions, ((node%nodes)+nodes)%nodes
	slot, slots := uint64(region)*uint64(nodes)+uint64(node), uint64(regions)*uint64(nodes)
	hi, lo := bits.Mul64(uint64(period), slot)
	shift, _ := bits.Div64(hi, lo, slots) // < period since slot < slots
	base := uint64(Offset(name, period, period))
	ph := time.Duration((base + shift) % uint64(period))
	return ph - ph%Tick
}

// next is the first time strictly after now whose Unix nanoseconds are
// ≡ phase (mod period).
func next(now time.Time, period, phase time.Duration) time.Time {
	r := (now.UnixNano() - int64(phase)) % int64(period)
	if r < 0 {
		r += int64(period)
	}
	return now.Add(period - time.Duration(r))
}

func (s *Scheduler) phaseLocked(name string, period time.Duration) time.Duration {
	p := s.place
	return Phase(name, period, p.region, p.regions, p.node, p.nodes)
}

// Set makes the scheduled checks equal to checks: new ones are added,
// removed ones stopped, changed ones rescheduled, unchanged ones untouched.
// A changed check keeps the period SetInterval gave it. It can be called
// before or after Start. The scheduler keeps pointers into checks: the caller
// must not change them afterwards (a reload passes a new slice).
func (s *Scheduler) Set(checks []config.Check) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[string]bool, len(checks))
	var errs []error
	for i := range checks {
		c := &checks[i]
		want[c.Name] = true
		var override time.Duration
		if old, ok := s.jobs[c.Name]; ok {
			if reflect.DeepEqual(*old.check.Load(), *c) {
				old.check.Store(c)
				continue
			}
			override = old.override
			if override == c.Interval {
				override = 0
			}
			s.removeLocked(c.Name)
		}
		jctx, cancel := context.WithCancel(s.ctx)
		j := &job{ctx: jctx, cancel: cancel, override: override}
		j.check.Store(c)
		s.jobs[c.Name] = j
		if s.started && !s.closed {
			if err := s.scheduleLocked(j, true); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for name := range s.jobs {
		if !want[name] {
			s.removeLocked(name)
		}
	}
	return errors.Join(errs...)
}

// scheduleLocked puts j in the slot of its current period and phase,
// which runs next at the next phase point. With first (a check new to the
// running scheduler), it also arms the extra first run when the first phase
// point is further than MaxSpread away; without, it keeps a pending first
// run only if it still comes first.
func (s *Scheduler) scheduleLocked(j *job, first bool) error {
	name, period := j.check.Load().Name, j.periodOf()
	now := s.clock.Now()
	key := slotKey{period, s.phaseLocked(name, period)}
	at := next(now, key.period, key.phase)
	if j.first != nil && (first || !j.firstT.Before(at)) {
		j.first.Stop()
		j.first = nil
	}
	if first && at.Sub(now) > s.opts.MaxSpread {
		off := Offset(name, period, s.opts.MaxSpread)
		j.firstT = now.Add(off)
		j.first = s.clock.AfterFunc(off, func() { s.extraRun(j) })
	}
	if j.slot != nil && j.slot.key == key {
		return nil
	}
	s.leaveSlotLocked(j)
	sl := s.slots[key]
	if sl == nil {
		sl = &slot{key: key}
		gj, err := s.s.NewJob(
			gocron.DurationJob(key.period),
			gocron.NewTask(func() { s.runSlot(sl) }),
			gocron.WithName(key.String()),
			gocron.WithStartAt(gocron.WithStartDateTimePast(at)),
		)
		if err != nil {
			return fmt.Errorf("schedule check %q: %w", name, err)
		}
		sl.id = gj.ID()
		s.slots[key] = sl
	}
	j.slot, j.slotIdx = sl, len(sl.jobs)
	sl.jobs = append(sl.jobs, j)
	return nil
}

// leaveSlotLocked takes j out of its slot, and removes the slot's gocron
// job when j was its last check.
func (s *Scheduler) leaveSlotLocked(j *job) {
	sl := j.slot
	if sl == nil {
		return
	}
	last := len(sl.jobs) - 1
	sl.jobs[j.slotIdx] = sl.jobs[last]
	sl.jobs[j.slotIdx].slotIdx = j.slotIdx
	sl.jobs[last] = nil
	sl.jobs = sl.jobs[:last]
	j.slot, j.slotIdx = nil, 0
	if len(sl.jobs) > 0 {
		return
	}
	delete(s.slots, sl.key)
	if err := s.s.RemoveJob(sl.id); err != nil {
		s.opts.Logger.Warn("remove job", "slot", sl.key.String(), "err", err)
	}
}

// runSlot starts a probe of each of sl's checks, unless the scheduler is
// shut down; Shutdown waits for them.
func (s *Scheduler) runSlot(sl *slot) {
	s.mu.Lock()
	if s.closed || s.slots[sl.key] != sl {
		s.mu.Unlock()
		return
	}
	s.extra.Add(len(sl.jobs))
	for _, j := range sl.jobs {
		go func() {
			defer s.extra.Done()
			s.probe(j)
		}()
	}
	s.mu.Unlock()
}

func (s *Scheduler) removeLocked(name string) {
	j := s.jobs[name]
	j.cancel()
	if j.first != nil {
		j.first.Stop()
		j.first = nil
	}
	s.leaveSlotLocked(j)
	delete(s.jobs, name)
}

// extraRun runs j once outside gocron (RunNow, the first run), unless the
// scheduler is shut down; Shutdown waits for it.
func (s *Scheduler) extraRun(j *job) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.jobs[j.check.Load().Name] == j && j.first != nil && j.firstT.Compare(s.clock.Now()) <= 0 {
		j.first = nil // the first run is due: no longer pending
	}
	s.extra.Add(1)
	s.mu.Unlock()
	defer s.extra.Done()
	s.probe(j)
}

func (s *Scheduler) probe(j *job) {
	if j.ctx.Err() != nil || !j.running.CompareAndSwap(false, true) {
		return // shut down or removed, or the previous run is still going: skip this slot
	}
	defer j.running.Store(false)
	c := j.check.Load()
	ctx, cancel := context.WithTimeout(j.ctx, c.Timeout)
	defer cancel()
	s.run(ctx, c)
}

// SetInterval makes check run every d from now on (d ≤ 0, or the check's
// interval, returns it to its interval): the node calls it with the check's
// down_interval while the check is down and with its interval when it is up
// again. The next run is the check's next phase point for d (see the package
// doc), at most d after the call and never at once, so there is no burst;
// a running probe goes on. Setting the period a check already has changes
// nothing. The period survives Set changing the check, not removing it.
func (s *Scheduler) SetInterval(check string, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[check]
	if !ok {
		return fmt.Errorf("scheduler: unknown check %q", check)
	}
	if d <= 0 || d == j.check.Load().Interval {
		d = 0
	}
	if d == j.override {
		return nil
	}
	j.override = d
	if !s.started || s.closed || j.slot != nil && j.slot.key.period == j.periodOf() {
		return nil
	}
	return s.scheduleLocked(j, false)
}

// Interval returns the period check runs at now, and whether it is known.
func (s *Scheduler) Interval(check string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[check]
	if !ok {
		return 0, false
	}
	return j.periodOf(), true
}

// SetPlace moves this node to region index region of regions and node index
// node of the region's nodes (see Options) when membership changes, and
// moves every check to its phase for the new place: each check's next run is
// its next new phase point, at most one period away; running probes go on.
// The same place again changes nothing. Out-of-range indexes are an error
// and leave the place as it was.
func (s *Scheduler) SetPlace(region, regions, node, nodes int) error {
	pl, err := newPlace(region, regions, node, nodes)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pl == s.place {
		return nil
	}
	s.place = pl
	if !s.started || s.closed {
		return nil
	}
	var errs []error
	for _, j := range s.jobs {
		if err := s.scheduleLocked(j, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Place returns this node's place: region index, regions, node index, nodes.
func (s *Scheduler) Place() (region, regions, node, nodes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.place.region, s.place.regions, s.place.node, s.place.nodes
}

// RunNow runs a check once at once, outside its schedule (for example to
// confirm a failure); it is skipped if a probe of the check is still running.
// It returns false if the check is unknown or the scheduler is not running.
// The run does not move the check's schedule.
func (s *Scheduler) RunNow(name string) bool {
	s.mu.Lock()
	j, ok := s.jobs[name]
	ok = ok && s.started && !s.closed
	s.mu.Unlock()
	if ok {
		go s.extraRun(j)
	}
	return ok
}

// Len returns the number of scheduled checks.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jobs)
}

// Start schedules every check at its phase and starts running jobs.
func (s *Scheduler) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	for name, j := range s.jobs {
		if err := s.scheduleLocked(j, true); err != nil {
			s.opts.Logger.Error("schedule check", "check", name, "err", err)
		}
	}
	s.s.Start()
}

// Shutdown cancels every running probe's context and waits for them to
// return.
func (s *Scheduler) Shutdown() error {
	s.stop()
	s.mu.Lock()
	s.closed = true
	for _, j := range s.jobs {
		if j.first != nil {
			j.first.Stop()
			j.first = nil
		}
	}
	s.mu.Unlock()
	err := s.s.Shutdown()
	s.extra.Wait()
	if err != nil {
		return fmt.Errorf("scheduler shutdown: %w", err)
	}
	return nil
}
