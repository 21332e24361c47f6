package statuspage

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
			Regions: map[string]RegionVote{"eu-west": {Vote: "up", LatencyMS: 41.5, CheckedAt: at.Add(-2 * time.Second), Error: ""}}}},
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
