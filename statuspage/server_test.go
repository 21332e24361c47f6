package statuspage

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeSource struct {
	mu    sync.Mutex
	ready bool
	st    *Status
}

func (f *fakeSource) Status() *Status { f.mu.Lock(); defer f.mu.Unlock(); return f.st }
func (f *fakeSource) Ready() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready, "1 of 1 checks have no result yet"
}

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

func TestHealthAndReady(t *testing.T) {
	src := &fakeSource{st: &Status{}}
	srv := httptest.NewServer(New(Options{Source: src}))
	defer srv.Close()
	if resp, body := get(t, srv, "/healthz"); resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, srv, "/readyz"); resp.StatusCode != 503 || !strings.Contains(body, "no result yet") {
		t.Fatalf("readyz before results %d %q", resp.StatusCode, body)
	}
	src.mu.Lock()
	src.ready = true
	src.mu.Unlock()
	if resp, _ := get(t, srv, "/readyz"); resp.StatusCode != 200 {
		t.Fatalf("readyz after results %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv, "/api/v1/nothing"); resp.StatusCode != 404 {
		t.Fatalf("unknown path %d", resp.StatusCode)
	}
	resp, err := http.Post(srv.URL+"/api/v1/status", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /api/v1/status: %d, want 405 (read-only)", resp.StatusCode)
	}
}

// TestStatusShape pins the contract's field names of /api/v1/status.
func TestStatusShape(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	src := &fakeSource{ready: true, st: &Status{
		GeneratedAt: at,
		Node:        NodeInfo{Name: "eu-1", Region: "eu-west"},
		Cluster: ClusterInfo{
			Members: []Member{{Name: "eu-1", Region: "eu-west", State: "alive"}},
			Quorum:  2,
			Regions: map[string]RegionInfo{"eu-west": {Eligible: true}},
		},
		Checks: []CheckStatus{{Name: "api", State: "up", Since: at.Add(-time.Hour), IncidentID: "",
			Regions: map[string]*RegionVote{"eu-west": {Vote: "up", LatencyMS: 41.5, CheckedAt: at.Add(-2 * time.Second), Error: ""}}}},
	}}
	srv := httptest.NewServer(New(Options{Source: src}))
	defer srv.Close()
	resp, body := get(t, srv, "/api/v1/status")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["generated_at"] != "2026-11-22T10:00:00Z" {
		t.Fatalf("generated_at %v", doc["generated_at"])
	}
	node := doc["node"].(map[string]any)
	if node["name"] != "eu-1" || node["region"] != "eu-west" {
		t.Fatalf("node %v", node)
	}
	cl := doc["cluster"].(map[string]any)
	m := cl["members"].([]any)[0].(map[string]any)
	if m["name"] != "eu-1" || m["region"] != "eu-west" || m["state"] != "alive" || cl["quorum"] != 2.0 {
		t.Fatalf("cluster %v", cl)
	}
	if cl["regions"].(map[string]any)["eu-west"].(map[string]any)["eligible"] != true {
		t.Fatalf("regions %v", cl["regions"])
	}
	c := doc["checks"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "state", "since", "incident_id", "regions"} {
		if _, ok := c[k]; !ok {
			t.Fatalf("check lacks %q: %v", k, c)
		}
	}
	rv := c["regions"].(map[string]any)["eu-west"].(map[string]any)
	if rv["vote"] != "up" || rv["latency_ms"] != 41.5 || rv["checked_at"] != "2026-11-22T09:59:58Z" || rv["error"] != "" {
		t.Fatalf("region vote %v", rv)
	}
}

func TestMS(t *testing.T) {
	if got := MS(41537 * time.Microsecond); got != 41.5 {
		t.Fatalf("MS = %v, want 41.5", got)
	}
}

// countingSource counts the Status calls.
type countingSource struct {
	fakeSource
	calls atomic.Int64
}

func (c *countingSource) Status() *Status { c.calls.Add(1); return c.fakeSource.Status() }

