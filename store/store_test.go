package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an injectable clock.
type fakeClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func openTest(t testing.TB, path string, o Options) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "vantage.db")
	}
	if o.Logger == nil {
		o.Logger = discardLogger
	}
	if o.Now == nil {
		// tests use fixed times around t0: keep retention away from the real clock
		o.Now = newClock(t0).Now
	}
	s, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustFlush(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Flush(ctxT(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func TestOpenCreatesDirAndPragmas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := openTest(t, filepath.Join(dir, "x?y#z%.db"), Options{})
	var mode string
	if err := s.rdb.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q %v", mode, err)
	}
	var sync int
	if err := s.wdb.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 1 {
		t.Fatalf("synchronous %d %v", sync, err)
	}
	var bt int
	if err := s.rdb.QueryRow("PRAGMA busy_timeout").Scan(&bt); err != nil || bt != 5000 {
		t.Fatalf("busy_timeout %d %v", bt, err)
	}
	var fk int
	if err := s.wdb.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys %d %v", fk, err)
	}
	// SQLite's page caches are bounded (negative: KiB): 1 MiB for the
	// writer, 256 KiB for each of the readers, whichever reader answers.
	var wc int
	if err := s.wdb.QueryRow("PRAGMA cache_size").Scan(&wc); err != nil || wc != -1024 {
		t.Fatalf("writer cache_size %d %v, want -1024", wc, err)
	}
	conns := make([]*sql.Conn, s.opts.ReadConns)
	for i := range conns {
		c, err := s.rdb.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		var rc int
		if err := c.QueryRowContext(context.Background(), "PRAGMA cache_size").Scan(&rc); err != nil || rc != -256 {
			t.Fatalf("reader %d cache_size %d %v, want -256", i, rc, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	// the read pool cannot write
	if _, err := s.rdb.Exec("DELETE FROM results"); err == nil {
		t.Fatal("read pool accepted a write")
	}
	if got := s.wdb.Stats().MaxOpenConnections; got != 1 {
		t.Fatalf("writer max conns %d", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "x?y#z%.db")); err != nil {
		t.Fatalf("database not at the literal path: %v", err)
	}
}

func TestAddFlushHistory(t *testing.T) {
	s := openTest(t, "", Options{FlushInterval: time.Hour})
	ctx := ctxT(t)
	in := []Result{
		{Node: "eu-1", Region: "eu-west", Check: "api", Time: t0, OK: true, Latency: 41500 * time.Microsecond,
			DNS: 2 * time.Millisecond, Connect: 3 * time.Millisecond, TLS: 10 * time.Millisecond, FirstByte: 20 * time.Millisecond},
		{Node: "us-1", Region: "us-east", Check: "api", Time: t0.Add(time.Second), OK: false, Latency: 10 * time.Second,
			Code: "timeout", Message: "no answer"},
		{Node: "us-1", Region: "us-east", Check: "db", Time: t0.Add(2 * time.Second), OK: true, Latency: time.Millisecond},
	}
	s.Add(in[0])
	s.AddBatch(in[1:])
	mustFlush(t, s)
	got, err := s.History(ctx, "api", t0, t0.Add(time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d results", len(got))
	}
	for i, r := range got {
		if r != in[i] {
			t.Fatalf("result %d:\n got %+v\nwant %+v", i, r, in[i])
		}
	}
	// limit keeps the newest, oldest first
	got, err = s.History(ctx, "api", t0, t0.Add(time.Minute), 1)
	if err != nil || len(got) != 1 || got[0] != in[1] {
		t.Fatalf("limit: %+v %v", got, err)
	}
	// to is exclusive
	got, _ = s.History(ctx, "api", t0, t0.Add(time.Second), 0)
	if len(got) != 1 {
		t.Fatalf("exclusive to: %d", len(got))
	}
	st := s.Stats()
	if st.ResultsWritten != 3 || st.ResultsAccepted != 3 || st.QueueDepth != 0 || st.Batches != 1 || st.LastBatchSize != 3 {
		t.Fatalf("stats %+v", st)
	}
	var n uint64
	for _, c := range st.BatchDurationCounts {
		n += c
	}
	if n != 1 || st.LastBatchDuration <= 0 || st.AvgBatchDuration <= 0 {
		t.Fatalf("batch duration stats %+v", st)
	}
}

func TestFlushIntervalCommits(t *testing.T) {
	s := openTest(t, "", Options{FlushInterval: 20 * time.Millisecond})
	s.Add(Result{Check: "c", Region: "r", Node: "n", Time: t0, OK: true, Latency: time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().ResultsWritten != 1 {
		if time.Now().After(deadline) {
			t.Fatal("result not committed by the flush interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBatchSizeCommits(t *testing.T) {
	s := openTest(t, "", Options{BatchSize: 10, FlushInterval: time.Hour})
	for i := 0; i < 25; i++ {
		s.Add(Result{Check: "c", Region: "r", Node: "n", Time: t0.Add(time.Duration(i) * time.Second), OK: true, Latency: time.Millisecond})
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().ResultsWritten != 20 {
		if time.Now().After(deadline) {
			t.Fatalf("written %d, want 20 before flush", s.Stats().ResultsWritten)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mustFlush(t, s)
	if st := s.Stats(); st.ResultsWritten != 25 || st.Batches != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// expected computes aggregates from raw results.
func expected(rs []Result) Aggregate {
	var a agg
	for i := range rs {
		a.add(&rs[i])
	}
	return a.aggregate()
}

func TestRollupsMatchRaw(t *testing.T) {
	s := openTest(t, "", Options{BatchSize: 37, FlushInterval: time.Hour})
	ctx := ctxT(t)
	rng := rand.New(rand.NewPCG(3, 4))
	regions := []string{"eu-west", "us-east", "ap-south"}
	start := t0.Add(-3 * 24 * time.Hour)
	var all []Result
	for i := 0; i < 3000; i++ {
		r := Result{
			Node:    "n-" + regions[i%3],
			Region:  regions[i%3],
			Check:   []string{"api", "db"}[rng.IntN(2)],
			Time:    start.Add(time.Duration(rng.Int64N(int64(72*time.Hour))) / time.Millisecond * time.Millisecond),
			OK:      rng.IntN(10) != 0,
			Latency: time.Duration(rng.Int64N(int64(2*time.Second))) / time.Microsecond * time.Microsecond,
		}
		if i%50 == 0 {
			r.Latency = 0 // not measured
		}
		all = append(all, r)
	}
	// Half, then reopen (empty cache) and the rest, out of order.
	path := s.Path()
	s.AddBatch(all[:1500])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, Options{BatchSize: 37, FlushInterval: time.Hour})
	for _, r := range all[1500:] {
		s.Add(r)
	}
	mustFlush(t, s)

	// daily, all regions and one region
	for _, check := range []string{"api", "db"} {
		days, err := s.DailyUptime(ctx, check, 5, t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 5 {
			t.Fatalf("%d days", len(days))
		}
		for i, d := range days {
			want := t0.Truncate(24*time.Hour).AddDate(0, 0, i-4)
			if !d.Day.Equal(want) {
				t.Fatalf("day %d is %v, want %v", i, d.Day, want)
			}
			var sel, selEU []Result
			for _, r := range all {
				if r.Check == check && !r.Time.Before(want) && r.Time.Before(want.Add(24*time.Hour)) {
					sel = append(sel, r)
					if r.Region == "eu-west" {
						selEU = append(selEU, r)
					}
				}
			}
			if e := expected(sel); d.Aggregate != e {
				t.Fatalf("%s day %v:\n got %+v\nwant %+v", check, d.Day, d.Aggregate, e)
			}
			eu, err := s.DailyUptimeRegion(ctx, check, "eu-west", 5, t0)
			if err != nil {
				t.Fatal(err)
			}
			if e := expected(selEU); eu[i].Aggregate != e {
				t.Fatalf("%s eu day %v:\n got %+v\nwant %+v", check, d.Day, eu[i].Aggregate, e)
			}
		}
		// first day (t0-4d) has no data
		if days[0].Count != 0 || days[0].Uptime != NoData || days[0].HasData() {
			t.Fatalf("empty day: %+v", days[0])
		}
	}

	// minutes: compare a 6h window
	from, to := start.Add(5*time.Hour), start.Add(11*time.Hour)
	ms, err := s.MinuteStats(ctx, "api", "", from, to)
	if err != nil {
		t.Fatal(err)
	}
	byMin := map[int64][]Result{}
	for _, r := range all {
		if r.Check == "api" && !r.Time.Before(from) && r.Time.Before(to) {
			k := floorTo(r.Time.UnixMilli(), minuteMS)
			byMin[k] = append(byMin[k], r)
		}
	}
	if len(ms) != len(byMin) || len(ms) == 0 {
		t.Fatalf("%d minutes, want %d", len(ms), len(byMin))
	}
	for i, m := range ms {
		if i > 0 && !m.Minute.After(ms[i-1].Minute) {
			t.Fatal("minutes not ascending")
		}
		if e := expected(byMin[m.Minute.UnixMilli()]); m.Aggregate != e {
			t.Fatalf("minute %v:\n got %+v\nwant %+v", m.Minute, m.Aggregate, e)
		}
	}
	// totals: rollups count == raw rows
	assertRollupTotals(t, s)
}

func assertRollupTotals(t testing.TB, s *Store) int64 {
	t.Helper()
	var raw int64
	if err := s.rdb.QueryRow(`SELECT count(*) FROM results`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	for st := StepMinute; st < numSteps; st++ {
		var n int64
		if err := s.rdb.QueryRow(`SELECT coalesce(sum(count),0) FROM series WHERE step = ?`, int64(st)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != raw {
			t.Fatalf("raw %d, %s buckets %d", raw, st, n)
		}
	}
	return raw
}

func TestDailyUptimeShape(t *testing.T) {
	s := openTest(t, "", Options{})
	ctx := ctxT(t)
	now := time.Date(2026, 11, 22, 23, 59, 0, 0, time.UTC)
	// one failure yesterday, successes today in two regions
	s.AddBatch([]Result{
		{Check: "api", Region: "eu", Node: "a", Time: now.Add(-24 * time.Hour), OK: false, Latency: 3 * time.Second},
		{Check: "api", Region: "eu", Node: "a", Time: now.Add(-time.Minute), OK: true, Latency: 10 * time.Millisecond},
		{Check: "api", Region: "us", Node: "b", Time: now.Add(-time.Minute), OK: true, Latency: 30 * time.Millisecond},
		{Check: "api", Region: "us", Node: "b", Time: now.Add(-2 * time.Minute), OK: false, Latency: 20 * time.Millisecond},
		{Check: "other", Region: "us", Node: "b", Time: now, OK: false},
	})
	mustFlush(t, s)
	days, err := s.DailyUptime(ctx, "api", 90, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 90 {
		t.Fatalf("%d days", len(days))
	}
	for i, d := range days[:88] {
		if d.Count != 0 || d.Uptime != NoData {
			t.Fatalf("day %d: %+v", i, d)
		}
	}
	y, today := days[88], days[89]
	if y.Count != 1 || y.Failures != 1 || y.Uptime != 0 || y.MaxLatency != 3*time.Second {
		t.Fatalf("yesterday %+v", y)
	}
	if today.Count != 3 || today.Failures != 1 || math.Abs(today.Uptime-2.0/3) > 1e-12 ||
		today.MinLatency != 10*time.Millisecond || today.MaxLatency != 30*time.Millisecond ||
		today.AvgLatency != 20*time.Millisecond {
		t.Fatalf("today %+v", today)
	}
	if p := today.P95Latency; p < 27*time.Millisecond || p > 30*time.Millisecond {
		t.Fatalf("p95 %v", p)
	}
	if !today.Day.Equal(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) || !days[0].Day.Equal(today.Day.AddDate(0, 0, -89)) {
		t.Fatalf("days %v .. %v", days[0].Day, today.Day)
	}
	// an unknown check: all empty
	empty, err := s.DailyUptime(ctx, "nope", 3, now)
	if err != nil || len(empty) != 3 || empty[2].Count != 0 {
		t.Fatalf("%+v %v", empty, err)
	}
	if d, _ := s.DailyUptime(ctx, "api", 0, now); d != nil {
		t.Fatal("0 days")
	}
}

func TestUptimeWindows(t *testing.T) {
	s := openTest(t, "", Options{})
	ctx := ctxT(t)
	now := t0
	var rs []Result
	// last hour: 1 failure in 60; 40 days ago: 10 failures
	for i := 0; i < 60; i++ {
		rs = append(rs, Result{Check: "api", Region: "eu", Node: "a", Time: now.Add(-time.Duration(i) * time.Minute), OK: i != 5, Latency: time.Millisecond})
	}
	for i := 0; i < 10; i++ {
		rs = append(rs, Result{Check: "api", Region: "eu", Node: "a", Time: now.Add(-40 * 24 * time.Hour).Add(time.Duration(i) * time.Second), OK: false})
	}
	s.AddBatch(rs)
	mustFlush(t, s)
	u, err := s.Uptime(ctx, "api", time.Hour, now)
	if err != nil || math.Abs(u-59.0/60) > 1e-12 {
		t.Fatalf("1h uptime %v %v", u, err)
	}
	u, err = s.Uptime(ctx, "api", 30*24*time.Hour, now)
	if err != nil || math.Abs(u-59.0/60) > 1e-12 {
		t.Fatalf("30d uptime %v %v", u, err)
	}
	u, err = s.Uptime(ctx, "api", 90*24*time.Hour, now)
	if err != nil || math.Abs(u-59.0/70) > 1e-12 {
		t.Fatalf("90d uptime %v %v", u, err)
	}
	u, err = s.Uptime(ctx, "nope", time.Hour, now)
	if err != nil || u != NoData {
		t.Fatalf("no data: %v %v", u, err)
	}
}

func TestIncidents(t *testing.T) {
	clk := newClock(t0)
	s := openTest(t, "", Options{Now: clk.Now})
	ctx := ctxT(t)
	inc := Incident{ID: "api-1", Check: "api", Title: "api down", State: "down", StartedAt: t0, Details: `{"regions":["eu"]}`}
	created, err := s.OpenIncident(ctx, inc)
	if err != nil || !created {
		t.Fatalf("open: %v %v", created, err)
	}
	// idempotent: a second node computes the same id
	dup := inc
	dup.Title = "different"
	dup.StartedAt = t0.Add(time.Second)
	created, err = s.OpenIncident(ctx, dup)
	if err != nil || created {
		t.Fatalf("open again: %v %v", created, err)
	}
	got, err := s.Incident(ctx, "api-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "api down" || !got.StartedAt.Equal(t0) || !got.Open() || got.Details != inc.Details || got.State != "down" {
		t.Fatalf("incident %+v", got)
	}
	if _, err := s.OpenIncident(ctx, Incident{Check: "x"}); err == nil {
		t.Fatal("empty id accepted")
	}
	s.OpenIncident(ctx, Incident{ID: "db-1", Check: "db", Title: "db down", State: "down", StartedAt: t0.Add(time.Hour)})
	s.OpenIncident(ctx, Incident{ID: "api-0", Check: "api", Title: "old", State: "down", StartedAt: t0.Add(-time.Hour)})

	open, err := s.OpenIncidents(ctx)
	if err != nil || len(open) != 3 {
		t.Fatalf("open incidents %d %v", len(open), err)
	}
	resolved, err := s.ResolveIncident(ctx, "api-1", t0.Add(10*time.Minute))
	if err != nil || !resolved {
		t.Fatalf("resolve: %v %v", resolved, err)
	}
	resolved, err = s.ResolveIncident(ctx, "api-1", t0.Add(20*time.Minute))
	if err != nil || resolved {
		t.Fatalf("resolve again: %v %v", resolved, err)
	}
	if _, err := s.ResolveIncident(ctx, "nope", time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolve unknown: %v", err)
	}
	got, _ = s.Incident(ctx, "api-1")
	if got.Open() || !got.ResolvedAt.Equal(t0.Add(10*time.Minute)) || got.State != ResolvedState {
		t.Fatalf("resolved incident %+v", got)
	}
	// re-opening a resolved id changes nothing
	if created, _ := s.OpenIncident(ctx, inc); created {
		t.Fatal("resolved incident re-created")
	}
	if err := s.UpdateIncident(ctx, "db-1", "", "identified", "cause: disk"); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateIncident(ctx, "nope", "a", "", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	db, _ := s.Incident(ctx, "db-1")
	if db.Title != "db down" || db.State != "identified" || db.Details != "cause: disk" {
		t.Fatalf("updated %+v", db)
	}
	all, err := s.Incidents(ctx, 0)
	if err != nil || len(all) != 3 || all[0].ID != "db-1" || all[1].ID != "api-1" || all[2].ID != "api-0" {
		t.Fatalf("incidents %+v %v", all, err)
	}
	two, _ := s.Incidents(ctx, 2)
	if len(two) != 2 || two[0].ID != "db-1" {
		t.Fatalf("limit: %+v", two)
	}
	if _, err := s.Incident(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	open, _ = s.OpenIncidents(ctx)
	if len(open) != 2 {
		t.Fatalf("open after resolve: %d", len(open))
	}
}

func TestStateChanges(t *testing.T) {
	s := openTest(t, "", Options{})
	ctx := ctxT(t)
	chs := []StateChange{
		{Check: "api", Time: t0, From: "up", To: "down", IncidentID: "api-1", Detail: "eu,us down"},
		{Check: "db", Time: t0.Add(time.Second), From: "up", To: "unknown"},
		{Check: "api", Time: t0.Add(time.Minute), From: "down", To: "up", IncidentID: "api-1"},
	}
	for _, c := range chs {
		if err := s.RecordStateChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.StateChanges(ctx, "api", t0, t0.Add(time.Hour))
	if err != nil || len(got) != 2 || got[0] != chs[0] || got[1] != chs[2] {
		t.Fatalf("%+v %v", got, err)
	}
	got, _ = s.StateChanges(ctx, "", t0, t0.Add(time.Minute))
	if len(got) != 2 || got[1] != chs[1] {
		t.Fatalf("all checks: %+v", got)
	}
}

func TestCloseTwiceAndAfterClose(t *testing.T) {
	s := openTest(t, "", Options{FlushInterval: time.Hour})
	path := s.Path()
	for i := 0; i < 10; i++ {
		s.Add(Result{Check: "c", Region: "r", Node: "n", Time: t0.Add(time.Duration(i) * time.Second), OK: true})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if s.Add(Result{Check: "c"}) {
		t.Fatal("Add after Close accepted")
	}
	if s.Stats().Dropped != 1 {
		t.Fatalf("dropped %d", s.Stats().Dropped)
	}
	if err := s.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after close: %v", err)
	}
	if err := s.RecordStateChange(context.Background(), StateChange{Check: "c"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	// pending results were committed by Close
	s2 := openTest(t, path, Options{})
	got, err := s2.History(ctxT(t), "c", t0, t0.Add(time.Hour), 0)
	if err != nil || len(got) != 10 {
		t.Fatalf("after reopen: %d %v", len(got), err)
	}
}

// TestQueueFullDrops blocks the writer, fills the queue and checks that Add
// waits EnqueueTimeout, then drops and counts.
func TestQueueFullDrops(t *testing.T) {
	s := openTest(t, "", Options{QueueSize: 4, EnqueueTimeout: 50 * time.Millisecond, FlushInterval: time.Hour})
	ctx := ctxT(t)
	release := make(chan struct{})
	blocked := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.exec(ctx, func(*sql.Tx) error { close(blocked); <-release; return nil })
	}()
	<-blocked
	for i := 0; i < 4; i++ {
		if !s.Add(Result{Check: "c", Region: "r", Node: "n", Time: t0}) {
			t.Fatalf("add %d refused with room in the queue", i)
		}
	}
	start := time.Now()
	if s.Add(Result{Check: "c", Region: "r", Node: "n", Time: t0}) {
		t.Fatal("add to a full queue accepted")
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("Add gave up after %v, want ~EnqueueTimeout", d)
	}
	st := s.Stats()
	if st.Dropped != 1 || st.QueueDepth != 4 || st.ResultsAccepted != 4 {
		t.Fatalf("stats %+v", st)
	}
	// a blocked Add succeeds once the writer drains
	done := make(chan bool)
	go func() { done <- s.Add(Result{Check: "c", Region: "r", Node: "n", Time: t0}) }()
	close(release)
	wg.Wait()
	if !<-done {
		t.Log("late Add dropped (timing); not an error")
	}
	mustFlush(t, s)
	if st := s.Stats(); st.QueueDepth != 0 || st.ResultsWritten+st.Dropped != 6 {
		t.Fatalf("after drain %+v", st)
	}
}

func TestConcurrentAddersAndReaders(t *testing.T) {
	s := openTest(t, "", Options{BatchSize: 64, FlushInterval: 5 * time.Millisecond})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	const writers, per = 4, 500
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				s.Add(Result{Check: fmt.Sprintf("c%d", i%5), Region: fmt.Sprintf("r%d", w), Node: "n",
					Time: t0.Add(time.Duration(i) * time.Second), OK: i%7 != 0, Latency: time.Duration(i+1) * time.Millisecond})
			}
		}(w)
	}
	stop := make(chan struct{})
	var rg sync.WaitGroup
	for r := 0; r < 3; r++ {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.DailyUptime(ctx, "c1", 90, t0); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.History(ctx, "c1", t0, t0.Add(time.Hour), 100); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	mustFlush(t, s)
	close(stop)
	rg.Wait()
	if n := assertRollupTotals(t, s); n != writers*per {
		t.Fatalf("%d rows", n)
	}
}

// checkRollupsAgainstRaw recomputes every bucket from the raw rows and
// compares them, histogram and region included, and the unit digests
// from the buckets.
func checkRollupsAgainstRaw(t testing.TB, s *Store, checks ...string) {
	t.Helper()
	ctx := ctxT(t)
	want := map[rkey]*row{}
	for _, c := range checks {
		rs, err := s.History(ctx, c, time.Unix(0, 0), time.Unix(1<<40, 0), 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rs {
			r := &rs[i]
			ts := r.Time.UnixMilli()
			for st := StepMinute; st < numSteps; st++ {
				k := rkey{c, r.Node, st, floorTo(ts, stepMS[st])}
				if want[k] == nil {
					want[k] = new(row)
				}
				want[k].add(r)
				want[k].region = r.Region
			}
		}
	}
	got := readAllBuckets(t, s)
	if len(got) != len(want) {
		t.Fatalf("%d buckets, want %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if g == nil {
			t.Fatalf("bucket %+v missing", k)
		}
		if *g != *w {
			t.Fatalf("bucket %+v:\n got %+v\nwant %+v", k, *g, *w)
		}
	}
	checkUnits(t, s)
}

// readAllBuckets reads the series table.
func readAllBuckets(t testing.TB, s *Store) map[rkey]*row {
	t.Helper()
	rows, err := s.rdb.Query(`SELECT check_name, node, step, start, ` + bucketCols + ` FROM series`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[rkey]*row{}
	for rows.Next() {
		var k rkey
		var step int64
		r := new(row)
		var blob []byte
		if err := rows.Scan(&k.check, &k.node, &step, &k.start, &r.region, &r.count, &r.failures, &r.latN, &r.latMin, &r.latMax, &r.latSum, &blob); err != nil {
			t.Fatal(err)
		}
		if err := r.h.addEncoded(blob); err != nil {
			t.Fatal(err)
		}
		k.step = Step(step)
		got[k] = r
	}
	return got
}

// checkUnits recomputes series_units and the block digests from the
// buckets and compares.
func checkUnits(t testing.TB, s *Store) {
	t.Helper()
	units := map[ukey]udelta{}
	var buf []byte
	for k, r := range readAllBuckets(t, s) {
		var h uint64
		h, buf = rowHash(buf, k, r)
		u := units[k.unit()]
		u.hash += h
		u.rows++
		units[k.unit()] = u
	}
	rows, err := s.rdb.Query(`SELECT node, step, start, hash, rows FROM series_units`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	blocks := map[bkey]udelta{}
	for rows.Next() {
		var u ukey
		var step, h, c int64
		if err := rows.Scan(&u.node, &step, &u.start, &h, &c); err != nil {
			t.Fatal(err)
		}
		u.step = Step(step)
		if w := units[u]; w.hash != uint64(h) || w.rows != c {
			t.Fatalf("unit %+v: hash %x rows %d, buckets give %x %d", u, uint64(h), c, w.hash, w.rows)
		}
		b := blocks[blockOf(u)]
		b.hash += uint64(h)
		b.rows += c
		blocks[blockOf(u)] = b
		n++
	}
	if n != len(units) {
		t.Fatalf("%d units, buckets give %d", n, len(units))
	}
	s.digMu.RLock()
	defer s.digMu.RUnlock()
	for k, v := range s.blocks {
		if v.rows == 0 {
			continue
		}
		if blocks[k] != v {
			t.Fatalf("block %+v: %+v, units give %+v", k, v, blocks[k])
		}
	}
	for k, v := range blocks {
		if s.blocks[k] != v {
			t.Fatalf("block %+v: %+v in memory, units give %+v", k, s.blocks[k], v)
		}
	}
}

// TestRollupCacheEviction uses a tiny cache so rows are evicted and
// reloaded, with late and out-of-order results, across a reopen.
func TestRollupCacheEviction(t *testing.T) {
	o := Options{BatchSize: 13, FlushInterval: time.Hour, cacheLimit: 8}
	s := openTest(t, "", o)
	rng := rand.New(rand.NewPCG(5, 6))
	gen := func(n int) []Result {
		var rs []Result
		for i := 0; i < n; i++ {
			reg := rng.IntN(2) // a node is in one region
			rs = append(rs, Result{Check: fmt.Sprintf("c%d", rng.IntN(3)), Region: fmt.Sprintf("r%d", reg), Node: fmt.Sprintf("n%d", reg),
				Time: t0.Add(-time.Duration(rng.IntN(3*24*60)) * time.Minute).Add(time.Duration(rng.IntN(60000)) * time.Millisecond),
				OK:   rng.IntN(4) != 0, Latency: time.Duration(rng.IntN(5_000_000)) * time.Microsecond})
		}
		return rs
	}
	for _, r := range gen(700) {
		s.Add(r)
	}
	// many results in the same few minutes: cache hits and evictions mixed
	for i := 0; i < 300; i++ {
		s.Add(Result{Check: "c0", Region: "r0", Node: "n0", Time: t0.Add(time.Duration(i%3) * time.Minute), OK: true, Latency: time.Millisecond})
	}
	mustFlush(t, s)
	checkRollupsAgainstRaw(t, s, "c0", "c1", "c2")
	path := s.Path()
	s.Close()
	s = openTest(t, path, o)
	s.AddBatch(gen(500))
	mustFlush(t, s)
	checkRollupsAgainstRaw(t, s, "c0", "c1", "c2")
}

// TestRollupCacheSweptEveryMinute: with the default cache limit, far
// above what 50 checks need, the writer still drops buckets well behind
// the newest once a minute: after 20 minutes it holds at most six minute,
// three hour and three day buckets per check, and the rollups stay right.
func TestRollupCacheSweptEveryMinute(t *testing.T) {
	s := openTest(t, "", Options{FlushInterval: time.Hour})
	const checks = 50
	cached := func() int {
		var n int
		if err := s.exec(ctxT(t), func(*sql.Tx) error { n = len(s.w.cache); return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	most := 0
	for m := range 20 {
		for c := range checks {
			for sec := 0; sec < 60; sec += 20 {
				s.Add(Result{Check: fmt.Sprintf("c%d", c), Region: "r0", Node: "n0",
					Time: t0.Add(time.Duration(m)*time.Minute + time.Duration(sec)*time.Second), OK: sec != 40, Latency: time.Millisecond})
			}
		}
		mustFlush(t, s)
		most = max(most, cached())
	}
	if bound := checks * (6 + 3 + 3); most > bound {
		t.Fatalf("the writer cached up to %d buckets for %d checks, want at most %d", most, checks, bound)
	}
	names := make([]string, checks)
	for c := range names {
		names[c] = fmt.Sprintf("c%d", c)
	}
	checkRollupsAgainstRaw(t, s, names...)
}

func TestReplaceIncident(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "r.db"), Options{})
	ctx := ctxT(t)
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if _, err := s.OpenIncident(ctx, Incident{ID: "b", Check: "api", Title: "api is down", StartedAt: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordStateChange(ctx, StateChange{Check: "api", Time: t0, From: "up", To: "down", IncidentID: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceIncident(ctx, "b", "a", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incident(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old id still present: %v", err)
	}
	inc, err := s.Incident(ctx, "a")
	if err != nil || !inc.StartedAt.Equal(t0) || inc.Title != "api is down" || !inc.Open() {
		t.Fatalf("replaced incident %+v %v", inc, err)
	}
	scs, err := s.StateChanges(ctx, "api", t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil || len(scs) != 1 || scs[0].IncidentID != "a" {
		t.Fatalf("state changes %+v %v", scs, err)
	}
	// Replacing into an existing id removes the old row.
	if _, err := s.OpenIncident(ctx, Incident{ID: "c", Check: "api", StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceIncident(ctx, "c", "a", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incident(ctx, "c"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("merged id still present: %v", err)
	}
	if err := s.ReplaceIncident(ctx, "nope", "a", t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}
