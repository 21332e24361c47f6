package statuspage

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/store"
)

func keys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func wantKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := keys(m); !slices.Equal(got, want) {
		t.Errorf("%s keys\n got %v\nwant %v", what, got, want)
	}
}

func TestSummaryShape(t *testing.T) {
	_, _, ts := newTestServer(t, newStore(t))
	resp, body := fetch(t, ts, "/api/v2/summary.json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("summary %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, "summary", doc, "page", "components", "incidents", "scheduled_maintenances", "status")
	page := doc["page"].(map[string]any)
	wantKeys(t, "page", page, "id", "name", "url", "time_zone", "updated_at")
	if page["id"] != "pg1" || page["name"] != "Example Status" || page["url"] != "https://status.example.com" || page["time_zone"] != "Etc/UTC" {
		t.Errorf("page %v", page)
	}
	status := doc["status"].(map[string]any)
	wantKeys(t, "status", status, "indicator", "description")
	// db down of three checks: partial outage
	if status["indicator"] != "major" || status["description"] != "Partial System Outage" {
		t.Errorf("status %v", status)
	}
	comps := doc["components"].([]any)
	byID := map[string]map[string]any{}
	for _, c := range comps {
		m := c.(map[string]any)
		byID[m["id"].(string)] = m
		want := []string{"id", "name", "status", "created_at", "updated_at", "position", "description", "showcase",
			"start_date", "group_id", "page_id", "group", "only_show_if_degraded"}
		if m["group"] == true {
			want = append(want, "components")
		}
		wantKeys(t, "component "+m["id"].(string), m, want...)
	}
	api, db, web, grp := byID["api"], byID["db"], byID["web"], byID["group-public-api"]
	if api == nil || db == nil || web == nil || grp == nil {
		t.Fatalf("components %v", keys(map[string]any{"x": byID}))
	}
	if api["name"] != "Public API" || api["status"] != "operational" || api["group_id"] != "group-public-api" || api["description"] != "REST API" {
		t.Errorf("api component %v", api)
	}
	if db["status"] != "major_outage" || db["group_id"] != "group-backend" {
		t.Errorf("db component %v", db)
	}
	if web["group_id"] != nil || web["description"] != nil || web["name"] != "web" {
		t.Errorf("web component %v", web)
	}
	if grp["group"] != true || !slices.Equal(grp["components"].([]any), []any{"api"}) {
		t.Errorf("group component %v", grp)
	}
	if byID["group-backend"]["status"] != "major_outage" {
		t.Errorf("backend group %v", byID["group-backend"])
	}
	incs := doc["incidents"].([]any)
	if len(incs) != 1 {
		t.Fatalf("unresolved incidents %d, want 1", len(incs))
	}
	inc := incs[0].(map[string]any)
	wantKeys(t, "incident", inc, "id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact",
		"shortlink", "started_at", "page_id", "incident_updates", "components")
	if inc["id"] != "inc-new" || inc["status"] != "investigating" || inc["resolved_at"] != nil || inc["page_id"] != "pg1" ||
		inc["shortlink"] != "https://status.example.com/incidents/inc-new" {
		t.Errorf("incident %v", inc)
	}
	ups := inc["incident_updates"].([]any)
	if len(ups) != 1 {
		t.Fatalf("updates %v", ups)
	}
	wantKeys(t, "incident update", ups[0].(map[string]any), "id", "status", "body", "incident_id", "created_at", "updated_at",
		"display_at", "affected_components")
	if c := inc["components"].([]any); len(c) != 1 || c[0].(map[string]any)["id"] != "db" {
		t.Errorf("incident components %v", c)
	}
	sms := doc["scheduled_maintenances"].([]any)
	if len(sms) != 1 {
		t.Fatalf("maintenances %v", sms)
	}
	sm := sms[0].(map[string]any)
	wantKeys(t, "maintenance", sm, "id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact",
		"shortlink", "started_at", "page_id", "incident_updates", "components", "scheduled_for", "scheduled_until")
	if sm["status"] != "scheduled" || sm["impact"] != "maintenance" || sm["scheduled_for"] != "2026-11-23T10:00:00Z" {
		t.Errorf("maintenance %v", sm)
	}

	_, body = fetch(t, ts, "/api/v2/status.json")
	var sd map[string]any
	if err := json.Unmarshal(body, &sd); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, "status.json", sd, "page", "status")
	if sd["status"].(map[string]any)["indicator"] != "major" {
		t.Errorf("status.json %v", sd)
	}
}

