package statuspage

import (
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A config reload replaces the page's presentation: the next render shows
// the new title and display names.
func TestSetPageReRenders(t *testing.T) {
	s, _, ts := newTestServer(t, nil)
	if _, body := fetch(t, ts, "/"); strings.Contains(string(body), "Reloaded Status") {
		t.Fatal("test premise: the new title is already shown")
	}
	p := testPage()
	p.Title = "Reloaded Status"
	p.Checks[0].DisplayName = "Renamed API"
	s.SetPage(p)
	_, body := fetch(t, ts, "/")
	for _, want := range []string{"Reloaded Status", "Renamed API"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("page after SetPage lacks %q", want)
		}
	}
}

// With HistoryTTL, renders for state changes reuse the checks' uptime
// numbers and bars; once the TTL has passed (or the day changed) they are
// read again.
func TestHistoryTTLReusesRollups(t *testing.T) {
	h := &countingHistory{h: newStore(t)}
	var now atomic.Pointer[time.Time]
	set := func(t time.Time) { now.Store(&t) }
	set(testNow)
	s := New(Options{Source: &fakeSource{ready: true, st: testStatus()}, History: h, Page: testPage(),
		HistoryTTL: 30 * time.Second, Now: func() time.Time { return *now.Load() }})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	perCheck := int64(len(uptimeWindows) + 1) // uptime windows and the daily bar
	saved := int64(len(testPage().Checks)) * perCheck

	fetch(t, ts, "/")
	first := h.n.Load()
	if first < saved {
		t.Fatalf("first render made %d queries, fewer than the %d history reads", first, saved)
	}
	set(testNow.Add(10 * time.Second))
	s.Refresh()
	if _, body := fetch(t, ts, "/"); !strings.Contains(string(body), "99.") {
		t.Fatal("a re-render within the TTL lost the uptime numbers")
	}
	if got := h.n.Load() - first; got != first-saved {
		t.Fatalf("a render within the TTL made %d queries, want %d (no history reads)", got, first-saved)
	}
	before := h.n.Load()
	set(testNow.Add(31 * time.Second))
	s.Refresh()
	fetch(t, ts, "/")
	if got := h.n.Load() - before; got != first {
		t.Fatalf("a render after the TTL made %d queries, want %d, as the first", got, first)
	}
}

// With HistorySlowTTL, a render between the fast and the slow TTL re-reads
// only the 24 h number and today's cell of each check.
func TestHistorySlowTTLReReadsOnlyToday(t *testing.T) {
	h := &countingHistory{h: newStore(t)}
	var now atomic.Pointer[time.Time]
	set := func(t time.Time) { now.Store(&t) }
	base := testNow.Truncate(24 * time.Hour).Add(time.Hour) // room for 5 minutes within the day
	set(base)
	s := New(Options{Source: &fakeSource{ready: true, st: testStatus()}, History: h, Page: testPage(),
		HistoryTTL: 30 * time.Second, HistorySlowTTL: 5 * time.Minute, Now: func() time.Time { return *now.Load() }})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	checks := int64(len(testPage().Checks))
	full := checks * int64(len(uptimeWindows)+1)

	fetch(t, ts, "/")
	first := h.n.Load()
	other := first - full // incidents and the like, read on every render
	step := func(d time.Duration, want int64, what string) {
		t.Helper()
		set(base.Add(d))
		s.Refresh()
		before := h.n.Load()
		fetch(t, ts, "/")
		if got := h.n.Load() - before; got != want {
			t.Fatalf("%s: %d queries, want %d", what, got, want)
		}
	}
	step(10*time.Second, other, "within the fast TTL")
	step(time.Minute, other+2*checks, "past the fast TTL: the 24 h number and today's cell")
	step(5*time.Minute+time.Second, first, "past the slow TTL: everything")
}
