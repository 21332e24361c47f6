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
