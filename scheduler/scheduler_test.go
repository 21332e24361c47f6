package scheduler

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/vantage-dev/vantage/config"
)

func check(name string, interval, timeout time.Duration) config.Check {
	return config.Check{Name: name, Type: config.TypeTCP, Target: "127.0.0.1:1", Interval: interval, Timeout: timeout}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOffsetSpread(t *testing.T) {
	// 1,000 checks at 30s: first runs spread over the window, no burst.
	const n, interval = 1000, 30 * time.Second
	buckets := make([]int, 30)
	for i := range n {
		off := Offset("check-"+string(rune('a'+i%26))+"-"+itoa(i), interval, time.Minute)
		if off < 0 || off >= interval {
			t.Fatalf("offset %v outside [0, %v)", off, interval)
		}
		buckets[off/time.Second]++
	}
	for sec, c := range buckets {
		if c > 3*n/30 {
			t.Fatalf("second %d holds %d of %d first runs: a burst", sec, c, n)
		}
	}
	if Offset("api", interval, time.Minute) != Offset("api", interval, time.Minute) {
		t.Fatal("offset not stable")
	}
	if off := Offset("api", time.Hour, 5*time.Second); off >= 5*time.Second {
		t.Fatalf("offset %v beyond max spread", off)
	}
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}

func TestRunsRepeatedlyWithTimeout(t *testing.T) {
	var runs atomic.Int32
	var sawDeadline atomic.Bool
	s, err := New(func(ctx context.Context, c *config.Check) {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= c.Timeout {
			sawDeadline.Store(true)
		}
		runs.Add(1)
	}, Options{MaxSpread: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]config.Check{check("a", 100*time.Millisecond, 50*time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	waitFor(t, "three runs", func() bool { return runs.Load() >= 3 })
	if !sawDeadline.Load() {
		t.Fatal("probe context carries no deadline within the check's timeout")
	}
}

func TestNeverOverlapsAndShutdownCancels(t *testing.T) {
	var running, maxRunning, started atomic.Int32
	var mu sync.Mutex
	cancelled := 0
	s, err := New(func(ctx context.Context, c *config.Check) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		started.Add(1)
		<-ctx.Done() // a hung probe: only its context ends it
		mu.Lock()
		cancelled++
		mu.Unlock()
	}, Options{MaxSpread: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Interval 50ms, timeout 10s: the probe outlives many intervals.
	if err := s.Set([]config.Check{check("hung", 50*time.Millisecond, 10*time.Second)}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	waitFor(t, "the probe to start", func() bool { return started.Load() >= 1 })
	// Several intervals pass while the probe hangs; RunNow as well.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		s.RunNow("hung")
		time.Sleep(20 * time.Millisecond)
	}
	if m := maxRunning.Load(); m != 1 {
		t.Fatalf("%d runs of one check overlapped", m)
	}
	done := make(chan error)
	go func() { done <- s.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not cancel the hung probe")
	}
	mu.Lock()
	defer mu.Unlock()
	if cancelled != 1 {
		t.Fatalf("%d probes saw cancellation, want 1", cancelled)
	}
}

func TestHungCheckDoesNotDelayOthers(t *testing.T) {
	var fast atomic.Int32
	s, err := New(func(ctx context.Context, c *config.Check) {
		if c.Name == "fast" {
			fast.Add(1)
			return
		}
		<-ctx.Done()
	}, Options{MaxSpread: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checks := []config.Check{check("fast", 50*time.Millisecond, 40*time.Millisecond)}
	for i := range 1000 {
		checks = append(checks, check("hung-"+itoa(i), time.Second, 900*time.Millisecond))
	}
	if err := s.Set(checks); err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	waitFor(t, "the fast check to run 5 times beside 1,000 hung ones", func() bool { return fast.Load() >= 5 })
}

func TestSetAddsRemovesAndKeepsUnchanged(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	s, err := New(func(ctx context.Context, c *config.Check) {
		mu.Lock()
		seen[c.Name]++
		mu.Unlock()
	}, Options{MaxSpread: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	a, b := check("a", 50*time.Millisecond, 40*time.Millisecond), check("b", 50*time.Millisecond, 40*time.Millisecond)
	if err := s.Set([]config.Check{a, b}); err != nil {
		t.Fatal(err)
	}
	count := func(n string) int { mu.Lock(); defer mu.Unlock(); return seen[n] }
	waitFor(t, "a and b to run", func() bool { return count("a") > 0 && count("b") > 0 })
	id := s.jobs["a"].slot
	if err := s.Set([]config.Check{a}); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 || s.jobs["a"].slot != id {
		t.Fatal("unchanged check a was rescheduled or b not removed")
	}
	before := count("b")
	na := count("a")
	waitFor(t, "a to keep running", func() bool { return count("a") >= na+3 })
	if after := count("b"); after > before+1 {
		t.Fatalf("removed check b still runs (%d → %d)", before, after)
	}
	if s.RunNow("b") {
		t.Fatal("RunNow on a removed check succeeded")
	}
}

// t0 is a whole minute: phases read as seconds past it.
var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func residue(t time.Time, p time.Duration) time.Duration {
	r := time.Duration(t.UnixNano() % int64(p))
	if r < 0 {
		r += p
	}
	return r
}

func TestPhaseFormula(t *testing.T) {
	const p = 60 * time.Second
	for _, name := range []string{"api", "web", "db", "a-much-longer-check-name"} {
		base := Phase(name, p, 0, 1, 0, 1)
		if off := Offset(name, p, p); base != off-off%Tick || Phase(name, p, 0, 0, 0, 0) != base {
			t.Fatalf("%s: base phase %v, want Offset over the interval %v rounded down to a tick (zero place = region 0 of 1)", name, base, off)
		}
		for k := range 3 {
			if got, want := residue(t0.Add(Phase(name, p, k, 3, 0, 1)-base), p), time.Duration(k)*20*time.Second; got != want {
				t.Fatalf("%s: region %d of 3 at %v after region 0, want %v", name, k, got, want)
			}
			for j := range 2 {
				got := residue(t0.Add(Phase(name, p, k, 3, j, 2)-base), p)
				if want := time.Duration(k)*20*time.Second + time.Duration(j)*10*time.Second; got != want {
					t.Fatalf("%s: node %d of 2 in region %d of 3 at %v after region 0, want %v", name, j, k, got, want)
				}
			}
		}
		for k := range 7 {
			if ph := Phase(name, 45*time.Second, k, 7, 2, 3); ph < 0 || ph >= 45*time.Second {
				t.Fatalf("phase %v outside [0, 45s)", ph)
			}
		}
	}
	if Phase("api", 24*time.Hour, 2, 3, 1, 2) != Phase("api", 24*time.Hour, 2, 3, 1, 2) {
		t.Fatal("phase not stable")
	}
	if _, err := New(nil, Options{Region: 3, Regions: 3}); err == nil {
		t.Fatal("region index 3 of 3 accepted")
	}
	if _, err := New(nil, Options{Node: 1}); err == nil {
		t.Fatal("node index 1 of 1 accepted")
	}
}

func TestPhasesOnTicks(t *testing.T) {
	// 1,000 checks at 10 s: every phase a whole tick, so the node starts
	// probes at most 100 times per period (10 times a second), not 1,000.
	const n, p = 1000, 10 * time.Second
	for _, pl := range []struct{ k, R, j, N int }{{0, 1, 0, 1}, {1, 3, 0, 1}, {2, 3, 1, 2}, {4, 7, 2, 3}} {
		ticks := map[time.Duration]int{}
		for i := range n {
			ph := Phase("check-"+itoa(i), p, pl.k, pl.R, pl.j, pl.N)
			if ph < 0 || ph >= p || ph%Tick != 0 {
				t.Fatalf("place %+v: phase %v outside [0, %v) or not a whole tick", pl, ph, p)
			}
			ticks[ph]++
		}
		if len(ticks) > int(p/Tick) {
			t.Fatalf("place %+v: %d distinct phases, more than the %d ticks of a period", pl, len(ticks), p/Tick)
		}
		// Still spread: no tick holds more than five times its share.
		for ph, c := range ticks {
			if c > 5*n/int(p/Tick) {
				t.Fatalf("place %+v: %d of %d checks start at %v: a burst", pl, c, n, ph)
			}
		}
	}
	// Rounding keeps the regions' spread to within a tick, also where
	// p/R is not a whole tick.
	for _, name := range []string{"api", "web", "db"} {
		const p7 = 45 * time.Second
		for k := range 7 {
			shift := residue(t0.Add(Phase(name, p7, k, 7, 0, 1)-Phase(name, p7, 0, 7, 0, 1)), p7)
			if want := time.Duration(k) * p7 / 7; shift <= want-Tick || shift >= want+Tick {
				t.Fatalf("%s: region %d of 7 at %v after region 0, want %v ± a tick", name, k, shift, want)
			}
		}
	}
}

func TestRunsStartOnTicks(t *testing.T) {
	// The clock starts off the grid; every run still starts on a tick, and
	// checks whose phases share a tick run together.
	start := t0.Add(11*time.Second + 37*time.Millisecond)
	clk := clockwork.NewFakeClockAt(start)
	rec := &recorder{}
	var checks []config.Check
	for i := range 40 {
		checks = append(checks, check("c"+itoa(i), 2*time.Second, time.Second))
	}
	s := fakeNode(t, clk, rec, "n", Options{}, checks...)
	var want []run
	phases := map[time.Duration]bool{}
	for _, c := range checks {
		ph := Phase(c.Name, c.Interval, 0, 1, 0, 1)
		phases[ph] = true
		want = append(want, series("n", c.Name, next(start, c.Interval, ph), c.Interval, start.Add(4*time.Second))...)
	}
	sortRuns(want)
	at := map[time.Time]bool{}
	for _, r := range want {
		if r.at.UnixNano()%int64(Tick) != 0 {
			t.Fatalf("%s due at %v, off the %v grid", r.check, r.at.Format("15:04:05.000000000"), Tick)
		}
		at[r.at] = true
	}
	if len(at) > 2*20+1 {
		t.Fatalf("80 runs at %d instants in 4 s: more than one per tick", len(at))
	}
	// The checks of one phase share a slot: one gocron job, one timer.
	if len(phases) >= len(checks) {
		t.Fatalf("40 checks at 2 s have %d phases: none shared, the test shows nothing", len(phases))
	}
	s.mu.Lock()
	slots := len(s.slots)
	s.mu.Unlock()
	if slots != len(phases) {
		t.Fatalf("%d slots for %d phases", slots, len(phases))
	}
	drive(t, clk, rec, len(phases), want...)
}

func TestSlotsFollowTheirChecks(t *testing.T) {
	// Checks leave their slot when removed, changed or moved by
	// SetInterval or SetPlace; an emptied slot's gocron job is removed.
	clk := clockwork.NewFakeClockAt(t0)
	rec := &recorder{}
	var checks []config.Check
	for i := range 30 {
		checks = append(checks, check("c"+itoa(i), time.Second, 500*time.Millisecond))
	}
	s := fakeNode(t, clk, rec, "n", Options{}, checks...)
	consistent := func(what string) {
		t.Helper()
		s.mu.Lock()
		defer s.mu.Unlock()
		in := 0
		for key, sl := range s.slots {
			if sl.key != key || len(sl.jobs) == 0 {
				t.Fatalf("%s: slot %v holds %d checks", what, key, len(sl.jobs))
			}
			for i, j := range sl.jobs {
				if j.slot != sl || j.slotIdx != i || s.jobs[j.check.Load().Name] != j {
					t.Fatalf("%s: %s misplaced in slot %v", what, j.check.Load().Name, key)
				}
				want := slotKey{j.periodOf(), s.phaseLocked(j.check.Load().Name, j.periodOf())}
				if key != want {
					t.Fatalf("%s: %s in slot %v, its slot is %v", what, j.check.Load().Name, key, want)
				}
			}
			in += len(sl.jobs)
		}
		if in != len(s.jobs) {
			t.Fatalf("%s: %d checks in slots, %d scheduled", what, in, len(s.jobs))
		}
		if jobs := len(s.s.Jobs()); jobs != len(s.slots) {
			t.Fatalf("%s: %d gocron jobs for %d slots", what, jobs, len(s.slots))
		}
	}
	consistent("start")
	if n := len(s.slots); n >= 30 || n > 10 {
		t.Fatalf("30 checks at 1 s in %d slots, want at most 10 (one per tick)", n)
	}
	for i := range 10 {
		if err := s.SetInterval("c"+itoa(i), 3*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	consistent("after SetInterval")
	if err := s.SetPlace(1, 2, 0, 1); err != nil {
		t.Fatal(err)
	}
	consistent("after SetPlace")
	changed := checks[20]
	changed.Target = "127.0.0.1:2"
	if err := s.Set(append(checks[10:20:20], changed)); err != nil {
		t.Fatal(err)
	}
	consistent("after Set")
	if err := s.Set(nil); err != nil {
		t.Fatal(err)
	}
	consistent("after removing all")
	if len(s.slots) != 0 {
		t.Fatalf("%d slots left without checks", len(s.slots))
	}
}

func TestNextPhasePoint(t *testing.T) {
	const p = time.Minute
	now := t0.Add(7 * time.Second)
	if got := next(now, p, 30*time.Second); !got.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("next = %v", got)
	}
	if got := next(now, p, 7*time.Second); !got.Equal(t0.Add(67 * time.Second)) {
		t.Fatalf("next at the phase point itself = %v, want one period later", got)
	}
	if got := next(now, p, 2*time.Second); !got.Equal(t0.Add(62 * time.Second)) {
		t.Fatalf("next past the phase = %v", got)
	}
}

// run is one probe seen on a fake clock.
type run struct {
	node, check string
	at          time.Time
}

type recorder struct {
	mu   sync.Mutex
	runs []run
}

func (r *recorder) fn(node string, clk clockwork.Clock) Run {
	return func(ctx context.Context, c *config.Check) {
		r.mu.Lock()
		r.runs = append(r.runs, run{node, c.Name, clk.Now()})
		r.mu.Unlock()
	}
}

func (r *recorder) all() []run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]run(nil), r.runs...)
}

func (r *recorder) len() int { return len(r.all()) }

// fakeNode is a started scheduler on clk; MaxSpread defaults to an hour
// (no extra first runs).
func fakeNode(t *testing.T, clk *clockwork.FakeClock, rec *recorder, node string, opts Options, checks ...config.Check) *Scheduler {
	t.Helper()
	opts.Clock = clk
	if opts.MaxSpread == 0 {
		opts.MaxSpread = time.Hour
	}
	s, err := New(rec.fn(node, clk), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(checks); err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown() })
	return s
}

// armed waits until clk holds at least n timers: every job is waiting for
// its next run.
func armed(t *testing.T, clk *clockwork.FakeClock, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, n); err != nil {
		t.Fatalf("%d timers never armed: %v", n, err)
	}
}

// drive moves clk to each of want's times in turn (want is sorted by time)
// and checks that exactly the wanted runs happen there: the clock stands
// still until they are recorded and their jobs re-armed (waiters timers in
// all), so each run is recorded at the time it was due.
func drive(t *testing.T, clk *clockwork.FakeClock, rec *recorder, waiters int, want ...run) {
	t.Helper()
	armed(t, clk, waiters)
	for len(want) > 0 {
		at := want[0].at
		i := 1
		for i < len(want) && want[i].at.Equal(at) {
			i++
		}
		due := want[:i]
		want = want[i:]
		d := at.Sub(clk.Now())
		if d < 0 {
			t.Fatalf("wanted runs at %v are in the past (now %v)", at, clk.Now())
		}
		n := rec.len()
		clk.Advance(d)
		waitFor(t, "the runs at "+at.Format(time.TimeOnly), func() bool { return rec.len() >= n+len(due) })
		got := rec.all()[n : n+len(due)]
		key := func(a, b run) int { return cmp.Compare(a.node+"/"+a.check, b.node+"/"+b.check) }
		slices.SortFunc(got, key)
		slices.SortFunc(due, key)
		for k := range due {
			if g, w := got[k], due[k]; g.node != w.node || g.check != w.check || !g.at.Equal(w.at) {
				t.Fatalf("runs %+v, want %+v", got, due)
			}
		}
		armed(t, clk, waiters)
	}
}

// series is node's runs of check every p from first up to until.
func series(node, check string, first time.Time, p time.Duration, until time.Time) []run {
	var rs []run
	for at := first; !at.After(until); at = at.Add(p) {
		rs = append(rs, run{node, check, at})
	}
	return rs
}

func sortRuns(rs []run) {
	slices.SortFunc(rs, func(a, b run) int { return a.at.Compare(b.at) })
}

func TestStaggeredPhasesOnFakeClock(t *testing.T) {
	// Three regions at 60 s; region 0 has two nodes. All four nodes start at
	// an arbitrary moment and probe "api" 10 s (within region 0) and 20 s
	// (between regions) apart, every minute.
	const p = time.Minute
	start := t0.Add(7*time.Second + 123*time.Millisecond)
	clk := clockwork.NewFakeClockAt(start)
	rec := &recorder{}
	places := []struct {
		node       string
		k, R, j, N int
	}{{"r0n0", 0, 3, 0, 2}, {"r0n1", 0, 3, 1, 2}, {"r1", 1, 3, 0, 1}, {"r2", 2, 3, 0, 1}}
	var want []run
	for _, pl := range places {
		fakeNode(t, clk, rec, pl.node, Options{Region: pl.k, Regions: pl.R, Node: pl.j, Nodes: pl.N},
			check("api", p, 5*time.Second))
		first := next(start, p, Phase("api", p, pl.k, pl.R, pl.j, pl.N))
		if first.Sub(start) > p {
			t.Fatalf("%s waits %v for its first run", pl.node, first.Sub(start))
		}
		want = append(want, run{pl.node, "api", first}, run{pl.node, "api", first.Add(p)}, run{pl.node, "api", first.Add(2 * p)})
	}
	sortRuns(want)
	drive(t, clk, rec, len(places), want...)

	at := map[string]time.Duration{}
	for _, r := range rec.all() {
		at[r.node] = residue(r.at, p)
	}
	for node, off := range map[string]time.Duration{"r0n1": 10 * time.Second, "r1": 20 * time.Second, "r2": 40 * time.Second} {
		if got := (at[node] - at["r0n0"] + p) % p; got != off {
			t.Fatalf("%s probes %v after r0n0, want %v", node, got, off)
		}
	}
	// Some region probes every interval/R: the largest gap between
	// consecutive runs of different regions is 20 s.
	runs := rec.all()
	for i := 1; i < len(runs); i++ {
		if gap := runs[i].at.Sub(runs[i-1].at); gap > 20*time.Second {
			t.Fatalf("no probe for %v between %v and %v", gap, runs[i-1].at, runs[i].at)
		}
	}
}

func TestRestartKeepsPhases(t *testing.T) {
	const p = time.Minute
	opts := Options{Region: 1, Regions: 3, Node: 1, Nodes: 2}
	start := t0.Add(41 * time.Second)
	clk := clockwork.NewFakeClockAt(start)
	rec := &recorder{}
	a := fakeNode(t, clk, rec, "a", opts, check("api", p, 5*time.Second), check("web", 30*time.Second, 5*time.Second))
	var want []run
	for _, c := range a.jobs {
		first := next(start, c.check.Load().Interval, Phase(c.check.Load().Name, c.check.Load().Interval, 1, 3, 1, 2))
		want = append(want, series("a", c.check.Load().Name, first, c.check.Load().Interval, start.Add(2*p))...)
	}
	sortRuns(want)
	drive(t, clk, rec, 2, want...)
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	before := map[string]time.Duration{}
	for _, r := range rec.all() {
		before[r.check] = residue(r.at, p)
	}

	// The node comes back 95.5 s later (a new process: a new clock).
	restart := clk.Now().Add(95*time.Second + 500*time.Millisecond)
	clk2 := clockwork.NewFakeClockAt(restart)
	rec2 := &recorder{}
	b := fakeNode(t, clk2, rec2, "b", opts, check("api", p, 5*time.Second), check("web", 30*time.Second, 5*time.Second))
	want = nil
	for _, c := range b.jobs {
		iv := c.check.Load().Interval
		first := restart.Add((before[c.check.Load().Name]%iv - residue(restart, iv) + iv) % iv)
		if !first.After(restart) {
			first = first.Add(iv)
		}
		want = append(want, series("b", c.check.Load().Name, first, iv, restart.Add(2*p))...)
	}
	sortRuns(want)
	drive(t, clk2, rec2, 2, want...)
}

func TestSetIntervalSwitchesAndBack(t *testing.T) {
	const up, down = time.Minute, 10 * time.Second
	start := t0.Add(3 * time.Second)
	clk := clockwork.NewFakeClockAt(start)
	rec := &recorder{}
	s := fakeNode(t, clk, rec, "n", Options{Region: 1, Regions: 3}, check("api", up, 5*time.Second))
	ph := Phase("api", up, 1, 3, 0, 1)
	a := next(start, up, ph)
	drive(t, clk, rec, 1, run{"n", "api", a})

	// Down 3 s after that run: probe every 10 s, the first within 10 s.
	clk.Advance(3 * time.Second)
	if err := s.SetInterval("api", down); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Interval("api"); d != down {
		t.Fatalf("interval %v after SetInterval(%v)", d, down)
	}
	id := s.jobs["api"].slot
	first := next(clk.Now(), down, Phase("api", down, 1, 3, 0, 1))
	if w := first.Sub(clk.Now()); w <= 0 || w > down {
		t.Fatalf("first run at the down interval %v after the switch", w)
	}
	drive(t, clk, rec, 1, run{"n", "api", first}, run{"n", "api", first.Add(down)})
	// Idempotent: the same period again moves nothing.
	if err := s.SetInterval("api", down); err != nil {
		t.Fatal(err)
	}
	if s.jobs["api"].slot != id {
		t.Fatal("SetInterval with the period in force rescheduled the check")
	}
	drive(t, clk, rec, 1, run{"n", "api", first.Add(2 * down)})

	// Up again 4 s later: back on the 60 s phase, the next run within 60 s.
	clk.Advance(4 * time.Second)
	if err := s.SetInterval("api", up); err != nil {
		t.Fatal(err)
	}
	back := next(clk.Now(), up, ph)
	if residue(back, up) != residue(a, up) || back.Sub(clk.Now()) > up {
		t.Fatalf("back at %v, not on the 60 s phase of %v", back, a)
	}
	drive(t, clk, rec, 1, run{"n", "api", back}, run{"n", "api", back.Add(up)})
	if err := s.SetInterval("api", 0); err != nil || s.jobs["api"].override != 0 {
		t.Fatalf("SetInterval(0): %v, override %v", err, s.jobs["api"].override)
	}
	if err := s.SetInterval("nope", down); err == nil {
		t.Fatal("SetInterval on an unknown check succeeded")
	}
}

func TestSetIntervalSurvivesChangeBySet(t *testing.T) {
	clk := clockwork.NewFakeClockAt(t0)
	s := fakeNode(t, clk, &recorder{}, "n", Options{}, check("api", time.Minute, 5*time.Second))
	if err := s.SetInterval("api", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c := check("api", time.Minute, 5*time.Second)
	c.Target = "127.0.0.1:2"
	if err := s.Set([]config.Check{c}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Interval("api"); d != 10*time.Second {
		t.Fatalf("a changed check runs every %v, want the down interval kept", d)
	}
}

func TestSetPlaceReschedules(t *testing.T) {
	start := t0.Add(11 * time.Second)
	clk := clockwork.NewFakeClockAt(start)
	rec := &recorder{}
	checks := []config.Check{check("api", time.Minute, 5*time.Second), check("web", 30*time.Second, 5*time.Second)}
	s := fakeNode(t, clk, rec, "n", Options{}, checks...)
	var want []run
	for _, c := range checks {
		want = append(want, series("n", c.Name, next(start, c.Interval, Phase(c.Name, c.Interval, 0, 1, 0, 1)), c.Interval, start.Add(time.Minute))...)
	}
	sortRuns(want)
	drive(t, clk, rec, 2, want...)

	// A second and third region join; this node's region is third of three.
	// (Right after a run: no timer is due before the next driven one.)
	now := clk.Now()
	ids := map[string]*slot{"api": s.jobs["api"].slot, "web": s.jobs["web"].slot}
	if err := s.SetPlace(2, 3, 0, 1); err != nil {
		t.Fatal(err)
	}
	want = nil
	for _, c := range checks {
		if s.jobs[c.Name].slot == ids[c.Name] {
			t.Fatalf("%s not rescheduled", c.Name)
		}
		first := next(now, c.Interval, Phase(c.Name, c.Interval, 2, 3, 0, 1))
		if first.Sub(now) > c.Interval {
			t.Fatalf("%s waits %v after SetPlace", c.Name, first.Sub(now))
		}
		want = append(want, series("n", c.Name, first, c.Interval, now.Add(2*time.Minute))...)
	}
	sortRuns(want)
	drive(t, clk, rec, 2, want...)

	// The same place again changes nothing; a bad one is refused.
	ids = map[string]*slot{"api": s.jobs["api"].slot, "web": s.jobs["web"].slot}
	if err := s.SetPlace(2, 3, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPlace(3, 3, 0, 1); err == nil {
		t.Fatal("region index 3 of 3 accepted")
	}
	for _, c := range checks {
		if s.jobs[c.Name].slot != ids[c.Name] {
			t.Fatalf("%s rescheduled by SetPlace to the same place", c.Name)
		}
	}
	if k, r, j, n := s.Place(); k != 2 || r != 3 || j != 0 || n != 1 {
		t.Fatalf("place %d/%d %d/%d", k, r, j, n)
	}
}

func TestRunNowOnFakeClock(t *testing.T) {
	const p = time.Minute
	start := t0.Add(5 * time.Second)
	clk := clockwork.NewFakeClockAt(start)
	rec := &recorder{}
	s := fakeNode(t, clk, rec, "n", Options{Region: 2, Regions: 3}, check("api", p, 5*time.Second))
	first := next(start, p, Phase("api", p, 2, 3, 0, 1))
	armed(t, clk, 1)
	if !s.RunNow("api") {
		t.Fatal("RunNow failed")
	}
	waitFor(t, "the RunNow run", func() bool { return rec.len() == 1 })
	if got := rec.all()[0]; !got.at.Equal(start) {
		t.Fatalf("RunNow ran at %v, want at once (%v)", got.at, start)
	}
	// The schedule did not move.
	drive(t, clk, rec, 1, run{"n", "api", first}, run{"n", "api", first.Add(p)})
	if s.RunNow("nope") {
		t.Fatal("RunNow on an unknown check succeeded")
	}
}

func TestFirstRunWithinMaxSpread(t *testing.T) {
	// At 60 s with MaxSpread 5 s: a check whose phase point is more than 5 s
	// away also runs once within 5 s; one whose point is near runs there only.
	const p, spread = time.Minute, 5 * time.Second
	start := t0.Add(17 * time.Second)
	var far, near string
	for i := 0; far == "" || near == ""; i++ {
		name := "c" + itoa(i)
		if next(start, p, Phase(name, p, 0, 1, 0, 1)).Sub(start) > spread {
			far = cmp.Or(far, name)
		} else {
			near = cmp.Or(near, name)
		}
	}
	clk := clockwork.NewFakeClockAt(start)
	rec := &recorder{}
	fakeNode(t, clk, rec, "n", Options{MaxSpread: spread}, check(far, p, 5*time.Second), check(near, p, 5*time.Second))
	early := start.Add(Offset(far, p, spread))
	farAt := next(start, p, Phase(far, p, 0, 1, 0, 1))
	nearAt := next(start, p, Phase(near, p, 0, 1, 0, 1))
	want := []run{{"n", near, nearAt}, {"n", far, early}}
	sortRuns(want)
	armed(t, clk, 3) // two jobs and far's first run
	drive(t, clk, rec, 2, want...)
	for _, r := range rec.all() {
		if r.at.Sub(start) > spread {
			t.Fatalf("first run of %s %v after start", r.check, r.at.Sub(start))
		}
	}
	drive(t, clk, rec, 2, run{"n", far, farAt})
}

func TestSetIntervalFromTheProbe(t *testing.T) {
	// The node switches a check's period from the probe's own result: the
	// scheduler must take that from inside a run.
	const up, down = time.Minute, 10 * time.Second
	start := t0.Add(29 * time.Second)
	clk := clockwork.NewFakeClockAt(start)
	rec := &recorder{}
	var s *Scheduler
	record := rec.fn("n", clk)
	s, err := New(func(ctx context.Context, c *config.Check) {
		record(ctx, c)
		if err := s.SetInterval(c.Name, down); err != nil {
			t.Error(err)
		}
	}, Options{Clock: clk, Region: 1, Regions: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]config.Check{check("api", up, 5*time.Second)}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	a := next(start, up, Phase("api", up, 1, 2, 0, 1))
	drive(t, clk, rec, 1, run{"n", "api", a})
	waitFor(t, "the switch", func() bool { d, _ := s.Interval("api"); return d == down })
	armed(t, clk, 1)
	b := next(a, down, Phase("api", down, 1, 2, 0, 1))
	drive(t, clk, rec, 1, run{"n", "api", b}, run{"n", "api", b.Add(down)})
}
