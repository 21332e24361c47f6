package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBareProberSchedule(t *testing.T) {
	const checks, interval, rounds = 4, 200 * time.Millisecond, 3
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == barePrefix+"3" {
			io.WriteString(w, `{"status":"down"}`) // no "ok": a failure
			return
		}
		io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()

	p := newBareProber(strings.TrimPrefix(srv.URL, "http://"), checks, interval)
	type start struct {
		i  int
		at time.Time
	}
	var starts []start
	p.onStart = func(i int) {
		mu.Lock()
		starts = append(starts, start{i, time.Now()})
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx); close(done) }()

	// Every check's URL is requested once per round; rounds take 200ms.
	waitFor(t, 3*time.Second, fmt.Sprintf("%d rounds of requests", rounds), func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range checks {
			if hits[fmt.Sprintf("%s%d", barePrefix, i)] < rounds {
				return false
			}
		}
		return p.failures.Load() > 0
	})
	// Only check 3 fails while not cancelled.
	failures := p.failures.Load()
	mu.Lock()
	starts3 := 0
	for _, s := range starts {
		if s.i == 3 {
			starts3++
		}
	}
	mu.Unlock()
	if failures > int64(starts3) {
		t.Errorf("%d failures, but check 3 (the failing one) started only %d probes", failures, starts3)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("run did not return within 2s of cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	if got := p.probes.Load(); got != int64(len(starts)) {
		t.Errorf("run returned with %d of %d started probes finished", got, len(starts))
	}
	if len(starts) < rounds*checks {
		t.Fatalf("%d probes started, want at least %d", len(starts), rounds*checks)
	}
	// Slot k is check k mod 4, due at k*interval/4 after the first; a
	// timer never fires early, and the loop catches up when late.
	step := interval / checks
	t0 := starts[0].at
	for k, s := range starts {
		if s.i != k%checks {
			t.Fatalf("probe %d was check %d, want %d", k, s.i, k%checks)
		}
		due := time.Duration(k) * step
		if off := s.at.Sub(t0); off < due-2*time.Millisecond || off > due+interval {
			t.Errorf("probe %d (check %d) started at +%s, due at +%s", k, s.i, off, due)
		}
	}
}

func TestOKTargetCountsBareApart(t *testing.T) {
	addr, hits, bareHits, stop, err := okTargetBare()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, path := range []string{"/c/1", barePrefix + "1", barePrefix + "2"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "ok") {
			t.Errorf("%s: body %q", path, b)
		}
	}
	if hits.Load() != 1 || bareHits.Load() != 2 {
		t.Errorf("hits %d, bare hits %d; want 1 and 2", hits.Load(), bareHits.Load())
	}
}

func TestBareProberTicks(t *testing.T) {
	// 1,000 checks at 10 s: spread evenly, slot k is due k·10 ms after the
	// start; on 100 ms ticks, slots share ten starts a second, each a whole
	// tick after the start, and the next interval repeats them.
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	p := newBareProber("127.0.0.1:1", 1000, 10*time.Second)
	if got, want := p.due(start, 1234).Sub(start), 12340*time.Millisecond; got != want {
		t.Fatalf("spread evenly: slot 1234 due at +%s, want +%s", got, want)
	}
	p.tick = 100 * time.Millisecond
	starts := map[time.Time]int{}
	for k := range 1000 {
		d := p.due(start, k)
		if d.Sub(start)%p.tick != 0 || d.Before(start) || !d.Before(start.Add(10*time.Second)) {
			t.Fatalf("slot %d due at +%s: not a whole tick within the first interval", k, d.Sub(start))
		}
		if d.After(start.Add(time.Duration(k) * 10 * time.Millisecond)) {
			t.Fatalf("slot %d due at +%s, after its even spot", k, d.Sub(start))
		}
		starts[d]++
	}
	if len(starts) != 100 {
		t.Fatalf("%d distinct starts in an interval, want 100 (one per tick)", len(starts))
	}
	if got, want := p.due(start, 1234), p.due(start, 234).Add(10*time.Second); !got.Equal(want) {
		t.Fatalf("slot 1234 due at %s, want one interval after slot 234's (%s)", got, want)
	}
}

func TestSampleRSS(t *testing.T) {
	// This process, every 20 ms for a little over 100 ms: samples of a
	// plausible size, one per period, none after the context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Millisecond)
	defer cancel()
	got := sampleRSS(ctx, os.Getpid(), 20*time.Millisecond)
	if len(got) < 1 || len(got) > 5 {
		t.Fatalf("%d samples in 110 ms at 20 ms, want 1 to 5 (a late tick at most dropped)", len(got))
	}
	for _, b := range got {
		if b < 1<<20 || b > 1<<34 {
			t.Fatalf("sample %d bytes: not an RSS", b)
		}
	}
	if got := sampleRSS(ctx, os.Getpid(), time.Millisecond); len(got) != 0 {
		t.Fatalf("%d samples after the context ended", len(got))
	}
}
