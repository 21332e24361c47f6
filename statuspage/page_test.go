package statuspage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/store"
)

var _ History = (*store.Store)(nil)

var testNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// newStore opens a real store in t.TempDir() with a day of results for api
// (two regions; eu-west fails for ten minutes) and an incident.
func newStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var rs []store.Result
	for i := range 24 * 60 {
		at := testNow.Add(-24 * time.Hour).Add(time.Duration(i) * time.Minute)
		for _, reg := range []string{"eu-west", "us-east"} {
			ok := !(reg == "eu-west" && i >= 1400 && i < 1410)
			r := store.Result{Node: reg + "-1", Region: reg, Check: "api", Time: at, OK: ok,
				Latency: time.Duration(40+i%7) * time.Millisecond}
			if !ok {
				r.Code, r.Message = "timeout", "=cmd() timed out"
			}
			rs = append(rs, r)
		}
	}
	st.AddBatch(rs)
	ctx := context.Background()
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res := testNow.Add(-30 * time.Minute)
	if _, err := st.OpenIncident(ctx, store.Incident{ID: "inc-old", Check: "api", Title: "API is down", State: "down",
		StartedAt: testNow.Add(-40 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ResolveIncident(ctx, "inc-old", res); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenIncident(ctx, store.Incident{ID: "inc-new", Check: "db", Title: "DB is down", State: "down",
		StartedAt: testNow.Add(-5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.StateChange{
		{Check: "api", Time: testNow.Add(-40 * time.Minute), From: "up", To: "down", IncidentID: "inc-old"},
		{Check: "api", Time: res, From: "down", To: "up", IncidentID: "inc-old"},
	} {
		if err := st.RecordStateChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func testStatus() *Status {
	return &Status{
		GeneratedAt: testNow,
		Node:        NodeInfo{Name: "eu-1", Region: "eu-west"},
		Cluster: ClusterInfo{Quorum: 2, Regions: map[string]RegionInfo{
			"eu-west": {Eligible: true}, "us-east": {Eligible: true}, "ap-south": {Eligible: true}}},
		Checks: []CheckStatus{
			{Name: "api", State: "up", Since: testNow.Add(-30 * time.Minute), Regions: map[string]*RegionVote{
				"eu-west": {Vote: "up", LatencyMS: 41.5, CheckedAt: testNow.Add(-2 * time.Second)},
				"us-east": {Vote: "up", LatencyMS: 88, CheckedAt: testNow.Add(-3 * time.Second)}}},
			{Name: "db", State: "down", Since: testNow.Add(-5 * time.Minute), IncidentID: "inc-new", Regions: map[string]*RegionVote{
				"eu-west": {Vote: "down", Error: "refused"}, "us-east": {Vote: "down", Error: "refused"}}},
			{Name: "web", State: "up", Since: testNow.Add(-time.Hour)},
		},
	}
}

func testPage() Page {
	return Page{ID: "pg1", Title: "Example Status", Description: "Our services.", URL: "https://status.example.com",
		Checks: []PageCheck{
			{Name: "api", DisplayName: "Public API", Description: "REST API", Group: "Public API"},
			{Name: "db", DisplayName: "Database", Group: "Backend"},
			{Name: "web", Group: ""},
		},
		Maintenance: []MaintenanceWindow{{Title: "DB upgrade", Checks: []string{"db"},
			Start: testNow.Add(24 * time.Hour), End: testNow.Add(25 * time.Hour)}},
	}
}

func newTestServer(t testing.TB, h History) (*Server, *fakeSource, *httptest.Server) {
	t.Helper()
	src := &fakeSource{ready: true, st: testStatus()}
	s := New(Options{Source: src, History: h, Page: testPage(), Now: func() time.Time { return testNow }})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, src, ts
}

func fetch(t testing.TB, ts *httptest.Server, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestHistoryFromRealStore(t *testing.T) {
	st := newStore(t)
	_, _, ts := newTestServer(t, st)

	resp, body := fetch(t, ts, "/api/v1/checks/api/history")
	if resp.StatusCode != 200 {
		t.Fatalf("history %d %s", resp.StatusCode, body)
	}
	var h HistoryJSON
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	if !h.From.Equal(testNow.Add(-24*time.Hour)) || !h.To.Equal(testNow) {
		t.Fatalf("default range %v..%v", h.From, h.To)
	}
	if len(h.Regions["eu-west"]) != 1440 || len(h.Regions["us-east"]) != 1440 {
		t.Fatalf("results per region: eu %d us %d", len(h.Regions["eu-west"]), len(h.Regions["us-east"]))
	}
	if len(h.StateChanges) != 2 || h.StateChanges[0].To != "down" || h.StateChanges[1].To != "up" {
		t.Fatalf("state changes %+v", h.StateChanges)
	}
	resp, body = fetch(t, ts, "/api/v1/checks/api/history?from=2026-11-22T09:00:00Z&to=2026-11-22T09:30:00Z")
	if err := json.Unmarshal(body, &h); err != nil || resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode, err)
	}
	if len(h.Regions["eu-west"]) != 30 {
		t.Fatalf("range results %d", len(h.Regions["eu-west"]))
	}
	// the index shows uptime from the store
	_, page := fetch(t, ts, "/")
	if !bytes.Contains(page, []byte("99.65%")) { // 10 failures of 2880 results
		t.Fatalf("index lacks the 24h uptime 99.65%%:\n%s", page)
	}
	// the check page draws the chart from minute stats
	resp, page = fetch(t, ts, "/checks/api")
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("<polyline")) || !bytes.Contains(page, []byte("eu-west")) {
		t.Fatalf("check page %d lacks a chart:\n%s", resp.StatusCode, page)
	}
}

func TestHistoryErrors(t *testing.T) {
	_, _, ts := newTestServer(t, newStore(t))
	for path, code := range map[string]int{
		"/api/v1/checks/nope/history":                                                  404,
		"/api/v1/checks/nope/history.csv":                                              404,
		"/api/v1/checks/api/history?from=yesterday":                                    400,
		"/api/v1/checks/api/history?to=2026-11-22":                                     400,
		"/api/v1/checks/api/history?from=2026-11-22T10:00:00Z&to=2026-11-22T09:00:00Z": 400,
		"/api/v1/checks/api/history?from=2026-01-01T00:00:00Z":                         400,
		"/api/v1/checks/api/history.csv?from=bad":                                      400,
		"/checks/nope":                         404,
		"/badge/nope.svg":                      404,
		"/badge/api.svg?type=uptime&window=2d": 400,
		"/badge/api.svg?type=nope":             400,
		"/assets/nope.css":                     404,
		"/nothing":                             404,
	} {
		if resp, body := fetch(t, ts, path); resp.StatusCode != code {
			t.Errorf("%s: %d, want %d (%s)", path, resp.StatusCode, code, body)
		}
	}
}

func TestHistoryCSV(t *testing.T) {
	s := New(Options{Source: &fakeSource{ready: true, st: testStatus()}, History: newStore(t), Page: testPage(),
		Now: func() time.Time { return testNow }, APIToken: testToken})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	const path = "/api/v1/checks/api/history.csv?from=2026-11-22T09:20:00Z&to=2026-11-22T09:22:00Z"
	// Without the token, no raw error messages.
	if _, body := fetch(t, ts, path); !strings.Contains(string(body), "eu-west,eu-west-1,false") ||
		strings.Contains(string(body), "cmd()") {
		t.Fatalf("public csv:\n%s", body)
	}
	resp, body := fetch(t, ts, path, "Authorization", "Bearer "+testToken)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(resp.Header.Get("Content-Disposition"), "api-history.csv") {
		t.Fatalf("disposition %q", resp.Header.Get("Content-Disposition"))
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if lines[0] != "time,check,region,node,ok,latency_ms,dns_ms,connect_ms,tls_ms,first_byte_ms,code,message" || len(lines) != 5 {
		t.Fatalf("csv:\n%s", body)
	}
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.Contains(l, "eu-west,eu-west-1,false") && strings.HasSuffix(l, "timeout,'=cmd() timed out")
	}) {
		t.Fatalf("csv lacks the failed eu-west row (formula defused):\n%s", body)
	}
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
