package statuspage

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// memHistory is an in-memory History: 90 days of data per check, with
// failures on some days depending on the check, and uptime numbers and
// incidents the test sets.
type memHistory struct {
	mu     sync.Mutex
	uptime map[string]float64 // by check; default 0.9995
	today  map[string]int64   // by check: results today beyond 1440, all ok
	fails  map[string]int64   // by check: failures today beyond those
	incs   []store.Incident
	reads  atomic.Int64
}

func (h *memHistory) DailyUptime(_ context.Context, check string, days int, now time.Time) ([]store.DayStat, error) {
	h.reads.Add(1)
	f := fnv.New32a()
	f.Write([]byte(check))
	seed := int(f.Sum32() % 7)
	h.mu.Lock()
	extra, extraFails := h.today[check], h.fails[check]
	h.mu.Unlock()
	out := make([]store.DayStat, days)
	today := now.UTC().Truncate(24 * time.Hour)
	for i := range out {
		fails, n := int64((i+seed)%5), int64(1440)
		if i == days-1 {
			n += extra
			fails += extraFails
		}
		out[i] = store.DayStat{Day: today.AddDate(0, 0, i-days+1), Aggregate: store.Aggregate{Count: n, Failures: fails,
			Uptime: float64(n-fails) / float64(n), AvgLatency: 40 * time.Millisecond, MaxLatency: 90 * time.Millisecond,
			P95Latency: 70 * time.Millisecond}}
	}
	return out, nil
}

func (h *memHistory) MinuteStats(context.Context, string, string, time.Time, time.Time) ([]store.MinuteStat, error) {
	h.reads.Add(1)
	return nil, nil
}

func (h *memHistory) Uptime(_ context.Context, check string, _ time.Duration, _ time.Time) (float64, error) {
	h.reads.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if u, ok := h.uptime[check]; ok {
		return u, nil
	}
	return 0.9995, nil
}

func (h *memHistory) History(context.Context, string, time.Time, time.Time, int) ([]store.Result, error) {
	return nil, nil
}

func (h *memHistory) Incidents(context.Context, int) ([]store.Incident, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]store.Incident(nil), h.incs...), nil
}

func (h *memHistory) StateChanges(context.Context, string, time.Time, time.Time) ([]store.StateChange, error) {
	return nil, nil
}

// manyChecks is a Status and Page of n checks in groups of ten (the last
// ones ungrouped), in three regions.
func manyChecks(n int) (*Status, Page) {
	st := testStatus()
	p := testPage()
	st.Checks, p.Checks = nil, nil
	for i := range n {
		name := fmt.Sprintf("check-%05d", i)
		st.Checks = append(st.Checks, CheckStatus{Name: name, State: "up", Since: testNow.Add(-time.Hour),
			Regions: map[string]*RegionVote{
				"eu-west":  {Vote: "up", LatencyMS: 40, CheckedAt: testNow.Add(-time.Second)},
				"us-east":  {Vote: "up", LatencyMS: 90, CheckedAt: testNow.Add(-2 * time.Second)},
				"ap-south": {Vote: "up", LatencyMS: 180, CheckedAt: testNow.Add(-3 * time.Second)}}})
		g := fmt.Sprintf("Group %d", i/10)
		if i >= n-5 {
			g = ""
		}
		p.Checks = append(p.Checks, PageCheck{Name: name, DisplayName: "Service " + name, Group: g})
	}
	return st, p
}

// withCheck returns a copy of st (sharing what is unchanged) in which
// check i is changed by f.
func withCheck(st *Status, i int, f func(c *CheckStatus)) *Status {
	n := *st
	n.Checks = append([]CheckStatus(nil), st.Checks...)
	f(&n.Checks[i])
	return &n
}

// An incremental render, which reuses the previous render's fragments,
// gives the same documents as a full one, through a series of changes;
// and both give what the whole templates and encodings give.
// A page of more checks than CompactAbove lists them in lines: the same.
func TestIncrementalRenderEqualsFull(t *testing.T) {
	defer func(m, c int) { chunkMin, chunkTarget = m, c }(chunkMin, chunkTarget)
	chunkMin, chunkTarget = 12<<10, 8<<10 // several chunks for the index and summary.json
	t.Run("bars", func(t *testing.T) { testIncrementalRenderEqualsFull(t, 0) })
	chunkMin, chunkTarget = 3<<10, 2<<10
	t.Run("lines", func(t *testing.T) { testIncrementalRenderEqualsFull(t, 10) })
}

