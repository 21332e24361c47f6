package store

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// bucketOfResults builds a node's bucket from results, as its writer does.
func bucketOfResults(check, node, region string, step Step, start time.Time, rs ...Result) Bucket {
	var a agg
	for i := range rs {
		a.add(&rs[i])
	}
	return Bucket{Check: check, Node: node, Region: region, Step: step, Start: start, Agg: a.export()}
}

func res(ok bool, ms int) Result {
	return Result{OK: ok, Latency: time.Duration(ms) * time.Millisecond}
}

// versions makes growing versions of a node's minute buckets: the i-th
// version of a bucket holds the first i+1 results, as a node's bucket
// grows while its minute runs.
func versions(rng *rand.Rand, checks, nodes, minutes, results int) [][]Bucket {
	var out [][]Bucket
	for c := 0; c < checks; c++ {
		for n := 0; n < nodes; n++ {
			for m := 0; m < minutes; m++ {
				var rs []Result
				var vs []Bucket
				for i := 0; i < results; i++ {
					rs = append(rs, res(rng.IntN(5) != 0, 1+rng.IntN(900)))
					vs = append(vs, bucketOfResults(fmt.Sprintf("c%d", c), fmt.Sprintf("n%d", n), fmt.Sprintf("r%d", n%2),
						StepMinute, t0.Add(time.Duration(m-minutes)*time.Minute), rs...))
				}
				out = append(out, vs)
			}
		}
	}
	return out
}

func merge(t testing.TB, s *Store, bs ...Bucket) {
	t.Helper()
	if !s.MergeBuckets(slices.Clone(bs)) {
		t.Fatal("merge queue full")
	}
	mustFlush(t, s)
}

// sameSeries compares two stores' buckets and digests.
func sameSeries(t testing.TB, a, b *Store) {
	t.Helper()
	ga, gb := readAllBuckets(t, a), readAllBuckets(t, b)
	if len(ga) != len(gb) {
		t.Fatalf("%d buckets and %d", len(ga), len(gb))
	}
	for k, r := range ga {
		if o := gb[k]; o == nil || *o != *r {
			t.Fatalf("bucket %+v: %+v and %+v", k, r, o)
		}
	}
	if !slices.Equal(a.Blocks(), b.Blocks()) {
		t.Fatalf("blocks differ:\n%+v\n%+v", a.Blocks(), b.Blocks())
	}
	checkUnits(t, a)
	checkUnits(t, b)
}

// Merging keeps the larger version of each bucket: idempotent, in any
// order, and a re-sent bucket replaces the one held instead of adding.
func TestMergeIdempotentOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vs := versions(rng, 3, 3, 70, 3) // 70 minutes: two hours
	var all []Bucket
	for _, v := range vs {
		all = append(all, v...)
	}
	a := openTest(t, "", Options{})
	b := openTest(t, "", Options{})
	// a: in order, each version once
	merge(t, a, all...)
	// b: shuffled, in small batches, every bucket twice
	sh := append(slices.Clone(all), all...)
	rng.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
	for len(sh) > 0 {
		n := min(len(sh), 1+rng.IntN(40))
		merge(t, b, sh[:n]...)
		sh = sh[n:]
	}
	sameSeries(t, a, b)
	// again: nothing changes
	before := a.Stats().MergeChanged
	merge(t, a, all...)
	if a.Stats().MergeChanged != before {
		t.Fatal("merging the same buckets again changed something")
	}
	sameSeries(t, a, b)

	// Each minute bucket is its newest version; hour and day buckets are
	// their sums; a region sums its nodes, counted once.
	got := readAllBuckets(t, a)
	var wantCount int64
	for _, v := range vs {
		last := v[len(v)-1]
		k := rkey{last.Check, last.Node, StepMinute, last.Start.UnixMilli()}
		if r := got[k]; r == nil || r.agg != last.Agg.internal() {
			t.Fatalf("minute %+v: %+v, want the last version %+v", k, r, last.Agg)
		}
		wantCount += last.Count
	}
	for st := StepMinute; st < numSteps; st++ {
		var n int64
		for k, r := range got {
			if k.step == st {
				n += r.count
			}
		}
		if n != wantCount {
			t.Fatalf("%s buckets hold %d results, want %d", st, n, wantCount)
		}
	}
	ctx := ctxT(t)
	ser, err := a.Series(ctx, "c0", StepHour, t0.Add(-3*time.Hour), t0)
	if err != nil {
		t.Fatal(err)
	}
	var r0 int64
	for _, p := range ser["r0"] {
		r0 += p.Agg.Count
	}
	// r0 holds nodes n0 and n2: 2 nodes × 70 minutes × 3 results
	if r0 != 2*70*3 || len(ser) != 2 {
		t.Fatalf("region r0: %d results in %d regions", r0, len(ser))
	}
}