func TestOverall(t *testing.T) {
	for _, tc := range []struct {
		states []string
		stale  bool
		want   string
		ind    string
	}{
		{[]string{"up", "up"}, false, OverallOperational, "none"},
		{[]string{"up", "degraded"}, false, OverallDegraded, "minor"},
		{[]string{"up", "down"}, false, OverallPartial, "major"},
		{[]string{"down", "down", "maintenance"}, false, OverallMajor, "critical"},
		{[]string{"up", "maintenance"}, false, OverallMaintenance, "none"},
		{[]string{"up", "unknown"}, false, OverallMonitoring, "minor"},
		{[]string{"up", "up"}, true, OverallMonitoring, "minor"},
		{nil, false, OverallOperational, "none"},
	} {
		o := overallOf(tc.states, tc.stale)
		if o.Key != tc.want || o.Indicator != tc.ind {
			t.Errorf("%v stale=%v: %s/%s, want %s/%s", tc.states, tc.stale, o.Key, o.Indicator, tc.want, tc.ind)
		}
	}
	if s := displayState(&CheckStatus{State: "up", Regions: map[string]*RegionVote{"a": {Vote: "down"}, "b": {Vote: "up"}}}); s != "degraded" {
		t.Errorf("minority down: %s", s)
	}
}

func TestIncidentsNewestFirst(t *testing.T) {
	_, _, ts := newTestServer(t, newStore(t))
	resp, body := fetch(t, ts, "/api/v1/incidents")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	var doc IncidentsJSON
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Incidents) != 2 || doc.Incidents[0].ID != "inc-new" || doc.Incidents[1].ID != "inc-old" {
		t.Fatalf("incidents %+v", doc.Incidents)
	}
	old := doc.Incidents[1]
	if old.ResolvedAt == nil || len(old.Updates) != 2 || old.Updates[0].Status != "resolved" {
		t.Fatalf("resolved incident %+v", old)
	}
}