func testIncrementalRenderEqualsFull(t *testing.T, compactAbove int) {
	st, p := manyChecks(30)
	hist := &memHistory{uptime: map[string]float64{}, today: map[string]int64{}, fails: map[string]int64{}}
	var now atomic.Pointer[time.Time]
	setNow := func(t time.Time) { now.Store(&t) }
	setNow(testNow)
	src := &fakeSource{ready: true, st: st}
	opts := Options{Source: src, History: hist, Page: p, Now: func() time.Time { return *now.Load() }, CompactAbove: compactAbove}
	inc, full := New(opts), New(opts)
	ctx := context.Background()

	step := func(what string) {
		t.Helper()
		inc.RefreshNow(ctx)
		full.dropRenderCache()
		full.RefreshNow(ctx)
		a, b := inc.snap.Load(), full.snap.Load()
		for k, da := range a.docs {
			db := b.docs[k]
			if !bytes.Equal(da.plain(), db.plain()) {
				t.Fatalf("%s: %s differs from a full render", what, k)
			}
			if da.gz != nil && !bytes.Equal(gunzip(t, da.gz), da.plain()) {
				t.Fatalf("%s: %s: the gzip form is not the body", what, k)
			}
		}
		// badges, rendered on request: cached, and rendered anew
		full.badgeMu.Lock()
		full.badges.clear()
		full.badgeMu.Unlock()
		for _, c := range a.v.Checks {
			for _, q := range []string{"", "?type=uptime&window=24h", "?type=uptime&window=7d", "?type=uptime", "?type=uptime&window=90d"} {
				req := httptest.NewRequest("GET", "/badge/"+c.Name+".svg"+q, nil)
				wa, wb := httptest.NewRecorder(), httptest.NewRecorder()
				inc.ServeHTTP(wa, req)
				full.ServeHTTP(wb, req)
				if wa.Code != 200 || !bytes.Equal(wa.Body.Bytes(), wb.Body.Bytes()) {
					t.Fatalf("%s: badge %s of %s differs (%d)", what, q, c.Name, wa.Code)
				}
			}
		}
		// the whole templates and encodings
		var buf bytes.Buffer
		if err := localeOf(a.v.Page.Site).tmpl.index.ExecuteTemplate(&buf, "index.html", inc.pageData(a.v, nil)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), a.docs[keyIndex].plain()) {
			t.Fatalf("%s: the assembled index differs from index.html", what)
		}
		if !bytes.Equal(mustJSON(a.v.summary(inc.started)), a.docs[keySummary].plain()) {
			t.Fatalf("%s: the assembled summary.json differs from its encoding", what)
		}
		// check pages
		for _, name := range []string{"check-00000", "check-00007", "check-00029"} {
			req := httptest.NewRequest("GET", "/checks/"+name, nil)
			wa, wb := httptest.NewRecorder(), httptest.NewRecorder()
			inc.ServeHTTP(wa, req)
			full.pagesMu.Lock()
			full.pages.clear()
			full.pagesMu.Unlock()
			full.ServeHTTP(wb, req)
			if a.v.byName[name] == nil {
				if wa.Code != 404 || wb.Code != 404 {
					t.Fatalf("%s: check page of an unknown check: %d, %d", what, wa.Code, wb.Code)
				}
				continue
			}
			if wa.Code != 200 || !bytes.Equal(wa.Body.Bytes(), wb.Body.Bytes()) {
				t.Fatalf("%s: check page %s differs (%d)", what, name, wa.Code)
			}
			buf.Reset()
			c := a.v.byName[name]
			pd := inc.pageData(a.v, c)
			inc.checkHistory(ctx, pd, []string{"ap-south", "eu-west", "us-east"}, a.v.At.Truncate(time.Minute).Add(time.Minute-24*time.Hour),
				a.v.At.Truncate(time.Minute).Add(time.Minute))
			for _, iv := range a.v.Incidents {
				if iv.affects(name) && len(pd.Incidents) < 20 {
					pd.Incidents = append(pd.Incidents, iv)
				}
			}
			if err := pd.L.tmpl.check.ExecuteTemplate(&buf, "check.html", pd); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), wa.Body.Bytes()) {
				t.Fatalf("%s: check page %s differs from check.html", what, name)
			}
		}
	}
	set := func(s *Status) {
		src.mu.Lock()
		src.st = s
		src.mu.Unlock()
	}

	step("first render")
	if compact := inc.snap.Load().v.Compact; compact != (compactAbove > 0) {
		t.Fatalf("compact %v", compact)
	}
	if n := len(inc.rc.index.chunks); n < 3 {
		t.Fatalf("the index is %d chunks, want several", n)
	}
	if n := len(inc.rc.summary.chunks); n < 2 {
		t.Fatalf("summary.json is %d chunks, want several", n)
	}
	step("nothing changed")
	st = withCheck(st, 3, func(c *CheckStatus) { c.State, c.Since, c.IncidentID = "down", testNow, "inc-x" })
	set(st)
	step("a check down")
	st = withCheck(st, 20, func(c *CheckStatus) {
		c.Regions = map[string]*RegionVote{"eu-west": {Vote: "down", Error: "timeout", CheckedAt: testNow}, "us-east": c.Regions["us-east"]}
	})
	set(st)
	step("a region vote, another region gone")
	st = withCheck(st, 21, func(c *CheckStatus) {
		r := maps.Clone(c.Regions)
		v := r["us-east"]
		v.Vote = "abstain" // only the vote: the state stays up
		r["us-east"] = v
		c.Regions = r
	})
	set(st)
	step("a region vote")
	st = withCheck(st, 22, func(c *CheckStatus) {
		r := maps.Clone(c.Regions)
		v := r["ap-south"]
		v.CheckedAt = v.CheckedAt.Add(time.Second)
		r["ap-south"] = v
		c.Regions = r
	})
	set(st)
	step("a region's new result")
	hist.mu.Lock()
	hist.uptime["check-00010"] = 0.5
	hist.incs = append(hist.incs, store.Incident{ID: "inc-x", Check: "check-00003", Title: "check 3 is down", State: "open",
		StartedAt: testNow.Add(-time.Minute), UpdatedAt: testNow.Add(-time.Minute)},
		store.Incident{ID: "m-1", Manual: true, Components: []string{"check-00007", "check-00007", "check-00029"}, Title: "Manual",
			Impact: "minor", StartedAt: testNow.Add(-48 * time.Hour), UpdatedAt: testNow.Add(-time.Hour)})
	hist.mu.Unlock()
	step("uptime numbers and incidents")
	hist.mu.Lock()
	hist.incs[0].Title = "check 3 is failing"
	hist.mu.Unlock()
	step("an incident's title")
	hist.mu.Lock()
	hist.uptime["check-00011"] = 0.99951 // 99.95% as before
	hist.today["check-00012"] = 1        // the same text for today
	hist.fails["check-00013"] = 100      // another text for today
	hist.mu.Unlock()
	step("numbers that show the same, or not")
	setNow(testNow.Add(25 * time.Hour))
	step("the next day")
	st = withCheck(st, 0, func(c *CheckStatus) { c.State = "maintenance" })
	st.Checks = append(st.Checks[:15:15], st.Checks[16:]...) // check-00015 has no status: unknown
	st.Checks = append(st.Checks, CheckStatus{Name: "extra", State: "up", Group: "Extra"})
	set(st)
	step("a check without status, one not on the page")
	p2 := p
	p2.Checks = append([]PageCheck{{Name: "new", DisplayName: "New", Group: "Group 0"}}, p.Checks[:25]...)
	p2.Checks[5].DisplayName = "Renamed"
	p2.Title = "Another title"
	inc.SetPage(p2)
	full.SetPage(p2)
	step("a new page config: one check more, fewer, renamed")
	p2.Checks = append(p2.Checks, PageCheck{Name: "late", Group: "Group 0"})
	inc.SetPage(p2)
	full.SetPage(p2)
	step("a check more in the first group, at the end of the page")
	p3 := p2
	p3.Checks = nil
	inc.SetPage(p3)
	full.SetPage(p3)
	step("no page config")
	set(&Status{})
	step("no checks")
}

