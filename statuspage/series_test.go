package statuspage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// seriesStore holds api's results of two nodes in eu-west (one of them a
// peer's, received as buckets) and one in us-east over the last 3 hours,
// all ok.
func seriesStore(t testing.TB, now *atomic.Pointer[time.Time]) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{Now: func() time.Time { return *now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var rs []store.Result
	for i := range 180 {
		at := testNow.Add(-3 * time.Hour).Add(time.Duration(i) * time.Minute)
		rs = append(rs,
			store.Result{Node: "eu-1", Region: "eu-west", Check: "api", Time: at, OK: true, Latency: 40 * time.Millisecond},
			store.Result{Node: "us-1", Region: "us-east", Check: "api", Time: at.Add(20 * time.Second), OK: true, Latency: 90 * time.Millisecond})
	}
	st.AddBatch(rs)
	// eu-2's buckets, as a peer sends them
	var bs []store.Bucket
	for i := range 180 {
		var a store.Agg
		a.Add(i != 7, 60*time.Millisecond)
		bs = append(bs, store.Bucket{Check: "api", Node: "eu-2", Region: "eu-west", Step: store.StepMinute,
			Start: testNow.Add(-3 * time.Hour).Add(time.Duration(i) * time.Minute), Agg: a})
	}
	if !st.MergeBuckets(bs) {
		t.Fatal("merge queue full")
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func seriesServer(t *testing.T, st *Status) (*Server, *atomic.Pointer[time.Time], *store.Store, *fakeSource, *httptest.Server) {
	t.Helper()
	var now atomic.Pointer[time.Time]
	n := testNow
	now.Store(&n)
	h := seriesStore(t, &now)
	src := &fakeSource{ready: true, st: st}
	// the node's settings
	s := New(Options{Source: src, History: h, Page: testPage(), Now: func() time.Time { return *now.Load() },
		HistoryTTL: 30 * time.Second, HistorySlowTTL: 10 * time.Minute, APIToken: testToken})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, &now, h, src, ts
}

func getSeries(t *testing.T, ts *httptest.Server, path string) SeriesJSON {
	t.Helper()
	resp, body := fetch(t, ts, path)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
	}
	var out SeriesJSON
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, body)
	}
	return out
}

// The series API: every region's buckets, a region's the sum of its
// nodes', the contract's defaults, rounding and limits.
func TestSeriesAPI(t *testing.T) {
	_, _, _, _, ts := seriesServer(t, testStatus())
	out := getSeries(t, ts, "/api/v1/checks/api/series")
	if out.Check != "api" || out.Step != "1m" || len(out.Regions) != 2 {
		t.Fatalf("series %+v", out)
	}
	eu, us := out.Regions["eu-west"], out.Regions["us-east"]
	if len(eu) != 180 || len(us) != 180 {
		t.Fatalf("%d eu-west buckets, %d us-east", len(eu), len(us))
	}
	// eu-west sums eu-1 (40 ms, ok) and eu-2 (60 ms, one failure)
	b := eu[7]
	if !b.T.Equal(testNow.Add(-3*time.Hour).Add(7*time.Minute)) || b.Count != 2 || b.Failures != 1 || b.AvgMS != 50 || b.MaxMS != 60 {
		t.Fatalf("eu-west bucket %+v", b)
	}
	if p := eu[0].P95MS; p < 54 || p > 60 {
		t.Fatalf("p95 of 40 and 60 ms: %v", p)
	}
	if u := us[0]; u.Count != 1 || u.AvgMS != 90 || u.MaxMS != 90 || u.P95MS != 90 {
		t.Fatalf("us-east bucket %+v", u)
	}
	// hours: from is rounded down to the step
	h := getSeries(t, ts, "/api/v1/checks/api/series?step=1h&from=2026-11-22T07:30:00Z&to=2026-11-22T10:00:00Z")
	if len(h.Regions["eu-west"]) != 3 || !h.Regions["eu-west"][0].T.Equal(testNow.Add(-3*time.Hour)) || h.Regions["eu-west"][0].Count != 120 {
		t.Fatalf("hours %+v", h.Regions["eu-west"])
	}
	d := getSeries(t, ts, "/api/v1/checks/api/series?step=1d&from=2026-11-01T12:00:00Z")
	if len(d.Regions["us-east"]) != 1 || d.Regions["us-east"][0].Count != 180 || d.Step != "1d" {
		t.Fatalf("days %+v", d)
	}
	// only buckets with results; a check without any: no regions
	if w := getSeries(t, ts, "/api/v1/checks/web/series"); len(w.Regions) != 0 {
		t.Fatalf("web %+v", w)
	}
	for path, code := range map[string]int{
		"/api/v1/checks/nope/series":                                                          404,
		"/api/v1/checks/api/series?step=5m":                                                   400,
		"/api/v1/checks/api/series?from=yesterday":                                            400,
		"/api/v1/checks/api/series?from=2026-11-20T09:59:00Z&to=2026-11-22T10:00:00Z":         400, // 2 days and a minute of 1m
		"/api/v1/checks/api/series?from=2026-11-20T10:00:00Z&to=2026-11-22T10:00:00Z":         200,
		"/api/v1/checks/api/series?step=1h&from=2026-08-23T00:00:00Z&to=2026-11-22T10:00:00Z": 400,
		"/api/v1/checks/api/series?step=1h&from=2026-08-24T10:00:00Z&to=2026-11-22T10:00:00Z": 200,
		"/api/v1/checks/api/series?step=1d&from=2024-11-01T00:00:00Z&to=2026-11-22T10:00:00Z": 400,
		"/api/v1/checks/api/series?step=1d&from=2024-11-23T00:00:00Z&to=2026-11-22T10:00:00Z": 200,
		"/api/v1/checks/api/series?from=2026-11-22T10:00:00Z&to=2026-11-22T09:00:00Z":         400,
		"/api/v1/checks/api/series.csv?step=1y":                                               400,
	} {
		// as an operator: not rate limited
		if resp, body := fetch(t, ts, path, "Authorization", "Bearer "+testToken); resp.StatusCode != code {
			t.Errorf("%s: %d, want %d (%s)", path, resp.StatusCode, code, body)
		}
	}
}

