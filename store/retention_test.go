package store

import (
	"testing"
	"time"
)

const day = 24 * time.Hour

func counts(t testing.TB, s *Store) (raw, minute, daily int) {
	t.Helper()
	for _, q := range []struct {
		sql string
		n   *int
	}{
		{`SELECT count(*) FROM results`, &raw},
		{`SELECT count(*) FROM series WHERE step = 0`, &minute},
		{`SELECT count(*) FROM series WHERE step = 2`, &daily},
	} {
		if err := s.rdb.QueryRow(q.sql).Scan(q.n); err != nil {
			t.Fatal(err)
		}
	}
	return
}

// ageResults adds n results per age, each in its own minute, for two regions.
func ageResults(s *Store, now time.Time, n int, ages ...time.Duration) {
	var rs []Result
	for _, age := range ages {
		for i := 0; i < n; i++ {
			for _, reg := range []string{"eu", "us"} {
				rs = append(rs, Result{Check: "api", Region: reg, Node: reg + "-1",
					Time: now.Add(-age).Add(time.Duration(i) * time.Minute), OK: true, Latency: time.Millisecond})
			}
		}
	}
	s.AddBatch(rs)
}

func TestRetentionWithInjectedClock(t *testing.T) {
	clk := newClock(t0)
	s := openTest(t, "", Options{Now: clk.Now, RetainDaily: 90 * day, PruneChunk: 7, PruneInterval: time.Hour})
	ctx := ctxT(t)
	// let the pass started by Open finish, so it cannot race the inserts
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	// 10 minutes each at 40 days, 10 days and 1 hour ago (the last all
	// inside one day: t0 is 10:00 UTC)
	ageResults(s, t0, 10, 40*day, 10*day, time.Hour)
	mustFlush(t, s)
	if raw, minute, daily := counts(t, s); raw != 60 || minute != 60 || daily != 6 {
		t.Fatalf("before: %d %d %d", raw, minute, daily)
	}
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	// raw: only the last hour (7d); minutes: 10d and 1h (30d, whole days);
	// days: all (90d, whole blocks of 100 days)
	if raw, minute, daily := counts(t, s); raw != 20 || minute != 40 || daily != 6 {
		t.Fatalf("after first prune: raw %d minute %d daily %d", raw, minute, daily)
	}
	if st := s.Stats(); st.PrunedRows != 60 || !st.LastPrune.Equal(t0) {
		t.Fatalf("stats %+v", st)
	}
	checkUnits(t, s)
	// The 90-day bar still shows the 40-day-old day from day buckets.
	days, err := s.DailyUptime(ctx, "api", 90, t0)
	if err != nil {
		t.Fatal(err)
	}
	if days[89-40].Count != 20 || days[89-10].Count != 20 || days[89].Count != 20 {
		t.Fatalf("bar: %d %d %d", days[89-40].Count, days[89-10].Count, days[89].Count)
	}

	// 200 days later everything but the day buckets of whole 100-day
	// blocks not older than 90 days is gone.
	clk.Advance(200 * day)
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if raw, minute, daily := counts(t, s); raw != 0 || minute != 0 || daily != 0 {
		t.Fatalf("after second prune: raw %d minute %d daily %d", raw, minute, daily)
	}
	checkUnits(t, s)
	// Writes after a prune still produce consistent buckets (cache reset).
	ageResults(s, clk.Now(), 1, 0)
	mustFlush(t, s)
	if raw, minute, daily := counts(t, s); raw != 2 || minute != 2 || daily != 2 {
		t.Fatalf("after new writes: raw %d minute %d daily %d", raw, minute, daily)
	}
	checkRollupsAgainstRaw(t, s, "api")
}

