// Package scheduler runs every check at its interval on gocron v2.
//
// Each check is one gocron job:
//   - its first run happens at start plus a phase offset derived from a hash
//     of the check's name, spread over min(interval, MaxSpread), so a
//     thousand checks at 30 s do not fire in one burst and a restart keeps
//     each check's phase;
//   - it never overlaps itself: a run still going when the next is due skips
//     that slot. These are the semantics of gocron's singleton
//     LimitModeReschedule, implemented with a per-check flag because gocron's
//     singleton mode keeps a goroutine and a 1,000-slot queue per job (16 MB
//     of heap for 1,000 checks);
//   - it runs with a context that carries the check's timeout and is
//     cancelled on Shutdown or when the check is removed.
//
// There is no limit on concurrent jobs: a probe of a hung target holds only
// its own goroutine until its timeout, never a slot others need.
package scheduler

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"

	"github.com/vantage-dev/vantage/config"
)

// Run is called for every due probe of a check. ctx carries the check's
// timeout and is cancelled on shutdown.
type Run func(ctx context.Context, c *config.Check)

// Options tune the scheduler.
type Options struct {
	Logger *slog.Logger
	// MaxSpread bounds the window over which first runs are spread
	// (default 30s): a check never waits longer than this for its first run.
	MaxSpread time.Duration
}

// Scheduler owns one gocron scheduler and one job per check.
type Scheduler struct {
	run  Run
	opts Options
	s    gocron.Scheduler
	ctx  context.Context
	stop context.CancelFunc

	mu   sync.Mutex
	jobs map[string]*job
}

type job struct {
	id      uuid.UUID
	job     gocron.Job
	check   *config.Check
	cancel  context.CancelFunc
	running atomic.Bool
}

// New returns a scheduler that calls run for each due probe. Call Start.
func New(run Run, opts Options) (*Scheduler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxSpread <= 0 {
		opts.MaxSpread = 30 * time.Second
	}
	s, err := gocron.NewScheduler(gocron.WithStopTimeout(30 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("new scheduler: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{run: run, opts: opts, s: s, ctx: ctx, stop: cancel, jobs: map[string]*job{}}, nil
}

// Offset is the delay of a check's first run after start: a stable fraction,
// from the hash of its name, of min(interval, maxSpread).
func Offset(name string, interval, maxSpread time.Duration) time.Duration {
	window := min(interval, maxSpread)
	if window <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(window))
}

// Set makes the scheduled checks equal to checks: new ones are added,
// removed ones stopped, changed ones rescheduled, unchanged ones untouched
// (they keep their phase). It can be called before or after Start.
func (s *Scheduler) Set(checks []config.Check) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[string]bool, len(checks))
	for i := range checks {
		c := checks[i]
		want[c.Name] = true
		if old, ok := s.jobs[c.Name]; ok {
			if reflect.DeepEqual(*old.check, c) {
				continue
			}
			s.removeLocked(c.Name)
		}
		if err := s.addLocked(&c); err != nil {
			return err
		}
	}
	for name := range s.jobs {
		if !want[name] {
			s.removeLocked(name)
		}
	}
	return nil
}

func (s *Scheduler) addLocked(c *config.Check) error {
	jctx, cancel := context.WithCancel(s.ctx)
	jb := &job{check: c, cancel: cancel}
	start := gocron.WithStartImmediately()
	if off := Offset(c.Name, c.Interval, s.opts.MaxSpread); off > 10*time.Millisecond {
		start = gocron.WithStartDateTime(time.Now().Add(off))
	}
	j, err := s.s.NewJob(
		gocron.DurationJob(c.Interval),
		gocron.NewTask(func(ctx context.Context) { s.probe(ctx, jb) }),
		gocron.WithName(c.Name),
		gocron.WithContext(jctx),
		gocron.WithStartAt(start),
	)
	if err != nil {
		cancel()
		return fmt.Errorf("schedule check %q: %w", c.Name, err)
	}
	jb.id, jb.job = j.ID(), j
	s.jobs[c.Name] = jb
	return nil
}

func (s *Scheduler) removeLocked(name string) {
	j := s.jobs[name]
	j.cancel()
	if err := s.s.RemoveJob(j.id); err != nil {
		s.opts.Logger.Warn("remove job", "check", name, "err", err)
	}
	delete(s.jobs, name)
}

func (s *Scheduler) probe(ctx context.Context, j *job) {
	if ctx.Err() != nil || !j.running.CompareAndSwap(false, true) {
		return // shut down, or the previous run is still going: skip this slot
	}
	defer j.running.Store(false)
	c := j.check
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	s.run(ctx, c)
}

// RunNow runs a check once at once, outside its schedule (for example to
// confirm a failure). It returns false if the check is unknown. The run does
// not move the check's schedule.
func (s *Scheduler) RunNow(name string) bool {
	s.mu.Lock()
	j, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return false
	}
	if err := j.job.RunNow(); err != nil {
		s.opts.Logger.Warn("run now", "check", name, "err", err)
		return false
	}
	return true
}

// Len returns the number of scheduled checks.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jobs)
}

// Start starts running jobs.
func (s *Scheduler) Start() { s.s.Start() }

// Shutdown cancels every running probe's context and waits for them to
// return.
func (s *Scheduler) Shutdown() error {
	s.stop()
	if err := s.s.Shutdown(); err != nil {
		return fmt.Errorf("scheduler shutdown: %w", err)
	}
	return nil
}