func TestFeed(t *testing.T) {
	_, _, ts := newTestServer(t, newStore(t))
	resp, body := fetch(t, ts, "/feed.atom")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/atom+xml") {
		t.Fatalf("feed %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var f struct {
		XMLName xml.Name
		Entries []struct {
			ID    string `xml:"id"`
			Title string `xml:"title"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	if f.XMLName.Space != "http://www.w3.org/2005/Atom" || len(f.Entries) != 2 || f.Entries[0].Title != "Database is down (Investigating)" {
		t.Fatalf("feed %+v\n%s", f, body)
	}
}

func TestBadges(t *testing.T) {
	_, _, ts := newTestServer(t, newStore(t))
	resp, body := fetch(t, ts, "/badge/db.svg")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(body), ">down<") {
		t.Fatalf("status badge %d %s", resp.StatusCode, body)
	}
	resp, body = fetch(t, ts, "/badge/api.svg?type=uptime&window=24h")
	if resp.StatusCode != 200 || !strings.Contains(string(body), ">99.65%<") {
		t.Fatalf("uptime badge %d %s", resp.StatusCode, body)
	}
	if resp, body = fetch(t, ts, "/badge/api.svg?type=uptime"); resp.StatusCode != 200 || !strings.Contains(string(body), "api 30d") {
		t.Fatalf("default window badge %d %s", resp.StatusCode, body)
	}
}

func TestIndexContent(t *testing.T) {
	_, src, ts := newTestServer(t, newStore(t))
	resp, body := fetch(t, ts, "/")
	page := string(body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("index %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`data-overall="partial_outage"`, ">Partial outage<", // banner in text
		`<h2 class="group-name">Public API`, `<h2 class="group-name">Backend`, // groups
		`data-check="db" data-state="down"`, `>Down</span>`, // state as text
		`tabindex="0" aria-label="2026-11-22: 99.16% uptime; incident: Public API is down`, // focusable day cells with text
		"<dt>90d</dt>", "DB upgrade", "Scheduled", // maintenance
		"Active incidents", "Database is down", "Past incidents", "Public API is down",
		`/assets/style.css?v=`, `/assets/app.js?v=`,
		"41.5ms", // per-region latency
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "style=") || strings.Contains(page, "<script>") {
		t.Errorf("index has external URLs or inline style/script")
	}
	if n := strings.Count(page, `class="d `); n != 3*90 {
		t.Errorf("day cells %d, want 270", n)
	}
	if strings.Contains(page, "may be stale") {
		t.Errorf("stale notice with a quorum visible")
	}
	// a node without a quorum of regions says so
	src.mu.Lock()
	st := testStatus()
	st.Cluster.Regions["us-east"] = RegionInfo{Eligible: false}
	st.Cluster.Regions["ap-south"] = RegionInfo{Eligible: false}
	src.st = st
	src.mu.Unlock()
	s := ts.Config.Handler.(*Server)
	s.Refresh()
	_, body = fetch(t, ts, "/")
	if !strings.Contains(string(body), "view may be stale") {
		t.Errorf("no stale notice without a quorum")
	}
}

func TestSecurityHeaders(t *testing.T) {
	_, _, ts := newTestServer(t, nil)
	for _, p := range []string{"/", "/api/v2/summary.json", "/checks/api", "/healthz", "/nothing"} {
		resp, _ := fetch(t, ts, p)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
	}
}

func TestCachingETagGzip(t *testing.T) {
	s, src, ts := newTestServer(t, newStore(t))
	for _, p := range []string{"/", "/api/v2/summary.json", "/api/v2/status.json", "/api/v1/incidents", "/feed.atom", "/checks/api", "/badge/api.svg", "/assets/style.css"} {
		resp, plain := fetch(t, ts, p)
		etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		if resp.StatusCode != 200 || etag == "" || lm == "" || !strings.HasPrefix(resp.Header.Get("Cache-Control"), "public, max-age=") {
			t.Fatalf("%s: %d etag %q lm %q cc %q", p, resp.StatusCode, etag, lm, resp.Header.Get("Cache-Control"))
		}
		if resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("%s: encoded without Accept-Encoding", p)
		}
		if r2, b := fetch(t, ts, p, "If-None-Match", etag); r2.StatusCode != 304 || len(b) != 0 || r2.Header.Get("ETag") != etag {
			t.Fatalf("%s: If-None-Match %d %q", p, r2.StatusCode, b)
		}
		if r2, _ := fetch(t, ts, p, "If-None-Match", `"other"`); r2.StatusCode != 200 {
			t.Fatalf("%s: other etag %d", p, r2.StatusCode)
		}
		if r2, _ := fetch(t, ts, p, "If-Modified-Since", lm); r2.StatusCode != 304 {
			t.Fatalf("%s: If-Modified-Since %d", p, r2.StatusCode)
		}
		if len(plain) < 300 {
			continue
		}
		rz, gz := fetch(t, ts, p, "Accept-Encoding", "br, gzip;q=0.8")
		if rz.Header.Get("Content-Encoding") != "gzip" || rz.Header.Get("Vary") != "Accept-Encoding" || rz.Header.Get("ETag") == etag {
			t.Fatalf("%s: gzip headers %v", p, rz.Header)
		}
		if string(gunzip(t, gz)) != string(plain) {
			t.Fatalf("%s: gzip body differs", p)
		}
		if r2, _ := fetch(t, ts, p, "Accept-Encoding", "gzip", "If-None-Match", rz.Header.Get("ETag")); r2.StatusCode != 304 {
			t.Fatalf("%s: gzip etag not revalidated: %d", p, r2.StatusCode)
		}
		if r2, _ := fetch(t, ts, p, "Accept-Encoding", "gzip;q=0"); r2.Header.Get("Content-Encoding") != "" {
			t.Fatalf("%s: gzip despite q=0", p)
		}
	}
	// an identical re-render keeps the validators; a change replaces them
	resp, _ := fetch(t, ts, "/api/v2/summary.json")
	etag := resp.Header.Get("ETag")
	s.Refresh()
	if r2, _ := fetch(t, ts, "/api/v2/summary.json"); r2.Header.Get("ETag") != etag {
		t.Fatalf("etag changed without a change")
	}
	src.mu.Lock()
	st := testStatus()
	st.Checks[1].State, st.Checks[1].Since, st.Checks[1].Regions = "up", testNow, nil
	src.st = st
	src.mu.Unlock()
	if r2, _ := fetch(t, ts, "/api/v2/summary.json", "If-None-Match", etag); r2.StatusCode != 304 {
		t.Fatalf("without Refresh the cached document is served: %d", r2.StatusCode)
	}
	s.Refresh()
	r2, b := fetch(t, ts, "/api/v2/summary.json", "If-None-Match", etag)
	if r2.StatusCode != 200 || r2.Header.Get("ETag") == etag || !strings.Contains(string(b), `"indicator": "none"`) {
		t.Fatalf("after Refresh: %d %s", r2.StatusCode, b)
	}
	// HEAD
	req, _ := http.NewRequest("HEAD", ts.URL+"/", nil)
	hr, err := http.DefaultClient.Do(req)
	if err != nil || hr.StatusCode != 200 {
		t.Fatal(err, hr.StatusCode)
	}
	hr.Body.Close()
}