// Retention removes whole blocks (days of minutes, 10 days of hours, 100
// days of days): a block goes once it ended before now minus the
// retention, so every node prunes the same buckets.
func TestRetentionBoundaries(t *testing.T) {
	now := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	clk := newClock(now)
	s := openTest(t, "", Options{Now: clk.Now, RetainRaw: time.Hour, RetainMinute: 2 * time.Hour, PruneInterval: time.Hour})
	ctx := ctxT(t)
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	dayStart := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC) // now - 2h falls on the 21st
	s.AddBatch([]Result{
		{Check: "c", Region: "r", Node: "n", Time: now.Add(-time.Hour - time.Millisecond)}, // raw goes
		{Check: "c", Region: "r", Node: "n", Time: now.Add(-time.Hour)},                    // raw stays
		{Check: "c", Region: "r", Node: "n", Time: dayStart.Add(-time.Minute)},             // the 20th: its minute goes
		{Check: "c", Region: "r", Node: "n", Time: dayStart.Add(-time.Millisecond)},        // same minute
		{Check: "c", Region: "r", Node: "n", Time: dayStart},                               // the 21st: stays
	})
	mustFlush(t, s)
	if h := s.Horizon(StepMinute, now); !h.Equal(dayStart) {
		t.Fatalf("horizon %v, want %v", h, dayStart)
	}
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	var minutes []time.Time
	rows, err := s.rdb.Query(`SELECT start FROM series WHERE step = 0 ORDER BY start`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m int64
		if err := rows.Scan(&m); err != nil {
			t.Fatal(err)
		}
		minutes = append(minutes, msTime(m))
	}
	rows.Close()
	raw, _, daily := counts(t, s)
	if raw != 1 || daily != 3 {
		t.Fatalf("raw %d daily %d", raw, daily)
	}
	want := []time.Time{dayStart, now.Add(-time.Hour - time.Minute), now.Add(-time.Hour)}
	if len(minutes) != len(want) {
		t.Fatalf("minutes %v, want %v", minutes, want)
	}
	for i := range want {
		if !minutes[i].Equal(want[i]) {
			t.Fatalf("minutes %v, want %v", minutes, want)
		}
	}
	checkUnits(t, s)
	// A peer's minute bucket older than the horizon is refused.
	b := Bucket{Check: "c", Node: "peer", Region: "r", Step: StepMinute, Start: dayStart.Add(-time.Minute), Agg: Agg{Count: 1}}
	if !s.MergeBuckets([]Bucket{b}) {
		t.Fatal("queue full")
	}
	mustFlush(t, s)
	if st := s.Stats(); st.MergeRefused != 1 {
		t.Fatalf("refused %d", st.MergeRefused)
	}
}

func TestRetentionForever(t *testing.T) {
	clk := newClock(t0)
	s := openTest(t, "", Options{Now: clk.Now, RetainRaw: -1, RetainMinute: -1})
	ageResults(s, t0, 3, 400*day)
	mustFlush(t, s)
	if err := s.Prune(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if raw, minute, daily := counts(t, s); raw != 6 || minute != 6 || daily != 2 {
		t.Fatalf("forever: raw %d minute %d daily %d", raw, minute, daily)
	}
}

// TestRetentionRunsAtOpenAndPeriodically uses deadlines, not fixed sleeps.
func TestRetentionRunsAtOpenAndPeriodically(t *testing.T) {
	clk := newClock(t0)
	s := openTest(t, "", Options{Now: clk.Now, PruneInterval: time.Hour})
	path := s.Path()
	ageResults(s, t0, 5, 8*day)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitRaw := func(s *Store, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			raw, _, _ := counts(t, s)
			if raw == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("raw rows %d, want %d", raw, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// at open
	s = openTest(t, path, Options{Now: clk.Now, PruneInterval: 20 * time.Millisecond})
	waitRaw(s, 0)
	// periodically
	ageResults(s, t0, 5, 6*day)
	mustFlush(t, s)
	waitRaw(s, 10)
	clk.Advance(2 * day)
	waitRaw(s, 0)
}

// TestPruneUnderLoad: retention makes progress while results keep coming,
// and results keep being written while retention runs.
func TestPruneUnderLoad(t *testing.T) {
	clk := newClock(t0)
	s := openTest(t, "", Options{Now: clk.Now, PruneChunk: 50, BatchSize: 100, FlushInterval: time.Millisecond})
	ctx := ctxT(t)
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	ageResults(s, t0, 1000, 8*day) // 2000 old raw rows: 40 chunks
	mustFlush(t, s)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.Add(Result{Check: "live", Region: "eu", Node: "n", Time: t0.Add(time.Duration(i) * time.Millisecond), OK: true})
		}
	}()
	before := s.Stats().ResultsWritten
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	during := s.Stats().ResultsWritten - before
	close(stop)
	<-done
	mustFlush(t, s)
	var old int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM results WHERE check_name = 'api'`).Scan(&old); err != nil || old != 0 {
		t.Fatalf("old rows left: %d %v", old, err)
	}
	if during == 0 {
		t.Fatal("no results written while retention ran")
	}
}