// A render after one check changed rebuilds only that check's view and
// row, its badges once requested, and its check page's main part (and History reads); the
// other check pages keep theirs.
func TestIncrementalRenderReusesFragments(t *testing.T) {
	st, p := manyChecks(30)
	src := &fakeSource{ready: true, st: st}
	hist := &memHistory{uptime: map[string]float64{}, today: map[string]int64{}}
	now := testNow
	s := New(Options{Source: src, History: hist, Page: p, Now: func() time.Time { return now }, HistoryTTL: time.Minute})
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx := context.Background()
	s.RefreshNow(ctx)
	a := s.snap.Load()
	fetch(t, ts, "/checks/check-00004")
	fetch(t, ts, "/checks/check-00009")
	badges := func() map[string]*doc {
		m := map[string]*doc{}
		for _, c := range s.snap.Load().v.Checks {
			fetch(t, ts, "/badge/"+c.Name+".svg")
			s.badgeMu.Lock()
			e, _ := s.badges.get(badgeKey{c.Name, 0})
			s.badgeMu.Unlock()
			m[c.Name] = e.d
		}
		return m
	}
	badgesA := badges()
	reads := hist.reads.Load()
	src.mu.Lock()
	src.st = withCheck(st, 4, func(c *CheckStatus) { c.State = "down" })
	src.mu.Unlock()
	s.RefreshNow(ctx)
	b := s.snap.Load()
	badgesB := badges()
	for _, c := range a.v.Checks {
		changed := c.Name == "check-00004"
		if same := b.v.byName[c.Name] == c; same == changed {
			t.Errorf("%s: view reused %v", c.Name, same)
		}
		if same := badgesA[c.Name] == badgesB[c.Name]; same == changed {
			t.Errorf("%s: badges reused %v", c.Name, same)
		}
		if e := s.rc.rows[c.Name]; e.cv != b.v.byName[c.Name] {
			t.Errorf("%s: row of another view", c.Name)
		}
	}
	if n := hist.reads.Load() - reads; n != 0 {
		t.Fatalf("the render read the history %d times within HistoryTTL", n)
	}
	if _, body := fetch(t, ts, "/checks/check-00009"); !bytes.Contains(body, []byte("Partial outage")) {
		t.Fatal("check page without the new banner")
	}
	if n := hist.reads.Load() - reads; n != 0 {
		t.Fatalf("the page of an unchanged check read the history %d times", n)
	}
	if _, body := fetch(t, ts, "/checks/check-00004"); !bytes.Contains(body, []byte(`data-check="check-00004" data-state="down"`)) {
		t.Fatal("check page without the new state")
	}
	if n := hist.reads.Load() - reads; n != 4 { // 24 h per region, 30 days
		t.Fatalf("the page of the changed check read the history %d times, want 4", n)
	}

	// History read again (past HistoryTTL): numbers that show as before
	// keep the views
	hist.mu.Lock()
	for i := range 30 {
		hist.uptime[fmt.Sprintf("check-%05d", i)] = 0.99951
		hist.today[fmt.Sprintf("check-%05d", i)] = 1
	}
	hist.uptime["check-00007"] = 0.99
	hist.mu.Unlock()
	now = testNow.Add(2 * time.Minute)
	s.RefreshNow(ctx)
	c := s.snap.Load()
	for _, v := range b.v.Checks {
		if same := c.v.byName[v.Name] == v; same != (v.Name != "check-00007") {
			t.Errorf("%s: view reused %v after the history was read again", v.Name, same)
		}
	}
}

// Publishing one check's change costs the same whatever the number of
// checks: it sends the event and marks the page stale.
func TestPublishIsConstant(t *testing.T) {
	cost := func(n int) float64 {
		st, p := manyChecks(n)
		s := New(Options{Source: &fakeSource{ready: true, st: st}, Page: p})
		ev := Event{Name: "check-00001", State: "down", Since: testNow, Regions: st.Checks[1].Regions}
		return testing.AllocsPerRun(100, func() { s.Publish(ev) })
	}
	slack := 0.0
	if raceEnabled {
		slack = 2 // pooled buffers are dropped at random under the race detector
	}
	if a, b := cost(10), cost(5000); a-b > slack || b-a > slack {
		t.Fatalf("Publish allocates %v with 10 checks, %v with 5,000", a, b)
	}
}
