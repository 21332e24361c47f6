package statuspage

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/vantage-dev/vantage/store"
)

func TestLRU(t *testing.T) {
	c := newLRU[int, string](3)
	for i := range 5 {
		c.put(i, fmt.Sprint(i))
	}
	if c.len() != 3 {
		t.Fatalf("%d entries", c.len())
	}
	if _, ok := c.get(1); ok {
		t.Fatal("1 not dropped")
	}
	c.get(2) // 2 used: 3 is the least recently used
	c.put(5, "5")
	if _, ok := c.get(3); ok {
		t.Fatal("3 not dropped")
	}
	for _, k := range []int{2, 4, 5} {
		if v, ok := c.get(k); !ok || v != fmt.Sprint(k) {
			t.Fatalf("%d: %q %v", k, v, ok)
		}
	}
	c.put(4, "four")
	if v, _ := c.get(4); v != "four" || c.len() != 3 {
		t.Fatal("replace")
	}
	c.clear()
	if _, ok := c.get(4); ok || c.len() != 0 {
		t.Fatal("clear")
	}
	c.put(1, "1")
	if v, _ := c.get(1); v != "1" {
		t.Fatal("after clear")
	}
}

// Badges are rendered when requested, not by renders; kept while they
// show the same, in a bounded cache; a badge that changes and changes
// back is not hidden by If-Modified-Since.
func TestBadgesRenderedOnRequest(t *testing.T) {
	st, p := manyChecks(30)
	hist := &memHistory{uptime: map[string]float64{}}
	s := New(Options{Source: &fakeSource{ready: true, st: st}, History: hist, Page: p, Now: func() time.Time { return testNow },
		BadgeCacheSize: 4})
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx := context.Background()
	s.RefreshNow(ctx)
	s.RefreshNow(ctx)
	if n := s.badgeRenders.Load(); n != 0 {
		t.Fatalf("renders made %d badges", n)
	}
	r1, b1 := fetch(t, ts, "/badge/check-00001.svg")
	r2, b2 := fetch(t, ts, "/badge/check-00001.svg")
	if n := s.badgeRenders.Load(); n != 1 || string(b1) != string(b2) || r1.Header.Get("Etag") != r2.Header.Get("Etag") ||
		!strings.Contains(string(b1), "check-00001: operational") {
		t.Fatalf("%d badges rendered for two requests of one: %s", n, b1)
	}
	s.RefreshNow(ctx) // nothing changed: the same badge
	fetch(t, ts, "/badge/check-00001.svg")
	if n := s.badgeRenders.Load(); n != 1 {
		t.Fatalf("an unchanged badge rendered again after a render (%d)", n)
	}
	for i := range 10 {
		fetch(t, ts, fmt.Sprintf("/badge/check-%05d.svg?type=uptime&window=7d", i))
	}
	if n := s.badges.len(); n != 4 {
		t.Fatalf("%d badges kept, want 4", n)
	}

	// 24 h number: 99.95%, then 50%, then 99.95% again
	const path = "/badge/check-00002.svg?type=uptime&window=24h"
	set := func(u float64) {
		hist.mu.Lock()
		hist.uptime["check-00002"] = u
		hist.mu.Unlock()
		s.RefreshNow(ctx)
	}
	ra, a := fetch(t, ts, path)
	set(0.5)
	rb, b := fetch(t, ts, path)
	set(0.9995)
	rc, c := fetch(t, ts, path)
	if !strings.Contains(string(a), "99.95%") || !strings.Contains(string(b), "50.00%") || string(c) != string(a) {
		t.Fatalf("badges %s, %s, %s", a, b, c)
	}
	la, lb, lc := ra.Header.Get("Last-Modified"), rb.Header.Get("Last-Modified"), rc.Header.Get("Last-Modified")
	ta, _ := time.Parse(time.RFC1123, la)
	tb, _ := time.Parse(time.RFC1123, lb)
	tc, _ := time.Parse(time.RFC1123, lc)
	if !tb.After(ta) || !tc.After(tb) {
		t.Fatalf("Last-Modified %s, %s, %s: not increasing", la, lb, lc)
	}
	if r, _ := fetch(t, ts, path, "If-Modified-Since", lb); r.StatusCode != 200 {
		t.Fatalf("the badge changed back answers %d to If-Modified-Since of the one before", r.StatusCode)
	}
	if r, _ := fetch(t, ts, path, "If-Modified-Since", lc); r.StatusCode != 304 {
		t.Fatalf("%d to its own Last-Modified", r.StatusCode)
	}
	if r, _ := fetch(t, ts, path, "If-None-Match", ra.Header.Get("Etag")); r.StatusCode != 304 {
		t.Fatalf("%d to its ETag", r.StatusCode)
	}
	// another language: rendered anew
	p.Site.Locale = "ko"
	s.SetPage(p)
	s.RefreshNow(ctx)
	if _, k := fetch(t, ts, "/badge/check-00001.svg"); !strings.Contains(string(k), "check-00001: 정상") {
		t.Fatalf("badge after the page became Korean: %s", k)
	}
}