// GET /api/v1/status is encoded once per Status pointer and served with
// validators and a gzip form.
func TestStatusDocCached(t *testing.T) {
	src := &countingSource{fakeSource: fakeSource{ready: true, st: testStatus()}}
	s := New(Options{Source: src, Now: func() time.Time { return testNow }})
	ts := httptest.NewServer(s)
	defer ts.Close()
	resp, body := fetch(t, ts, "/api/v1/status")
	want, _ := json.MarshalIndent(src.st, "", "  ")
	if resp.StatusCode != 200 || string(body) != string(want)+"\n" || resp.Header.Get("Content-Type") != "application/json" ||
		resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("Vary") != "Accept-Encoding, Authorization" {
		t.Fatalf("status %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	etag := resp.Header.Get("ETag")
	for range 5 {
		if r2, b := fetch(t, ts, "/api/v1/status"); r2.Header.Get("ETag") != etag || string(b) != string(body) {
			t.Fatalf("same Status, another document: %q %q", r2.Header.Get("ETag"), etag)
		}
	}
	if r2, b := fetch(t, ts, "/api/v1/status", "If-None-Match", etag); r2.StatusCode != 304 || len(b) != 0 {
		t.Fatalf("If-None-Match: %d", r2.StatusCode)
	}
	rz, gz := fetch(t, ts, "/api/v1/status", "Accept-Encoding", "gzip")
	if rz.Header.Get("Content-Encoding") != "gzip" || string(gunzip(t, gz)) != string(body) {
		t.Fatalf("gzip: %v", rz.Header)
	}
	if r2, _ := fetch(t, ts, "/api/v1/status", "Accept-Encoding", "gzip", "If-None-Match", rz.Header.Get("ETag")); r2.StatusCode != 304 {
		t.Fatalf("gzip If-None-Match: %d", r2.StatusCode)
	}
	if n := s.encodes.Load(); n != 1 {
		t.Fatalf("%d encodings of one Status", n)
	}
	if n := src.calls.Load(); n != 9 {
		t.Fatalf("%d Status calls for 9 requests", n)
	}

	// a new Status (same time, another state): a new document
	src.mu.Lock()
	st := testStatus()
	st.Checks[1].State = "up"
	src.st = st
	src.mu.Unlock()
	r2, b := fetch(t, ts, "/api/v1/status", "If-None-Match", etag)
	if r2.StatusCode != 200 || r2.Header.Get("ETag") == etag || !strings.Contains(string(b), `"state": "up"`) || strings.Contains(string(b), `"state": "down"`) {
		t.Fatalf("after a change: %d %s", r2.StatusCode, b)
	}
	if lm, lm0 := r2.Header.Get("Last-Modified"), resp.Header.Get("Last-Modified"); lm == lm0 {
		t.Fatalf("Last-Modified %s unchanged after a change in the same second", lm)
	}
	if r3, _ := fetch(t, ts, "/api/v1/status", "If-Modified-Since", resp.Header.Get("Last-Modified")); r3.StatusCode != 200 {
		t.Fatalf("If-Modified-Since of the old document: %d", r3.StatusCode)
	}
	// a new pointer with the same content keeps the validators
	src.mu.Lock()
	st2 := *st
	src.st = &st2
	src.mu.Unlock()
	if r3, _ := fetch(t, ts, "/api/v1/status", "If-None-Match", r2.Header.Get("ETag")); r3.StatusCode != 304 {
		t.Fatalf("same content, new pointer: %d", r3.StatusCode)
	}
	// an older Status than the document's does not replace it
	src.mu.Lock()
	old := testStatus()
	old.GeneratedAt = testNow.Add(-time.Minute)
	src.st = old
	src.mu.Unlock()
	if _, b := fetch(t, ts, "/api/v1/status"); strings.Contains(string(b), `"state": "down"`) {
		t.Fatal("an older Status replaced the document")
	}
}

// Concurrent requests after a change encode the new Status once.
func TestStatusDocSingleFlight(t *testing.T) {
	src := &fakeSource{ready: true, st: testStatus()}
	s := New(Options{Source: src})
	req := httptest.NewRequest("GET", "/api/v1/status", nil)
	s.ServeHTTP(httptest.NewRecorder(), req)
	for round := range 20 {
		src.mu.Lock()
		st := testStatus()
		st.GeneratedAt = testNow.Add(time.Duration(round+1) * time.Second)
		src.st = st
		src.mu.Unlock()
		before := s.encodes.Load()
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				w := httptest.NewRecorder()
				s.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/status", nil))
				if w.Code != 200 {
					t.Errorf("status %d", w.Code)
				}
			})
		}
		wg.Wait()
		if n := s.encodes.Load() - before; n != 1 {
			t.Fatalf("round %d: %d encodings of one Status", round, n)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if !strings.Contains(w.Body.String(), st.GeneratedAt.Format(time.RFC3339)) {
			t.Fatalf("round %d: not the new Status", round)
		}
	}
}
