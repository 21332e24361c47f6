package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