// countingHistory counts the queries made through it.
type countingHistory struct {
	h History
	n atomic.Int64
}

func (c *countingHistory) DailyUptime(ctx context.Context, check string, days int, now time.Time) ([]store.DayStat, error) {
	c.n.Add(1)
	return c.h.DailyUptime(ctx, check, days, now)
}
func (c *countingHistory) MinuteStats(ctx context.Context, check, region string, from, to time.Time) ([]store.MinuteStat, error) {
	c.n.Add(1)
	return c.h.MinuteStats(ctx, check, region, from, to)
}
func (c *countingHistory) Uptime(ctx context.Context, check string, w time.Duration, now time.Time) (float64, error) {
	c.n.Add(1)
	return c.h.Uptime(ctx, check, w, now)
}
func (c *countingHistory) History(ctx context.Context, check string, from, to time.Time, limit int) ([]store.Result, error) {
	c.n.Add(1)
	return c.h.History(ctx, check, from, to, limit)
}
func (c *countingHistory) Incidents(ctx context.Context, limit int) ([]store.Incident, error) {
	c.n.Add(1)
	return c.h.Incidents(ctx, limit)
}
func (c *countingHistory) StateChanges(ctx context.Context, check string, from, to time.Time) ([]store.StateChange, error) {
	c.n.Add(1)
	return c.h.StateChanges(ctx, check, from, to)
}

func TestNoQueryPerRequest(t *testing.T) {
	ch := &countingHistory{h: newStore(t)}
	_, _, ts := newTestServer(t, ch)
	paths := []string{"/", "/api/v2/summary.json", "/api/v2/status.json", "/api/v1/incidents", "/feed.atom", "/badge/api.svg", "/checks/api"}
	for _, p := range paths {
		fetch(t, ts, p)
	}
	n := ch.n.Load()
	if n == 0 {
		t.Fatal("no queries at all")
	}
	for range 5 {
		for _, p := range paths {
			fetch(t, ts, p)
		}
	}
	if got := ch.n.Load(); got != n {
		t.Fatalf("%d queries for repeated requests", got-n)
	}
}

func TestPageFromConfig(t *testing.T) {
	cfg := &config.Config{
		StatusPage:  config.StatusPage{Title: "T", Description: "D", URL: "https://s.example.com/"},
		Checks:      []config.Check{{Name: "api", DisplayName: "API", Description: "d", Group: "G"}, {Name: "db"}},
		Maintenance: []config.Maintenance{{Title: "m", Checks: []string{"db"}, Start: testNow, End: testNow.Add(time.Hour)}},
	}
	p := PageFromConfig(cfg)
	if p.Title != "T" || p.URL != "https://s.example.com" || len(p.Checks) != 2 || p.Checks[0].label() != "API" ||
		p.Checks[1].label() != "db" || p.Checks[0].Group != "G" || len(p.Maintenance) != 1 || p.Maintenance[0].Checks[0] != "db" {
		t.Fatalf("page %+v", p)
	}
}