// A node's own results and the versions of its buckets a peer sends back
// (after its data was lost) add up: the hour holds the old results from
// the peer and the new ones.
func TestMergeOwnBucketsAfterWipe(t *testing.T) {
	a := openTest(t, "", Options{})
	base := t0.Add(-30 * time.Minute)
	var rs []Result
	for i := 0; i < 10; i++ {
		rs = append(rs, Result{Check: "api", Node: "n1", Region: "eu", Time: base.Add(time.Duration(i) * time.Minute), OK: i != 3, Latency: time.Duration(10+i) * time.Millisecond})
	}
	a.AddBatch(rs)
	mustFlush(t, a)
	// b lost everything; a sends it n1's buckets (all steps)
	b := openTest(t, "", Options{})
	var sent []Bucket
	for st := StepMinute; st < numSteps; st++ {
		if err := a.ReadBuckets(ctxT(t), "n1", st, 0, 1<<50, func(x *Bucket) error { sent = append(sent, *x); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	merge(t, b, sent...)
	sameSeries(t, a, b)
	// both take new results of n1 (b is n1 again)
	more := []Result{{Check: "api", Node: "n1", Region: "eu", Time: base.Add(20 * time.Minute), OK: true, Latency: time.Millisecond}}
	a.AddBatch(more)
	b.AddBatch(more)
	mustFlush(t, a)
	mustFlush(t, b)
	sameSeries(t, a, b)
	n, f, err := b.Total(ctxT(t), "api", t0.Add(-24*time.Hour), t0)
	if err != nil || n != 11 || f != 1 {
		t.Fatalf("total %d %d %v", n, f, err)
	}
}

// A received hour bucket larger than the sum of the minutes held is kept
// (its minutes are on their way or aged out); once every minute is there
// the sum and the received hour agree.
func TestMergeDerivedKeepsLarger(t *testing.T) {
	a := openTest(t, "", Options{})
	b := openTest(t, "", Options{})
	hour := t0.Add(-2 * time.Hour)
	var rs []Result
	for i := 0; i < 6; i++ {
		rs = append(rs, Result{Check: "db", Node: "us-1", Region: "us", Time: hour.Add(time.Duration(i*10) * time.Minute), OK: true, Latency: time.Duration(5+i) * time.Millisecond})
	}
	a.AddBatch(rs)
	mustFlush(t, a)
	var minutes, upper []Bucket
	for st := StepMinute; st < numSteps; st++ {
		if err := a.ReadBuckets(ctxT(t), "us-1", st, 0, 1<<50, func(x *Bucket) error {
			if st == StepMinute {
				minutes = append(minutes, *x)
			} else {
				upper = append(upper, *x)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// b: first two minutes, then the hour and day, then the rest
	merge(t, b, minutes[:2]...)
	merge(t, b, upper...)
	got := readAllBuckets(t, b)
	hk := rkey{"db", "us-1", StepHour, hour.UnixMilli()}
	if got[hk] == nil || got[hk].count != 6 {
		t.Fatalf("hour %+v", got[hk])
	}
	merge(t, b, minutes[2:]...)
	sameSeries(t, a, b)
}

// What a peer can make the store keep is bounded: invalid figures, an
// unaligned start, names too long, buckets past retention or in the
// future are refused.
func TestMergeRefusesInvalid(t *testing.T) {
	s := openTest(t, "", Options{})
	ok := bucketOfResults("api", "n1", "eu", StepMinute, t0.Add(-time.Minute), res(true, 10), res(false, 20))
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'x'
	}
	mod := func(f func(b *Bucket)) Bucket {
		b := ok
		f(&b)
		return b
	}
	bad := []Bucket{
		mod(func(b *Bucket) {
			b.Count = 0
			b.Failures = 0
			b.LatCount = 0
			b.Hist = Hist{}
			b.LatMinUS, b.LatMaxUS, b.LatSumUS = 0, 0, 0
		}),
		mod(func(b *Bucket) { b.Failures = 3 }),
		mod(func(b *Bucket) { b.Count = maxCount[StepMinute] + 1 }),
		mod(func(b *Bucket) { b.LatCount = 1 }),
		mod(func(b *Bucket) { b.Hist[0]++ }),
		mod(func(b *Bucket) { b.LatSumUS = 1 }),
		mod(func(b *Bucket) { b.LatMaxUS = MaxLatencyUS + 1 }),
		mod(func(b *Bucket) { b.LatMinUS = -1 }),
		mod(func(b *Bucket) { b.Start = b.Start.Add(time.Second) }),
		mod(func(b *Bucket) { b.Step = 7 }),
		mod(func(b *Bucket) { b.Check = string(long) }),
		mod(func(b *Bucket) { b.Node = "" }),
		mod(func(b *Bucket) { b.Region = "a\x00b" }),
		mod(func(b *Bucket) { b.Start = t0.Add(-40 * 24 * time.Hour).Truncate(time.Minute) }), // past retention (30 d)
		mod(func(b *Bucket) { b.Start = t0.Add(time.Hour) }),                                  // in the future
	}
	for i, b := range bad[:13] {
		if b.Validate() == nil {
			t.Errorf("bucket %d validated: %+v", i, b)
		}
	}
	merge(t, s, bad...)
	if st := s.Stats(); st.MergeRefused != uint64(len(bad)) || st.SeriesBuckets != 0 {
		t.Fatalf("refused %d of %d, holding %d", st.MergeRefused, len(bad), st.SeriesBuckets)
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	merge(t, s, ok)
	if st := s.Stats(); st.SeriesBuckets != 3 {
		t.Fatalf("holding %d buckets, want minute, hour and day", st.SeriesBuckets)
	}
}

// Anti-entropy on the store's API: the blocks, units and buckets one store
// offers bring another to the same state.
func TestDigestsConverge(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	a := openTest(t, "", Options{})
	b := openTest(t, "", Options{})
	for _, v := range versions(rng, 4, 3, 90, 2) {
		merge(t, a, v[len(v)-1])
		if rng.IntN(3) == 0 {
			merge(t, b, v[0]) // b holds older versions of some
		}
	}
	ctx := ctxT(t)
	mine := map[bkey]BlockDigest{}
	for _, d := range b.Blocks() {
		mine[bkey{d.Node, d.Step, d.Start}] = d
	}
	var want []Bucket
	for _, d := range a.Blocks() {
		if m := mine[bkey{d.Node, d.Step, d.Start}]; m.Hash == d.Hash {
			continue
		}
		ua, err := a.Units(ctx, d.Node, d.Step, d.Start, d.Start+blockMS[d.Step])
		if err != nil {
			t.Fatal(err)
		}
		ub, err := b.Units(ctx, d.Node, d.Step, d.Start, d.Start+blockMS[d.Step])
		if err != nil {
			t.Fatal(err)
		}
		theirs := map[int64]uint64{}
		for _, u := range ub {
			theirs[u.Start] = u.Hash
		}
		for _, u := range ua {
			if theirs[u.Start] == u.Hash {
				continue
			}
			if err := a.ReadBuckets(ctx, d.Node, d.Step, u.Start, u.Start+1, func(x *Bucket) error { want = append(want, *x); return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	merge(t, b, want...)
	sameSeries(t, a, b)
}

// The rollups of schema 2 become the node's buckets, with hour buckets
// derived and digests filled.
func TestMigrateRollupsToSeries(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "v2.db")
	db, err := sql.Open("sqlite", sqliteDSN(path, "_pragma=journal_mode(WAL)", "_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := migrate(ctx, db, migrations[:2]); err != nil {
		t.Fatal(err)
	}
	var mins, day agg
	for i := 0; i < 3; i++ {
		var a agg
		r := res(i != 1, 10*(i+1))
		a.add(&r)
		mins.merge(&a)
		if _, err := db.Exec(`INSERT INTO minute_rollups VALUES ('api', ?, 'eu', ?, ?, ?, ?, ?, ?, ?)`,
			t0.Add(time.Duration(i)*time.Minute).UnixMilli(), a.count, a.failures, a.latN, a.latMin, a.latMax, a.latSum, a.h.encode(nil)); err != nil {
			t.Fatal(err)
		}
	}
	day = mins
	if _, err := db.Exec(`INSERT INTO daily_rollups VALUES ('api', ?, 'eu', ?, ?, ?, ?, ?, ?, ?)`,
		floorTo(t0.UnixMilli(), dayMS), day.count, day.failures, day.latN, day.latMin, day.latMax, day.latSum, day.h.encode(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO results(check_name, node, region, ts, ok, latency_ms) VALUES ('api', 'eu-1', 'eu', ?, 1, 10)`, t0.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openTest(t, path, Options{})
	if tableExists(t, s.rdb, "minute_rollups") || tableExists(t, s.rdb, "daily_rollups") {
		t.Fatal("old tables kept")
	}
	got := readAllBuckets(t, s)
	if len(got) != 5 {
		t.Fatalf("%d buckets: %+v", len(got), got)
	}
	if h := got[rkey{"api", "eu-1", StepHour, t0.UnixMilli()}]; h == nil || h.agg != mins {
		t.Fatalf("hour %+v, want %+v", h, mins)
	}
	checkUnits(t, s)
	days, err := s.DailyUptime(ctx, "api", 1, t0)
	if err != nil || days[0].Count != 3 || days[0].Failures != 1 {
		t.Fatalf("%+v %v", days, err)
	}
}

// The window total uses hour buckets for whole hours and equals the sum
// of the minute buckets.
func TestTotalMatchesMinutes(t *testing.T) {
	s := openTest(t, "", Options{BatchSize: 1000})
	rng := rand.New(rand.NewPCG(3, 9))
	var rs []Result
	for i := 0; i < 3000; i++ {
		n := rng.IntN(3)
		rs = append(rs, Result{Check: "api", Node: fmt.Sprintf("n%d", n), Region: fmt.Sprintf("r%d", n),
			Time: t0.Add(-time.Duration(rng.Int64N(int64(30 * time.Hour)))), OK: rng.IntN(7) != 0})
	}
	s.AddBatch(rs)
	mustFlush(t, s)
	ctx := ctxT(t)
	for _, w := range [][2]time.Time{{t0.Add(-24 * time.Hour), t0}, {t0.Add(-24*time.Hour + 17*time.Minute), t0.Add(-3 * time.Minute)},
		{t0.Add(-50 * time.Minute), t0.Add(-10 * time.Minute)}} {
		n, f, err := s.Total(ctx, "api", w[0], w[1])
		if err != nil {
			t.Fatal(err)
		}
		ms, err := s.MinuteStats(ctx, "api", "", w[0], w[1])
		if err != nil {
			t.Fatal(err)
		}
		var wn, wf int64
		for _, m := range ms {
			wn += m.Count
			wf += m.Failures
		}
		if n != wn || f != wf || n == 0 {
			t.Fatalf("window %v: total %d/%d, minutes %d/%d", w, n, f, wn, wf)
		}
	}
}

func TestTakeLive(t *testing.T) {
	clk := newClock(t0.Add(30 * time.Second))
	s := openTest(t, "", Options{Now: clk.Now})
	s.TrackLive(true)
	s.AddBatch([]Result{
		{Check: "a", Node: "n", Region: "r", Time: t0.Add(-time.Minute), OK: true, Latency: time.Millisecond},
		{Check: "b", Node: "n", Region: "r", Time: t0.Add(10 * time.Second), OK: true, Latency: time.Millisecond},
		{Check: "c", Node: "n", Region: "r", Time: t0.Add(10 * time.Second), OK: false, Latency: time.Millisecond},
	})
	mustFlush(t, s)
	got := s.TakeLive(clk.Now(), 15*time.Second)
	// a's minute ended 30 s ago; c fails in the running minute; b waits
	if len(got) != 2 || got[0].Check != "a" || got[1].Check != "c" {
		t.Fatalf("live %+v", got)
	}
	if again := s.TakeLive(clk.Now(), 15*time.Second); len(again) != 0 {
		t.Fatalf("taken twice: %+v", again)
	}
	clk.Advance(time.Minute)
	if got := s.TakeLive(clk.Now(), 15*time.Second); len(got) != 1 || got[0].Check != "b" || got[0].Count != 1 {
		t.Fatalf("live %+v", got)
	}
	// received buckets are not shared again
	merge(t, s, bucketOfResults("a", "peer", "r", StepMinute, t0.Add(-5*time.Minute), res(true, 3)))
	if got := s.TakeLive(clk.Now().Add(time.Hour), 0); len(got) != 0 {
		t.Fatalf("received bucket taken: %+v", got)
	}
}
