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
		{`SELECT count(*) FROM minute_rollups`, &minute},
		{`SELECT count(*) FROM daily_rollups`, &daily},
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
	// raw: only the last hour (7d); minutes: 10d and 1h (30d); days: all (90d)
	if raw, minute, daily := counts(t, s); raw != 20 || minute != 40 || daily != 6 {
		t.Fatalf("after first prune: raw %d minute %d daily %d", raw, minute, daily)
	}
	if st := s.Stats(); st.PrunedRows != 60 || !st.LastPrune.Equal(t0) {
		t.Fatalf("stats %+v", st)
	}
	// The 90-day bar still shows the 40-day-old day from daily rollups.
	days, err := s.DailyUptime(ctx, "api", 90, t0)
	if err != nil {
		t.Fatal(err)
	}
	if days[89-40].Count != 20 || days[89-10].Count != 20 || days[89].Count != 20 {
		t.Fatalf("bar: %d %d %d", days[89-40].Count, days[89-10].Count, days[89].Count)
	}

	// 60 days later: the 10-day-old minutes go, daily rows are 100 and 70
	// days old: only the 40-day-old ones (now 100) go.
	clk.Advance(60 * day)
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if raw, minute, daily := counts(t, s); raw != 0 || minute != 0 || daily != 4 {
		t.Fatalf("after second prune: raw %d minute %d daily %d", raw, minute, daily)
	}
	// Writes after a prune still produce consistent rollups (cache reset).
	ageResults(s, clk.Now(), 1, 0)
	mustFlush(t, s)
	if raw, minute, daily := counts(t, s); raw != 2 || minute != 2 || daily != 6 {
		t.Fatalf("after new writes: raw %d minute %d daily %d", raw, minute, daily)
	}
}

func TestRetentionBoundaries(t *testing.T) {
	clk := newClock(t0)
	s := openTest(t, "", Options{Now: clk.Now, RetainRaw: time.Hour, RetainMinute: 2 * time.Hour, PruneInterval: time.Hour})
	ctx := ctxT(t)
	s.AddBatch([]Result{
		{Check: "c", Region: "r", Node: "n", Time: t0.Add(-time.Hour - time.Millisecond)},   // raw goes
		{Check: "c", Region: "r", Node: "n", Time: t0.Add(-time.Hour)},                      // raw stays
		{Check: "c", Region: "r", Node: "n", Time: t0.Add(-2*time.Hour - time.Minute)},      // minute ends at the cutoff: goes
		{Check: "c", Region: "r", Node: "n", Time: t0.Add(-2*time.Hour - time.Millisecond)}, // same minute
		{Check: "c", Region: "r", Node: "n", Time: t0.Add(-2 * time.Hour)},                  // minute ends after the cutoff: stays
	})
	mustFlush(t, s)
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	var minutes []time.Time
	rows, err := s.rdb.Query(`SELECT minute FROM minute_rollups ORDER BY minute`)
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
	if raw != 1 || daily != 1 {
		t.Fatalf("raw %d daily %d", raw, daily)
	}
	want := []time.Time{t0.Add(-2 * time.Hour), t0.Add(-time.Hour - time.Minute), t0.Add(-time.Hour)}
	if len(minutes) != len(want) {
		t.Fatalf("minutes %v, want %v", minutes, want)
	}
	for i := range want {
		if !minutes[i].Equal(want[i]) {
			t.Fatalf("minutes %v, want %v", minutes, want)
		}
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
