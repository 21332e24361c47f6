package mesh

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// seriesNet is an in-memory cluster of Series: what one broadcasts, every
// other one merges (in order) when the test pumps.
type seriesNet struct {
	mu    sync.Mutex
	nodes map[string]*seriesNode
	queue []netMsg
	bytes int
}

type netMsg struct {
	from, name string
	b          []byte
}

type seriesNode struct {
	name string
	s    *Series
	st   *store.Store
	net  *seriesNet
}

func (n *seriesNode) Broadcast(name string, b []byte) error {
	if len(b) > 32<<10 {
		return fmt.Errorf("message of %d bytes", len(b))
	}
	n.net.mu.Lock()
	defer n.net.mu.Unlock()
	n.net.queue = append(n.net.queue, netMsg{n.name, name, slices.Clone(b)})
	n.net.bytes += len(b)
	return nil
}

func newSeriesNet() *seriesNet { return &seriesNet{nodes: map[string]*seriesNode{}} }

// clock is a test clock shared by a net's nodes.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func (n *seriesNet) add(t *testing.T, name, region string, clk *clock, checks ...string) *seriesNode {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), name+".db"), store.Options{Logger: quiet, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	run := map[string]bool{}
	for _, c := range checks {
		run[c] = true
	}
	sn := &seriesNode{name: name, st: st, net: n}
	sn.s = NewSeries(SeriesOptions{Self: name, Region: region, Store: st, Now: clk.Now, Logger: quiet,
		Check: func(c string) bool { return run[c] }, AnswerRate: 1 << 30})
	sn.s.setBroadcaster(sn)
	st.TrackLive(true)
	n.nodes[name] = sn
	return sn
}

// pump delivers queued broadcasts to every other node until none is left.
func (n *seriesNet) pump(t *testing.T) {
	t.Helper()
	for {
		n.mu.Lock()
		q := n.queue
		n.queue = nil
		n.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, m := range q {
			for name, node := range n.nodes {
				if name != m.from {
					_ = node.s.Merge(m.from, m.b)
				}
			}
		}
		n.flush(t)
	}
}