// Check and incident pages are kept in a bounded cache.
func TestPagesBounded(t *testing.T) {
	st, p := manyChecks(30)
	hist := &memHistory{}
	for i := range 10 {
		hist.incs = append(hist.incs, incidentFor(fmt.Sprintf("check-%05d", i), i))
	}
	s := New(Options{Source: &fakeSource{ready: true, st: st}, History: hist, Page: p, Now: func() time.Time { return testNow },
		PageCacheSize: 5})
	ts := httptest.NewServer(s)
	defer ts.Close()
	for i := range 10 {
		if r, _ := fetch(t, ts, fmt.Sprintf("/checks/check-%05d", i)); r.StatusCode != 200 {
			t.Fatal(r.Status)
		}
		if r, _ := fetch(t, ts, fmt.Sprintf("/incidents/inc-%d", i)); r.StatusCode != 200 {
			t.Fatal(r.Status)
		}
	}
	s.pagesMu.Lock()
	n := s.pages.len()
	_, last := s.pages.get("incident/inc-9")
	s.pagesMu.Unlock()
	if n != 5 || !last {
		t.Fatalf("%d pages kept (the last one: %v), want 5", n, last)
	}
}

// incidentFor is a resolved incident of check, i hours ago.
func incidentFor(check string, i int) store.Incident {
	at := testNow.Add(-time.Duration(i+1) * time.Hour)
	end := at.Add(10 * time.Minute)
	return store.Incident{ID: fmt.Sprintf("inc-%d", i), Check: check, Title: check + " is down", State: "resolved",
		StartedAt: at, UpdatedAt: end, ResolvedAt: &end}
}

// Neither the render nor GET /api/v1/status keeps the Status it was made
// of (of 10,000 checks, tens of MB) once the Source has a newer one.
func TestNoStatusKept(t *testing.T) {
	st, p := manyChecks(30)
	src := &fakeSource{ready: true, st: st}
	s := New(Options{Source: src, History: &memHistory{}, Page: p, Now: func() time.Time { return testNow }})
	ts := httptest.NewServer(s)
	defer ts.Close()
	s.RefreshNow(context.Background())
	for _, path := range []string{"/", "/api/v1/status", "/checks/check-00001", "/badge/check-00001.svg"} {
		if r, _ := fetch(t, ts, path); r.StatusCode != 200 {
			t.Fatalf("%s: %s", path, r.Status)
		}
	}
	w := weak.Make(st)
	next := withCheck(st, 1, func(c *CheckStatus) { c.State = "down" })
	next.GeneratedAt = testNow.Add(time.Second)
	src.mu.Lock()
	src.st = next
	src.mu.Unlock()
	st = nil
	runtime.GC()
	runtime.GC()
	if w.Value() != nil {
		t.Fatal("the old Status is kept")
	}
	if _, body := fetch(t, ts, "/api/v1/status"); !strings.Contains(string(body), `"state": "down"`) {
		t.Fatal("/api/v1/status not encoded again")
	}
}