func TestSeriesCSV(t *testing.T) {
	_, _, _, _, ts := seriesServer(t, testStatus())
	resp, body := fetch(t, ts, "/api/v1/checks/api/series.csv?step=1h&from=2026-11-22T07:00:00Z&to=2026-11-22T10:00:00Z")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "api-1h.csv") {
		t.Fatalf("csv %d %v", resp.StatusCode, resp.Header)
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if lines[0] != "t,check,region,step,count,failures,uptime,avg_ms,p95_ms,max_ms" || len(lines) != 7 {
		t.Fatalf("csv:\n%s", body)
	}
	if lines[1] != "2026-11-22T07:00:00Z,api,eu-west,1h,120,1,0.9916666666666667,50,58.95,60" &&
		!strings.HasPrefix(lines[1], "2026-11-22T07:00:00Z,api,eu-west,1h,120,1,0.99166") {
		t.Fatalf("first line %q", lines[1])
	}
	if !strings.HasPrefix(lines[4], "2026-11-22T07:00:00Z,api,us-east,1h,60,0,1,90,90,90") {
		t.Fatalf("us-east line %q", lines[4])
	}
}

var (
	reUptime24 = regexp.MustCompile(`<dt>24h</dt><dd>([^<]+)</dd>`)
	reDayCells = regexp.MustCompile(`<li class="d ([a-z]+)" tabindex="0" aria-label="([^"]+)"></li>`)
)

// numbers reads what a page shows for api: the 24 h number and today's
// cell, or the check page's row of today in its daily table.
func frontNumbers(t *testing.T, ts *httptest.Server) (up24, todayClass, todayLabel string) {
	t.Helper()
	_, body := fetch(t, ts, "/")
	row := string(body)
	i := strings.Index(row, `data-check="api"`)
	if i < 0 {
		t.Fatalf("no api row:\n%s", body)
	}
	row = row[i:]
	if j := strings.Index(row[1:], `data-check="`); j > 0 {
		row = row[:j+1]
	}
	m := reUptime24.FindStringSubmatch(row)
	cells := reDayCells.FindAllStringSubmatch(row, -1)
	if m == nil || len(cells) != barDays {
		t.Fatalf("api row without its numbers (%d cells):\n%s", len(cells), row)
	}
	last := cells[len(cells)-1]
	return m[1], last[1], last[2]
}