func (n *seriesNet) flush(t *testing.T) {
	t.Helper()
	for _, node := range n.nodes {
		if err := node.st.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// pushPull has a and b exchange digests, as memberlist's push-pull does,
// and lets each compare and answer.
func (n *seriesNet) pushPull(t *testing.T, a, b *seriesNode) {
	t.Helper()
	ctx := context.Background()
	da, err := a.s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		to   *seriesNode
		from string
		d    []byte
	}{{b, a.name, da}, {a, b.name, db}} {
		if len(x.d) == 0 {
			continue
		}
		if err := x.to.s.Merge(x.from, x.d); err != nil {
			t.Fatal(err)
		}
		x.to.s.drainDigests(ctx, t)
	}
	// wants go out, answers come back
	for range 3 {
		n.pump(t)
		for _, node := range n.nodes {
			node.s.drainWants(ctx, t)
		}
	}
	n.pump(t)
}

func (s *Series) drainDigests(ctx context.Context, t *testing.T) {
	for {
		select {
		case d := <-s.digests:
			if err := s.compare(ctx, d); err != nil {
				t.Fatal(err)
			}
		default:
			return
		}
	}
}

func (s *Series) drainWants(ctx context.Context, t *testing.T) {
	for {
		s.wantMu.Lock()
		if len(s.wantQ) == 0 {
			s.wantMu.Unlock()
			return
		}
		m := s.wantQ[0]
		s.wantQ = s.wantQ[1:]
		s.wantMu.Unlock()
		if err := s.answer(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

// seriesOf reads a node's every series bucket of check (all steps) that
// ended by end, as the API would answer.
func seriesOf(t *testing.T, st *store.Store, check string, end time.Time) map[string][]store.SeriesPoint {
	t.Helper()
	out := map[string][]store.SeriesPoint{}
	for _, step := range []store.Step{store.StepMinute, store.StepHour, store.StepDay} {
		m, err := st.Series(context.Background(), check, step, end.Add(-400*24*time.Hour), end)
		if err != nil {
			t.Fatal(err)
		}
		for reg, ps := range m {
			for _, p := range ps {
				if !p.Start.Add(step.Duration()).After(end) {
					out[reg+"/"+step.String()] = append(out[reg+"/"+step.String()], p)
				}
			}
		}
	}
	return out
}

func sameSeriesOf(t *testing.T, a, b *seriesNode, end time.Time, checks ...string) {
	t.Helper()
	for _, c := range checks {
		sa, sb := seriesOf(t, a.st, c, end), seriesOf(t, b.st, c, end)
		if len(sa) == 0 {
			t.Fatalf("%s holds no buckets of %s", a.name, c)
		}
		if fmt.Sprint(sa) != fmt.Sprint(sb) {
			t.Fatalf("%s and %s differ on %s:\n%v\n%v", a.name, b.name, c, sa, sb)
		}
	}
}

func addResults(st *store.Store, node, region string, from time.Time, n int, every time.Duration, rng *rand.Rand, checks ...string) {
	var rs []store.Result
	for i := 0; i < n; i++ {
		for _, c := range checks {
			rs = append(rs, store.Result{Check: c, Node: node, Region: region, Time: from.Add(time.Duration(i) * every),
				OK: rng.IntN(10) != 0, Latency: time.Duration(1+rng.IntN(500_000)) * time.Microsecond})
		}
	}
	st.AddBatch(rs)
}

// Own buckets are shared once their minute ended (a failing one at
// once); a late result sends its bucket again, which replaces the old.
func TestSeriesLiveSharing(t *testing.T) {
	clk := &clock{t: t0}
	net := newSeriesNet()
	a := net.add(t, "eu-1", "eu", clk, "api")
	b := net.add(t, "us-1", "us", clk, "api")
	a.st.AddBatch([]store.Result{
		{Check: "api", Node: "eu-1", Region: "eu", Time: t0.Add(-50 * time.Second), OK: true, Latency: time.Millisecond},
		{Check: "api", Node: "eu-1", Region: "eu", Time: t0.Add(-10 * time.Second), OK: true, Latency: 2 * time.Millisecond},
	})
	net.flush(t)
	a.s.shareLive()
	net.pump(t)
	if got := seriesOf(t, b.st, "api", t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("shared before the minute settled: %v", got)
	}
	clk.Advance(20 * time.Second)
	a.s.shareLive()
	net.pump(t)
	if got := seriesOf(t, b.st, "api", t0); len(got["eu/1m"]) != 1 || got["eu/1m"][0].Agg.Count != 2 {
		t.Fatalf("after the minute: %v", got)
	}
	// a late result of the same minute: sent again, replaces
	a.st.Add(store.Result{Check: "api", Node: "eu-1", Region: "eu", Time: t0.Add(-time.Second), OK: false, Latency: 3 * time.Millisecond})
	net.flush(t)
	a.s.shareLive()
	net.pump(t)
	if got := seriesOf(t, b.st, "api", t0); got["eu/1m"][0].Agg.Count != 3 || got["eu/1m"][0].Agg.Failures != 1 {
		t.Fatalf("after a late result: %v", got)
	}
	// a running outage: the failing bucket of the running minute goes at once
	a.st.Add(store.Result{Check: "api", Node: "eu-1", Region: "eu", Time: clk.Now(), OK: false, Latency: time.Millisecond})
	net.flush(t)
	a.s.shareLive()
	net.pump(t)
	if got := seriesOf(t, b.st, "api", t0.Add(time.Hour)); len(got["eu/1m"]) != 2 {
		t.Fatalf("running outage not shared: %v", got)
	}
	sameSeriesOf(t, a, b, t0, "api")
}

// A node that was away (or lost its data) gets from its peers every
// bucket that ended before the digests' cutoff, all steps, with the same
// figures, through digests, wants and answers.
func TestSeriesBackfill(t *testing.T) {
	clk := &clock{t: t0}
	rng := rand.New(rand.NewPCG(1, 2))
	net := newSeriesNet()
	a := net.add(t, "eu-1", "eu", clk, "api", "db")
	b := net.add(t, "us-1", "us", clk, "api", "db")
	// a and b probed for 3 days and shared everything
	start := t0.Add(-72 * time.Hour)
	addResults(a.st, "eu-1", "eu", start, 3*24*12, 5*time.Minute, rng, "api", "db")
	addResults(b.st, "us-1", "us", start.Add(17*time.Second), 3*24*12, 5*time.Minute, rng, "api", "db")
	// and c's past, before it lost its disk, as its peers hold it
	c0 := net.add(t, "ap-1", "ap", clk, "api", "db")
	addResults(c0.st, "ap-1", "ap", start.Add(31*time.Second+4*time.Minute), 3*24*12, 5*time.Minute, rng, "api", "db")
	net.flush(t)
	clk.Advance(time.Minute) // the last minute settles
	for _, n := range net.nodes {
		n.s.shareLive()
	}
	net.pump(t)
	sameSeriesOf(t, a, b, t0.Add(-2*time.Minute), "api", "db")
	sameSeriesOf(t, a, c0, t0.Add(-2*time.Minute), "api", "db")

	// c comes back with nothing
	delete(net.nodes, "ap-1")
	c := net.add(t, "ap-1", "ap", clk, "api", "db")
	clk.Advance(5 * time.Minute)
	before := net.bytes
	net.pushPull(t, c, a)
	end := clk.Now().Add(-2 * time.Minute)
	sameSeriesOf(t, a, c, end, "api", "db")
	t.Logf("backfill of %d buckets: %d bytes", a.s.Stats().AnswerBuckets, net.bytes-before)
	// digests now agree: nothing more is asked
	ws := c.s.Stats().WantsSent
	clk.Advance(time.Minute)
	net.pushPull(t, c, a)
	net.pushPull(t, c, b)
	if c.s.Stats().WantsSent != ws {
		t.Fatalf("asked again after converging: %d wants, was %d", c.s.Stats().WantsSent, ws)
	}
	// a gap: b misses a's live message of one minute; the next digests
	// repair it
	addResults(a.st, "eu-1", "eu", clk.Now().Add(-30*time.Second), 1, time.Minute, rng, "api")
	net.flush(t)
	clk.Advance(time.Minute)
	a.s.shareLive()
	net.mu.Lock()
	net.queue = nil // lost
	net.mu.Unlock()
	clk.Advance(2 * time.Minute)
	net.pushPull(t, a, b)
	sameSeriesOf(t, a, b, clk.Now().Add(-2*time.Minute), "api", "db")
}

// Answers are bounded pages, and a want whose answer was lost is sent
// again after WantRetry, backing off while nothing changes.
func TestSeriesWantRetry(t *testing.T) {
	clk := &clock{t: t0}
	rng := rand.New(rand.NewPCG(3, 4))
	net := newSeriesNet()
	a := net.add(t, "eu-1", "eu", clk, "api")
	b := net.add(t, "us-1", "us", clk, "api")
	addResults(a.st, "eu-1", "eu", t0.Add(-time.Hour), 60, time.Minute, rng, "api")
	net.flush(t)
	da, _ := a.s.MarshalBinary()
	ctx := context.Background()
	if err := b.s.Merge("eu-1", da); err != nil {
		t.Fatal(err)
	}
	b.s.drainDigests(ctx, t)
	if b.s.Stats().WantsSent == 0 {
		t.Fatal("no want sent")
	}
	net.mu.Lock()
	net.queue = nil // the want is lost
	net.mu.Unlock()
	sent := b.s.Stats().WantsSent
	_ = b.s.Merge("eu-1", da)
	b.s.drainDigests(ctx, t)
	if b.s.Stats().WantsSent != sent {
		t.Fatal("want sent again before WantRetry")
	}
	clk.Advance(31 * time.Second)
	da, _ = a.s.MarshalBinary()
	_ = b.s.Merge("eu-1", da)
	b.s.drainDigests(ctx, t)
	if b.s.Stats().WantsSent == sent {
		t.Fatal("want not sent again after WantRetry")
	}
	for range 3 {
		net.pump(t)
		a.s.drainWants(ctx, t)
	}
	net.pump(t)
	sameSeriesOf(t, a, b, clk.Now().Add(-2*time.Minute), "api")
}

// What peers send is refused unless valid: checks this node does not
// run, buckets past retention or in the future, other nodes' answers, too
// many origins.
func TestSeriesRefuses(t *testing.T) {
	clk := &clock{t: t0}
	net := newSeriesNet()
	b := net.add(t, "us-1", "us", clk, "api")
	ok := store.Bucket{Check: "api", Node: "eu-1", Region: "eu", Step: store.StepMinute, Start: t0.Add(-3 * time.Minute),
		Agg: aggOf(1, 3, 4)}
	send := func(h rowsMsg, bs ...store.Bucket) error {
		err := b.s.Merge("eu-1", encodeRows(h, bs))
		net.flush(t)
		return err
	}
	h := rowsMsg{Origin: "eu-1", Region: "eu", Step: store.StepMinute}
	web := ok
	web.Check = "web"
	future := ok
	future.Start = t0.Add(10 * time.Minute)
	old := ok
	old.Start = t0.Add(-60 * 24 * time.Hour)
	bad := ok
	bad.Failures = 3
	if err := send(h, web, future, old, bad); err == nil {
		t.Fatal("no error for a message of invalid buckets")
	}
	if err := send(rowsMsg{To: "ap-1", Origin: "eu-1", Region: "eu"}, ok); err != nil {
		t.Fatal(err)
	}
	if st := b.st.Stats(); st.SeriesBuckets != 0 {
		t.Fatalf("stored %d buckets", st.SeriesBuckets)
	}
	if err := send(h, ok); err != nil {
		t.Fatal(err)
	}
	if st := b.st.Stats(); st.SeriesBuckets != 3 {
		t.Fatalf("stored %d buckets, want minute, hour and day", st.SeriesBuckets)
	}
	// origins are bounded
	for i := 0; i < MaxOrigins+5; i++ {
		x := ok
		x.Node = fmt.Sprintf("n%d", i)
		_ = send(rowsMsg{Origin: x.Node, Region: "eu"}, x)
	}
	if n := len(b.st.Origins()); n > MaxOrigins {
		t.Fatalf("%d origins kept", n)
	}
}

// The rows encoding round-trips.
func TestRowsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "x.db"), store.Options{Logger: quiet, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	addResults(st, "eu-1", "eu", t0.Add(-3*time.Hour), 180, time.Minute, rng, "api", "db")
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, step := range []store.Step{store.StepMinute, store.StepHour, store.StepDay} {
		var bs []store.Bucket
		_ = st.ReadBuckets(context.Background(), "eu-1", step, 0, 1<<50, func(b *store.Bucket) error { bs = append(bs, *b); return nil })
		h := rowsMsg{To: "x", Origin: "eu-1", Region: "eu", Step: step}
		msg := encodeRows(h, bs)
		r := reader{b: msg}
		r.version(seriesFormat)
		if k := r.byte(); k != kindRows {
			t.Fatalf("kind %d", k)
		}
		gh, got := decodeRows(&r)
		if err := r.end(); err != nil {
			t.Fatal(err)
		}
		if gh != h || len(got) != len(bs) {
			t.Fatalf("header %+v, %d rows of %d", gh, len(got), len(bs))
		}
		for i := range bs {
			if fmt.Sprint(got[i]) != fmt.Sprint(bs[i]) {
				t.Fatalf("row %d:\n%+v\n%+v", i, got[i], bs[i])
			}
		}
		t.Logf("%s: %d buckets in %d bytes (%.1f per bucket)", step, len(bs), len(msg), float64(len(msg))/float64(len(bs)))
		// padded, as answers are: the same
		r = reader{b: padded(msg, 2000)}
		r.version(seriesFormat)
		r.byte()
		if _, got := decodeRows(&r); r.end() != nil || len(got) != len(bs) || len(r.b) != 0 {
			t.Fatalf("padded: %d rows, %v", len(got), r.err)
		}
		if len(padded(msg, 2000)) < 2000 && len(msg) < 2000 {
			t.Fatal("not padded")
		}
	}
}

// The series decoders take whatever a peer sends: they must never panic,
// and whatever reaches the store must be valid.
func FuzzSeriesMerge(f *testing.F) {
	clk := &clock{t: t0}
	st, err := store.Open(filepath.Join(f.TempDir(), "f.db"), store.Options{Logger: quiet, Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	s := NewSeries(SeriesOptions{Self: "us-1", Region: "us", Store: st, Now: clk.Now, Logger: quiet,
		Check: func(c string) bool { return c == "api" || c == "db" }})
	s.setBroadcaster(nopBroadcaster{})
	ok := store.Bucket{Check: "api", Node: "eu-1", Region: "eu", Step: store.StepMinute, Start: t0.Add(-3 * time.Minute), Agg: aggOf(1, 2, 9, 40)}
	ok2 := ok
	ok2.Check, ok2.Start = "db", ok.Start.Add(time.Minute)
	f.Add(encodeRows(rowsMsg{Origin: "eu-1", Region: "eu", Step: store.StepMinute}, []store.Bucket{ok, ok2}))
	f.Add(encodeRows(rowsMsg{To: "us-1", Origin: "eu-1", Region: "eu", Step: store.StepHour}, []store.Bucket{ok}))
	f.Add(encodeDigest(digestMsg{Sender: "eu-1", Cutoff: t0.UnixMilli(), Blocks: []store.BlockDigest{{Node: "eu-1", Step: store.StepMinute, Start: t0.Truncate(24 * time.Hour).UnixMilli(), Hash: 7, Rows: 3}}}))
	f.Add(encodeWant(wantMsg{To: "us-1", Origin: "eu-1", Step: store.StepMinute, Start: t0.Truncate(24 * time.Hour).UnixMilli(), Cutoff: t0.UnixMilli(),
		Units: []store.UnitDigest{{Start: t0.Add(-time.Hour).UnixMilli(), Hash: 5}}}))
	f.Add([]byte{seriesFormat, kindRows, 0, 0, 0, 0, 200})
	f.Add(padded(encodeRows(rowsMsg{To: "us-1", Origin: "eu-1", Region: "eu", Step: store.StepMinute}, []store.Bucket{ok}), 1200))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = s.Merge("eu-1", b)
		// digests and wants queued are bounded
		if len(s.digests) > maxQueuedDigests {
			t.Fatal("digest queue unbounded")
		}
		s.wantMu.Lock()
		n := len(s.wantQ)
		s.wantQ = nil
		s.wantMu.Unlock()
		if n > maxQueuedWants {
			t.Fatal("want queue unbounded")
		}
		for len(s.digests) > 0 {
			<-s.digests
		}
		if err := st.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if r := st.Stats().MergeRefused; r != 0 {
			t.Fatalf("the table passed %d buckets the store refused", r)
		}
		for _, node := range st.Origins() {
			for _, step := range []store.Step{store.StepMinute, store.StepHour, store.StepDay} {
				err := st.ReadBuckets(context.Background(), node, step, 0, 1<<50, func(x *store.Bucket) error {
					if err := x.Validate(); err != nil {
						return fmt.Errorf("stored an invalid bucket %+v: %w", x, err)
					}
					if x.Check != "api" && x.Check != "db" {
						return fmt.Errorf("stored a bucket of check %q", x.Check)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// aggOf builds consistent figures: results with these latencies (ms),
// the first failures of them failing.
func aggOf(failures int, ms ...int) store.Agg {
	var a store.Agg
	for i, m := range ms {
		a.Add(i >= failures, time.Duration(m)*time.Millisecond)
	}
	return a
}

// A node that finds the same block at two peers asks one of them.
func TestSeriesOnePeerAnswers(t *testing.T) {
	clk := &clock{t: t0}
	rng := rand.New(rand.NewPCG(9, 9))
	net := newSeriesNet()
	a := net.add(t, "eu-1", "eu", clk, "api")
	b := net.add(t, "us-1", "us", clk, "api")
	addResults(a.st, "eu-1", "eu", t0.Add(-2*time.Hour), 120, time.Minute, rng, "api")
	net.flush(t)
	clk.Advance(time.Minute)
	a.s.shareLive()
	net.pump(t)
	c := net.add(t, "ap-1", "ap", clk, "api")
	ctx := context.Background()
	da, _ := a.s.MarshalBinary()
	db, _ := b.s.MarshalBinary()
	if !slices.Equal(da[len(da)-40:], db[len(db)-40:]) {
		t.Fatal("test premise: a and b hold the same")
	}
	_ = c.s.Merge("eu-1", da)
	_ = c.s.Merge("us-1", db)
	c.s.drainDigests(ctx, t)
	wants := c.s.Stats().WantsSent
	for range 3 {
		net.pump(t)
		a.s.drainWants(ctx, t)
		b.s.drainWants(ctx, t)
	}
	if a.s.Stats().WantsAnswered == 0 || b.s.Stats().WantsAnswered != 0 || wants != a.s.Stats().WantsAnswered {
		t.Fatalf("%d wants; a answered %d, b %d", wants, a.s.Stats().WantsAnswered, b.s.Stats().WantsAnswered)
	}
	sameSeriesOf(t, a, c, clk.Now().Add(-2*time.Minute), "api")
}
