package statuspage

import (
	"context"
	"fmt"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A page of more checks than CompactAbove (default 200) lists each in a
// line: name and link, state, 24 h uptime; says so; the bars are on the
// checks' own pages. A page of up to 200 checks, or with CompactAbove
// negative, shows the bars.
func TestLargePageLines(t *testing.T) {
	page := func(n, compactAbove int, site Site) (*Server, string) {
		st, p := manyChecks(n)
		p.Site = site
		s := New(Options{Source: &fakeSource{ready: true, st: st}, History: &memHistory{}, Page: p,
			Now: func() time.Time { return testNow }, CompactAbove: compactAbove})
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		return s, w.Body.String()
	}
	for _, tc := range []struct {
		n, above int
		lines    bool
	}{{200, 0, false}, {201, 0, true}, {250, -1, false}, {30, 10, true}} {
		_, body := page(tc.n, tc.above, Site{})
		lines, bars := strings.Count(body, `<li class="check line" data-check="`), strings.Count(body, `<ol class="bar"`)
		note := strings.Contains(body, fmt.Sprintf(`<p class="meta" id="compact-note">%s components, each with its state and its uptime over the last 24 hours; follow a name for its 90-day history.</p>`, count(tc.n)))
		if tc.lines && (lines != tc.n || bars != 0 || !note) || !tc.lines && (lines != 0 || bars != tc.n || note) {
			t.Fatalf("%d checks, CompactAbove %d: %d lines, %d bars, note %v", tc.n, tc.above, lines, bars, note)
		}
	}

	s, body := page(1000, 0, Site{})
	line := `<li class="check line" data-check="check-00007" data-state="up"><a href="/checks/check-00007">Service check-00007</a> ` +
		`<span class="u24"><span class="vh">Uptime </span>24h 99.95%</span> <span class="state s-up" data-role="state">Operational</span></li>`
	if !strings.Contains(body, line+"\n") {
		t.Fatalf("no line %s", line)
	}
	if !strings.Contains(body, `<section class="group"><h2 class="group-name">Group 0 <span class="state s-up" data-role="gstate">Operational</span></h2>`+"\n"+`<ul class="lines">`+"\n"+`<li class="check line" data-check="check-00000"`) {
		t.Fatal("no group of lines")
	}
	if n := len(body) / 1000; n > 400 {
		t.Fatalf("the index of 1,000 checks in lines is %d bytes a check", n)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	if _, c := fetch(t, ts, "/checks/check-00007"); strings.Count(string(c), `<li class="d `) != 90 || !strings.Contains(string(c), `<dt>90d</dt>`) {
		t.Fatal("the check's page has no 90-day bar")
	}

	_, ko := page(250, 0, Site{Locale: "ko"})
	if !strings.Contains(ko, "구성 요소 250개의 상태와 최근 24시간 가동률입니다.") || !strings.Contains(ko, `<span class="vh">가동률 </span>24시간 99.95%`) {
		t.Fatal("the lines in Korean")
	}
	if count(1234567) != "1,234,567" || count(999) != "999" || count(-1000) != "-1,000" {
		t.Fatal(count(1234567), count(-1000))
	}
}

// A line and a summary.json component are kept while what they show is
// the same: a region's new result does not make them again.
func TestLinesKeptWhileTheSame(t *testing.T) {
	st, p := manyChecks(300)
	src := &fakeSource{ready: true, st: st}
	hist := &memHistory{uptime: map[string]float64{}}
	s := New(Options{Source: src, History: hist, Page: p, Now: func() time.Time { return testNow }})
	ctx := context.Background()
	set := func(st *Status) {
		src.mu.Lock()
		src.st = st
		src.mu.Unlock()
		s.RefreshNow(ctx)
	}
	ids := func(name string) (row, comp uint64) { return s.rc.rows[name].id, s.rc.comps[name].id }
	s.RefreshNow(ctx)
	r0, c0 := ids("check-00022")
	st = withCheck(st, 22, func(c *CheckStatus) {
		r := maps.Clone(c.Regions)
		v := r["ap-south"]
		v.CheckedAt, v.LatencyMS = v.CheckedAt.Add(time.Second), 77
		r["ap-south"] = v
		c.Regions = r
	})
	set(st)
	if r1, c1 := ids("check-00022"); r1 != r0 || c1 != c0 {
		t.Fatal("a new result made the line or the component again")
	}
	if s.snap.Load().v.byName["check-00022"].Regions[0].LatencyMS != 77 {
		t.Fatal("the view was not updated")
	}
	set(withCheck(st, 22, func(c *CheckStatus) { c.State = "down" }))
	r2, c2 := ids("check-00022")
	if r2 == r0 || c2 == c0 || !strings.Contains(string(s.rc.rows["check-00022"].html), `data-state="down"`) {
		t.Fatal("a new state did not make the line and the component again")
	}
	hist.mu.Lock()
	hist.uptime["check-00022"] = 0.5
	hist.mu.Unlock()
	s.RefreshNow(ctx)
	if r3, _ := ids("check-00022"); r3 == r2 || !strings.Contains(string(s.rc.rows["check-00022"].html), `24h 50.00%`) {
		t.Fatal("a new 24 h number did not make the line again")
	}
}
