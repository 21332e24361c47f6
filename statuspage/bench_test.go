package statuspage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunRefreshes(t *testing.T) {
	src := &fakeSource{ready: true, st: testStatus()}
	s := New(Options{Source: src, Page: testPage(), MinRefreshGap: time.Millisecond, Now: func() time.Time { return testNow }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	ts := httptest.NewServer(s)
	defer ts.Close()
	_, body := fetch(t, ts, "/api/v2/status.json")
	if !strings.Contains(string(body), `"indicator": "major"`) {
		t.Fatalf("status %s", body)
	}
	src.mu.Lock()
	st := testStatus()
	st.Checks[1].State, st.Checks[1].Regions = "up", nil
	src.st = st
	src.mu.Unlock()
	s.Refresh()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body = fetch(t, ts, "/api/v2/status.json")
		if strings.Contains(string(body), `"indicator": "none"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run did not re-render after Refresh: %s", body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// benchServer is a page of 20 checks in 4 groups with three regions and
// a 90-day history, without a database (History nil shows no data; the
// rendered size is the same order).
func benchServer(b testing.TB) *Server {
	st := testStatus()
	p := testPage()
	st.Checks = nil
	p.Checks = nil
	for i := range 20 {
		name := fmt.Sprintf("check-%02d", i)
		st.Checks = append(st.Checks, CheckStatus{Name: name, State: "up", Since: testNow.Add(-time.Hour),
			Regions: map[string]*RegionVote{"eu-west": {Vote: "up", LatencyMS: 40}, "us-east": {Vote: "up", LatencyMS: 90},
				"ap-south": {Vote: "up", LatencyMS: 180}}})
		p.Checks = append(p.Checks, PageCheck{Name: name, DisplayName: "Service " + name, Group: fmt.Sprintf("Group %d", i%4)})
	}
	return New(Options{Source: &fakeSource{ready: true, st: st}, Page: p})
}

func benchPath(b *testing.B, path string, gz bool) {
	s := benchServer(b)
	req := httptest.NewRequest("GET", path, nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	}
	s.ServeHTTP(httptest.NewRecorder(), req) // first render
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			s.ServeHTTP(w, req)
		}
	})
}

type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(c int)           { d.code = c }

func BenchmarkServeIndex(b *testing.B)       { benchPath(b, "/", false) }
func BenchmarkServeIndexGzip(b *testing.B)   { benchPath(b, "/", true) }
func BenchmarkServeSummary(b *testing.B)     { benchPath(b, "/api/v2/summary.json", false) }
func BenchmarkServeSummaryGzip(b *testing.B) { benchPath(b, "/api/v2/summary.json", true) }

func BenchmarkRender(b *testing.B) {
	s := benchServer(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s.RefreshNow(ctx)
	}
}

// TestServeForLoad serves benchServer on $VANTAGE_STATUSPAGE_LOAD_ADDR until
// SIGINT/SIGTERM, for a load generator in another process (see
// docs/statuspage.md). Skipped unless the variable is set.
func TestServeForLoad(t *testing.T) {
	addr := os.Getenv("VANTAGE_STATUSPAGE_LOAD_ADDR")
	if addr == "" {
		t.Skip("VANTAGE_STATUSPAGE_LOAD_ADDR not set")
	}
	s := benchServer(t)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go s.Run(ctx)
	srv := &http.Server{Addr: addr, Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	t.Logf("serving on %s", addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		t.Fatal(err)
	}
}

// gzipUnpooled is how documents were compressed before the writers were
// pooled: a new writer (about 1 MB of state) per document.
func gzipUnpooled(body []byte, level int) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, level)
	_, _ = zw.Write(body)
	_ = zw.Close()
	return b.Bytes()
}

// BenchmarkNewDoc prepares a badge, summary.json and the index page of
// benchServer as documents (digest and gzip form): "unpooled-best" as
// before (a new writer per document, best compression), then pooled
// writers at best, default and fastest compression, and newDoc's choice.
// gz-bytes is the compressed size.
func BenchmarkNewDoc(b *testing.B) {
	s := benchServer(b)
	s.RefreshNow(context.Background())
	sn := s.snap.Load()
	bodies := []struct {
		name string
		body []byte
	}{
		{"badge", badge("check-00 30d", "99.95%", uptimeColour(0.9995))},
		{"summary", sn.docs[keySummary].plain()},
		{"index", sn.docs[keyIndex].plain()},
		{"status-1000", status1000(b)},
	}
	variants := []struct {
		name string
		gz   func([]byte) []byte
	}{
		{"unpooled-best", func(p []byte) []byte { return gzipUnpooled(p, gzip.BestCompression) }},
		{"pooled-best", func(p []byte) []byte { return gzipBytes(p, gzip.BestCompression) }},
		{"pooled-default", func(p []byte) []byte { return gzipBytes(p, 6) }},
		{"pooled-speed", func(p []byte) []byte { return gzipBytes(p, gzip.BestSpeed) }},
		{"chosen", gzipDoc}, // what newDoc does
	}
	for _, bd := range bodies {
		for _, vr := range variants {
			b.Run("doc="+bd.name+"/gzip="+vr.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(bd.body)))
				var d *doc
				for b.Loop() {
					d = newDocWith(bd.body, "text/html", "no-cache", testNow, nil, vr.gz)
				}
				b.ReportMetric(float64(len(d.gz)), "gz-bytes")
			})
		}
	}
}

// status1000 is GET /api/v1/status of 1,000 http checks in three regions,
// as statusDocOf encodes it, with latencies, phases and probe times that
// differ as a node's do (identical checks compress far better).
func status1000(b testing.TB) []byte {
	st, _ := manyChecks(1000)
	for i := range st.Checks {
		c := &st.Checks[i]
		c.Type = "http"
		for k, reg := range []string{"eu-west", "us-east", "ap-south"} {
			j := i*3 + k
			ms := func(m int) float64 { return float64((j*7919+m*104729)%(m*100)) / 10 }
			c.Regions[reg] = &RegionVote{Vote: "up", LatencyMS: ms(5), CheckedAt: testNow.Add(-time.Duration((j*104729)%10000) * time.Millisecond),
				Phases: &Phases{DNSMS: ms(1), ConnectMS: ms(2), FirstByteMS: ms(4)}}
		}
	}
	body, err := json.MarshalIndent(publicStatus(st), "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	return append(body, '\n')
}

func BenchmarkServeStatus(b *testing.B)     { benchPath(b, "/api/v1/status", false) }
func BenchmarkServeStatusGzip(b *testing.B) { benchPath(b, "/api/v1/status", true) }

// BenchmarkRender10k renders a page of 10,000 checks in groups of ten,
// three regions each, with 90 days of history (in memory, read as the node
// does: reused for 30 s): "full" from nothing, as every render was before
// renders became incremental, and "one-changed" after one check changed
// state (a new Status, the other checks as they were).
func BenchmarkRender10k(b *testing.B) {
	st, p := manyChecks(10000)
	src := &fakeSource{ready: true, st: st}
	s := New(Options{Source: src, History: &memHistory{}, Page: p, Now: func() time.Time { return testNow },
		HistoryTTL: 30 * time.Second, HistorySlowTTL: 10 * time.Minute})
	ctx := context.Background()
	s.RefreshNow(ctx)
	b.Run("render=full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.dropRenderCache()
			s.RefreshNow(ctx)
		}
	})
	b.Run("render=one-changed", func(b *testing.B) {
		alt := [2]*Status{withCheck(st, 5000, func(c *CheckStatus) { c.State, c.Since = "down", testNow }), st}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			src.mu.Lock()
			src.st = alt[i%2]
			src.mu.Unlock()
			i++
			s.RefreshNow(ctx)
		}
	})
}

// BenchmarkChunkLevel compresses 128 KB chunks (after their 32 KB window,
// as assemble does) of the index page and summary.json of 2,000 checks at
// the fastest, default and best compression; gz-bytes is the compressed
// size of a chunk.
func BenchmarkChunkLevel(b *testing.B) {
	st, p := manyChecks(2000)
	s := New(Options{Source: &fakeSource{ready: true, st: st}, History: &memHistory{}, Page: p, Now: func() time.Time { return testNow }})
	s.RefreshNow(context.Background())
	sn := s.snap.Load()
	for _, k := range []string{keyIndex, keySummary} {
		body := sn.docs[k].plain()
		dict, chunk := body[256<<10-window:256<<10], []part{{b: body[256<<10 : 384<<10]}}
		for _, level := range []int{1, 6, 9} {
			b.Run(fmt.Sprintf("doc=%s/level=%d", map[string]string{keyIndex: "index", keySummary: "summary"}[k], level), func(b *testing.B) {
				b.SetBytes(128 << 10)
				var gz []byte
				for b.Loop() {
					gz = deflateChunkAt(level, dict, chunk)
				}
				b.ReportMetric(float64(len(gz)), "gz-bytes")
			})
		}
	}
}

// BenchmarkPageHeap renders a page of 1,000 and of 10,000 checks (one
// region each, as bench node's; 90 days of history from memory, reused
// as the node does) four times a minute apart, every check with a new
// result each time, and reports the heap the server keeps after the
// renders (retained-MB, after a collection) and what they allocated.
// Run it with -benchtime=1x: an iteration is a server and its renders.
func BenchmarkPageHeap(b *testing.B) {
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("checks=%d", n), func(b *testing.B) {
			for b.Loop() {
				st, p := manyChecks(n)
				for i := range st.Checks {
					st.Checks[i].Regions = map[string]*RegionVote{"eu-west": st.Checks[i].Regions["eu-west"]}
				}
				src := &fakeSource{ready: true, st: st}
				now := testNow
				before := heap()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				s := New(Options{Source: src, History: &memHistory{}, Page: p, Now: func() time.Time { return now },
					HistoryTTL: 30 * time.Second, HistorySlowTTL: 10 * time.Minute})
				ctx := context.Background()
				for r := range 4 {
					next := *st
					next.GeneratedAt = now.Add(time.Duration(r))
					next.Checks = append([]CheckStatus(nil), st.Checks...)
					for j := range next.Checks {
						v := next.Checks[j].Regions["eu-west"]
						v.CheckedAt = now
						next.Checks[j].Regions = map[string]*RegionVote{"eu-west": v}
					}
					src.mu.Lock()
					src.st = &next
					src.mu.Unlock()
					s.RefreshNow(ctx)
					now = now.Add(time.Minute)
				}
				runtime.ReadMemStats(&m1)
				src.mu.Lock()
				src.st = &Status{} // the Source's own Status is not the page's
				src.mu.Unlock()
				st = nil
				kept := heap() - before
				b.ReportMetric(float64(kept)/1e6, "retained-MB")
				b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/4/float64(n), "B/check/render")
				runtime.KeepAlive(s)
			}
		})
	}
}