// The 24 h number and today's cell include a running outage as soon as
// the check's state changes, though the history was read moments before
// (HistoryTTL 30 s); the check's page shows the same numbers, and its
// regions' 24 h counts add up to the front page's.
func TestOutageShowsAtOnceEverywhere(t *testing.T) {
	st := testStatus()
	s, now, h, src, ts := seriesServer(t, st)
	ctx := context.Background()
	s.RefreshNow(ctx)
	up, class, _ := frontNumbers(t, ts)
	if up != "99.81%" || class != "minor" { // eu-2's one failure in 540 results
		t.Fatalf("before: 24h %s, today %s", up, class)
	}
	// api goes down: every region fails from 09:58 on
	var rs []store.Result
	for i := range 2 {
		at := testNow.Add(-2 * time.Minute).Add(time.Duration(i) * time.Minute)
		for _, n := range []string{"eu-1", "us-1"} {
			for k := range 10 {
				rs = append(rs, store.Result{Node: n, Region: map[string]string{"eu-1": "eu-west", "us-1": "us-east"}[n], Check: "api",
					Time: at.Add(time.Duration(k) * 5 * time.Second), OK: false, Latency: 3 * time.Second, Code: "http_503"})
			}
		}
	}
	h.AddBatch(rs)
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t10 := testNow.Add(5 * time.Second)
	now.Store(&t10)
	down := testStatus()
	down.Checks[0].State, down.Checks[0].Since, down.Checks[0].IncidentID = "down", t10, "inc-api"
	for r, v := range down.Checks[0].Regions {
		v.Vote = "down"
		down.Checks[0].Regions[r] = v
	}
	src.mu.Lock()
	src.st = down
	src.mu.Unlock()
	s.RefreshNow(ctx)
	up, class, label := frontNumbers(t, ts)
	// 540 results + 40 failing: 41 failures in 580
	if up != pct(539.0/580) || class != "bad" {
		t.Fatalf("during the outage: 24h %s, today %s (%s)", up, class, label)
	}
	if !strings.Contains(label, pct(539.0/580)) {
		t.Fatalf("today's cell %q, want %s", label, pct(539.0/580))
	}
	// the check's page: the same 24 h number, today's row, and regions
	// whose counts add up
	_, page := fetch(t, ts, "/checks/api")
	p := string(page)
	if m := reUptime24.FindStringSubmatch(p); m == nil || m[1] != up {
		t.Fatalf("check page's 24h %v, front page %s", m, up)
	}
	daily := p[strings.Index(p, `id="h-days"`)+1:]
	day := regexp.MustCompile(`<tr><th scope="row">[^<]*</th><td>(\d+)</td><td>([^<]+)</td>`).FindStringSubmatch(daily)
	if day == nil || day[1] != "580" || day[2] != up {
		t.Fatalf("check page's today %v, want 580 results at %s", day, up)
	}
	regs := regexp.MustCompile(`<tr><th scope="row">(eu-west|us-east|ap-south)</th><td>(\d+)</td><td>([^<]+)</td>`).FindAllStringSubmatch(p, -1)
	total := 0
	for _, r := range regs {
		var n int
		fmt.Sscan(r[2], &n)
		total += n
	}
	if total != 580 {
		t.Fatalf("regions' 24 h counts %v add up to %d, want 580", regs, total)
	}
}

// A fresh node shows its first minutes at the next render, not "no
// data" for as long as the history is reused.
func TestFreshNodeShowsFirstMinutes(t *testing.T) {
	var now atomic.Pointer[time.Time]
	n := testNow
	now.Store(&n)
	h, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{Now: func() time.Time { return *now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	src := &fakeSource{ready: true, st: testStatus()}
	s := New(Options{Source: src, History: h, Page: testPage(), Now: func() time.Time { return *now.Load() },
		HistoryTTL: 30 * time.Second, HistorySlowTTL: 10 * time.Minute})
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx := context.Background()
	s.RefreshNow(ctx)
	if up, class, _ := frontNumbers(t, ts); up != "no data" || class != "none" {
		t.Fatalf("empty: %s %s", up, class)
	}
	h.AddBatch([]store.Result{{Node: "eu-1", Region: "eu-west", Check: "api", Time: testNow.Add(-time.Minute), OK: true, Latency: time.Millisecond}})
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t1 := testNow.Add(2 * time.Second)
	now.Store(&t1)
	s.RefreshNow(ctx)
	if up, class, _ := frontNumbers(t, ts); up != "100%" || class != "ok" {
		t.Fatalf("after the first result: %s %s", up, class)
	}
}
