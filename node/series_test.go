package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
)

const seriesToken = "series-test-token-0123456789"

func seriesConfig(target string) string {
	return fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  gossip: local
defaults:
  interval: 2s
  timeout: 1s
checks:
  - name: api
    type: http
    url: %[1]s/api
  - name: db
    type: http
    url: %[1]s/db
statuspage:
  api_token: %[2]s
`, target, seriesToken)
}

// seriesNode is a node with its data directory and HTTP interface.
type seriesNode struct {
	n    *Node
	dir  string
	http *httptest.Server
}

// startSeriesNode starts a node of config path with its data in dir,
// joining seed unless it is empty.
func startSeriesNode(t *testing.T, path string, key []byte, name, region, seed, dir string) *seriesNode {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if os.Getenv("VANTAGE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", name)
	g := &cluster.Config{Name: name, Region: region, Bind: "127.0.0.1:0", Profile: "local", Key: key, Logger: log}
	if seed != "" {
		g.Join = []string{seed}
	}
	n, err := New(context.Background(), Options{Config: cfg, Name: name, Region: region, DBPath: filepath.Join(dir, "v.db"),
		OutboxPath: filepath.Join(dir, "outbox.db"), Logger: log, Gossip: g, Prober: checker.New(checker.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	sn := &seriesNode{n: n, dir: dir, http: httptest.NewServer(n.Handler())}
	t.Cleanup(func() { sn.stop() })
	return sn
}

func (sn *seriesNode) stop() {
	sn.http.Close()
	sn.n.Close()
}

// seedHistory gives a node three hours of its own past results of both
// checks, up to a few seconds ago, as if it had run then: the minutes of
// the last two cross the two-minute mark while the test runs.
func seedHistory(t *testing.T, sn *seriesNode, region string, seed uint64) {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(seed, 1))
	var rs []store.Result
	now := time.Now()
	start := now.Add(-3 * time.Hour).Truncate(time.Minute)
	for i := range 3*60 + 1 {
		for _, c := range []string{"api", "db"} {
			at := start.Add(time.Duration(i)*time.Minute + time.Duration(rng.IntN(50_000))*time.Millisecond)
			if at.After(now) {
				at = now
			}
			rs = append(rs, store.Result{Check: c, Node: sn.n.Name(), Region: region, Time: at,
				OK: rng.IntN(20) != 0, Latency: time.Duration(1+rng.IntN(800)) * time.Millisecond})
		}
	}
	sn.n.Store().AddBatch(rs)
	if err := sn.n.Store().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// older keeps the buckets of a series answer that ended by cutoff.
func older(s statuspage.SeriesJSON, step time.Duration, cutoff time.Time) map[string][]statuspage.SeriesPointJSON {
	out := map[string][]statuspage.SeriesPointJSON{}
	for reg, ps := range s.Regions {
		for _, p := range ps {
			if !p.T.Add(step).After(cutoff) {
				out[reg] = append(out[reg], p)
			}
		}
	}
	return out
}

// firstDiff describes where two answers differ first.
func firstDiff(a, b map[string][]statuspage.SeriesPointJSON) string {
	for reg, pa := range a {
		pb := b[reg]
		for i := range max(len(pa), len(pb)) {
			switch {
			case i >= len(pa):
				return fmt.Sprintf("%s: %+v only in the second", reg, pb[i])
			case i >= len(pb):
				return fmt.Sprintf("%s: %+v only in the first", reg, pa[i])
			case pa[i] != pb[i]:
				return fmt.Sprintf("%s: %+v and %+v", reg, pa[i], pb[i])
			}
		}
	}
	for reg := range b {
		if _, ok := a[reg]; !ok {
			return reg + " only in the second"
		}
	}
	return "?"
}

// seriesViews fetches every node's /series of every check and step and
// keeps the buckets that ended by cutoff.
func seriesViews(t *testing.T, nodes []*seriesNode, cutoff time.Time) ([]map[string]any, error) {
	t.Helper()
	steps := []struct {
		name string
		d    time.Duration
		span time.Duration
	}{{"1m", time.Minute, 48 * time.Hour}, {"1h", time.Hour, 90 * 24 * time.Hour}, {"1d", 24 * time.Hour, 700 * 24 * time.Hour}}
	views := make([]map[string]any, len(nodes))
	to := cutoff.UTC().Format(time.RFC3339)
	for i, sn := range nodes {
		views[i] = map[string]any{}
		for _, c := range []string{"api", "db"} {
			for _, st := range steps {
				from := cutoff.Add(-st.span + time.Second).UTC().Format(time.RFC3339)
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/checks/%s/series?step=%s&from=%s&to=%s", sn.http.URL, c, st.name, from, to), nil)
				req.Header.Set("Authorization", "Bearer "+seriesToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return nil, err
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return nil, fmt.Errorf("%s: %d %s", req.URL, resp.StatusCode, b)
				}
				var s statuspage.SeriesJSON
				if err := json.Unmarshal(b, &s); err != nil {
					return nil, err
				}
				views[i][c+"/"+st.name] = older(s, st.d, cutoff)
			}
		}
	}
	return views, nil
}

// waitSameSeries waits until every node answers /series with the same
// buckets older than two minutes, and returns the time it took.
func waitSameSeries(t *testing.T, nodes []*seriesNode, within time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	var last string
	for {
		cutoff := time.Now().Add(-2 * time.Minute)
		views, err := seriesViews(t, nodes, cutoff)
		if err == nil {
			same := true
			for i := 1; i < len(views) && same; i++ {
				for k, v := range views[0] {
					if !reflect.DeepEqual(v, views[i][k]) {
						same = false
						last = fmt.Sprintf("%s differs between %s and %s: %s", k, nodes[0].n.Name(), nodes[i].n.Name(),
							firstDiff(v.(map[string][]statuspage.SeriesPointJSON), views[i][k].(map[string][]statuspage.SeriesPointJSON)))
						break
					}
				}
			}
			if same {
				// and not empty: every region's history is there
				for _, k := range []string{"api/1m", "db/1h"} {
					if m := views[0][k].(map[string][]statuspage.SeriesPointJSON); len(m) != 3 {
						same, last = false, fmt.Sprintf("%s holds %d regions", k, len(m))
					}
				}
			}
			if same {
				return time.Since(start)
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not the same series everywhere within %v: %s", what, within, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Three nodes in three regions; one is stopped, its data wiped, and it
// comes back: within two minutes its /series equals its peers' for every
// bucket older than two minutes (its own past included), every step.
func TestSeriesConvergeAfterWipe(t *testing.T) {
	if testing.Short() {
		t.Skip("three nodes for a minute or two")
	}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(target.Close)
	path := writeFile(t, "series.yaml", seriesConfig(target.URL))
	key := make([]byte, 32)
	rand.Read(key)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	a := startSeriesNode(t, path, key, "eu-1", "eu", "", dirs[0])
	b := startSeriesNode(t, path, key, "us-1", "us", a.n.GossipAddr(), dirs[1])
	c := startSeriesNode(t, path, key, "ap-1", "ap", a.n.GossipAddr(), dirs[2])
	nodes := []*seriesNode{a, b, c}
	for i, sn := range nodes {
		seedHistory(t, sn, []string{"eu", "us", "ap"}[i], uint64(i+1))
	}
	took := waitSameSeries(t, nodes, 2*time.Minute, "three nodes")
	t.Logf("three nodes agree %v after seeding", took.Round(time.Millisecond))

	// c goes, its data with it, and comes back empty
	c.stop()
	if err := os.RemoveAll(dirs[2]); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dirs[2], 0o755); err != nil {
		t.Fatal(err)
	}
	c = startSeriesNode(t, path, key, "ap-1", "ap", a.n.GossipAddr(), dirs[2])
	nodes[2] = c
	if st := c.n.Store().Stats(); st.SeriesBuckets > 100 {
		t.Fatalf("the wiped node starts with %d buckets", st.SeriesBuckets)
	}
	took = waitSameSeries(t, nodes, 2*time.Minute, "after the wipe")
	t.Logf("the wiped node holds its peers' series %v after restarting", took.Round(time.Millisecond))
}

// BenchmarkSeriesLateJoiner measures a wiped node's convergence with
// 1,000 checks in 3 regions (VANTAGE_BENCH_CHECKS, VANTAGE_BENCH_HOURS of
// history, default 2 hours): three in-process nodes on the lan profile
// with the production timings hold every node's buckets; one is stopped,
// wiped and started again, and the benchmark measures the time until its
// digest (every block of every origin and step) equals its peers', the
// buckets and bytes answered, and the gossip bytes sent meanwhile.
//
//	go test -run '^$' -bench BenchmarkSeriesLateJoiner -benchtime 1x ./node/
func BenchmarkSeriesLateJoiner(b *testing.B) {
	checks, hours := envInt("VANTAGE_BENCH_CHECKS", 1000), envInt("VANTAGE_BENCH_HOURS", 2)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer target.Close()
	var cfg strings.Builder
	cfg.WriteString("cluster:\n  regions: [eu, us, ap]\n  gossip: lan\ndefaults:\n  interval: 1h\n  timeout: 5s\nchecks:\n")
	for i := range checks {
		fmt.Fprintf(&cfg, "  - name: c%04d\n    type: http\n    url: %s/c/%d\n", i, target.URL, i)
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	start := func(name, region, seed, dir string) *Node {
		c, err := config.Load(path)
		if err != nil {
			b.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		g := &cluster.Config{Name: name, Region: region, Bind: "127.0.0.1:0", Profile: "lan", Key: key, Logger: log}
		if seed != "" {
			g.Join = []string{seed}
		}
		n, err := New(context.Background(), Options{Config: c, Name: name, Region: region, DBPath: filepath.Join(dir, "v.db"),
			OutboxPath: filepath.Join(dir, "outbox.db"), Logger: log, Gossip: g, Prober: checker.New(checker.Options{})})
		if err != nil {
			b.Fatal(err)
		}
		if err := n.Start(); err != nil {
			b.Fatal(err)
		}
		return n
	}
	// every node's history, as all three hold it
	names, regions := []string{"eu-1", "us-1", "ap-1"}, []string{"eu", "us", "ap"}
	end := time.Now().Add(-5 * time.Minute).Truncate(time.Minute)
	rng := mrand.New(mrand.NewPCG(1, 2))
	var history []store.Bucket
	for o := range names {
		for c := range checks {
			for m := range hours * 60 {
				var a store.Agg
				for range 2 {
					a.Add(rng.IntN(200) != 0, time.Duration(20+rng.IntN(200))*time.Millisecond)
				}
				history = append(history, store.Bucket{Check: fmt.Sprintf("c%04d", c), Node: names[o], Region: regions[o],
					Step: store.StepMinute, Start: end.Add(-time.Duration(hours*60-m) * time.Minute), Agg: a})
			}
		}
	}
	dirs := []string{b.TempDir(), b.TempDir(), b.TempDir()}
	nodes := make([]*Node, 3)
	for i := range nodes {
		seed := ""
		if i > 0 {
			seed = nodes[0].GossipAddr()
		}
		nodes[i] = start(names[i], regions[i], seed, dirs[i])
		defer func(i int) { nodes[i].Close() }(i)
		for j := 0; j < len(history); j += 5000 {
			for !nodes[i].Store().MergeBuckets(history[j:min(j+5000, len(history))]) {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if err := nodes[i].Store().Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	held := nodes[0].Store().Stats().SeriesBuckets
	b.Logf("%d checks, %d hours: %d buckets on each node (minutes, hours, days of 3 nodes)", checks, hours, held)

	b.ResetTimer()
	nodes[2].Close()
	if err := os.RemoveAll(dirs[2]); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	nodes[2] = start(names[2], regions[2], nodes[0].GossipAddr(), dirs[2])
	tr0 := [2]cluster.Traffic{nodes[0].cl.Load().Traffic(), nodes[1].cl.Load().Traffic()}
	ctx := context.Background()
	for {
		cut := time.Now().Add(-2 * time.Minute).UnixMilli()
		da, err1 := nodes[0].Store().Digest(ctx, cut)
		dc, err2 := nodes[2].Store().Digest(ctx, cut)
		if err1 == nil && err2 == nil && reflect.DeepEqual(da, dc) {
			break
		}
		if time.Since(t0) > 20*time.Minute {
			b.Fatalf("not converged after 20 minutes: %d of %d buckets", nodes[2].Store().Stats().SeriesBuckets, held)
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(t0)
	b.StopTimer()
	var sent uint64
	for i := range 2 {
		sent += nodes[i].cl.Load().Traffic().Out() - tr0[i].Out()
	}
	st := nodes[2].Store().Stats()
	b.ReportMetric(took.Seconds(), "s-to-converge")
	b.ReportMetric(float64(st.SeriesBuckets)/took.Seconds(), "buckets/s")
	b.ReportMetric(float64(sent)/took.Seconds()/1024, "peers-KiB/s")
	b.Logf("converged in %v: %d buckets (%d merged), peers sent %.1f MB of gossip meanwhile", took.Round(time.Millisecond),
		st.SeriesBuckets, st.MergeChanged, float64(sent)/1e6)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
