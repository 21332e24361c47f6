package scheduler

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

func check(name string, interval, timeout time.Duration) config.Check {
	return config.Check{Name: name, Type: config.TypeTCP, Target: "127.0.0.1:1", Interval: interval, Timeout: timeout}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOffsetSpread(t *testing.T) {
	// 1,000 checks at 30s: first runs spread over the window, no burst.
	const n, interval = 1000, 30 * time.Second
	buckets := make([]int, 30)
	for i := range n {
		off := Offset("check-"+string(rune('a'+i%26))+"-"+itoa(i), interval, time.Minute)
		if off < 0 || off >= interval {
			t.Fatalf("offset %v outside [0, %v)", off, interval)
		}
		buckets[off/time.Second]++
	}
	for sec, c := range buckets {
		if c > 3*n/30 {
			t.Fatalf("second %d holds %d of %d first runs: a burst", sec, c, n)
		}
	}
	if Offset("api", interval, time.Minute) != Offset("api", interval, time.Minute) {
		t.Fatal("offset not stable")
	}
	if off := Offset("api", time.Hour, 5*time.Second); off >= 5*time.Second {
		t.Fatalf("offset %v beyond max spread", off)
	}
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}

func TestRunsRepeatedlyWithTimeout(t *testing.T) {
	var runs atomic.Int32
	var sawDeadline atomic.Bool
	s, err := New(func(ctx context.Context, c *config.Check) {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= c.Timeout {
			sawDeadline.Store(true)
		}
		runs.Add(1)
	}, Options{MaxSpread: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]config.Check{check("a", 100*time.Millisecond, 50*time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	waitFor(t, "three runs", func() bool { return runs.Load() >= 3 })
	if !sawDeadline.Load() {
		t.Fatal("probe context carries no deadline within the check's timeout")
	}
}

func TestNeverOverlapsAndShutdownCancels(t *testing.T) {
	var running, maxRunning, started atomic.Int32
	var mu sync.Mutex
	cancelled := 0
	s, err := New(func(ctx context.Context, c *config.Check) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		started.Add(1)
		<-ctx.Done() // a hung probe: only its context ends it
		mu.Lock()
		cancelled++
		mu.Unlock()
	}, Options{MaxSpread: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Interval 50ms, timeout 10s: the probe outlives many intervals.
	if err := s.Set([]config.Check{check("hung", 50*time.Millisecond, 10*time.Second)}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	waitFor(t, "the probe to start", func() bool { return started.Load() >= 1 })
	// Several intervals pass while the probe hangs; RunNow as well.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		s.RunNow("hung")
		time.Sleep(20 * time.Millisecond)
	}
	if m := maxRunning.Load(); m != 1 {
		t.Fatalf("%d runs of one check overlapped", m)
	}
	done := make(chan error)
	go func() { done <- s.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not cancel the hung probe")
	}
	mu.Lock()
	defer mu.Unlock()
	if cancelled != 1 {
		t.Fatalf("%d probes saw cancellation, want 1", cancelled)
	}
}

func TestHungCheckDoesNotDelayOthers(t *testing.T) {
	var fast atomic.Int32
	s, err := New(func(ctx context.Context, c *config.Check) {
		if c.Name == "fast" {
			fast.Add(1)
			return
		}
		<-ctx.Done()
	}, Options{MaxSpread: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checks := []config.Check{check("fast", 50*time.Millisecond, 40*time.Millisecond)}
	for i := range 1000 {
		checks = append(checks, check("hung-"+itoa(i), time.Second, 900*time.Millisecond))
	}
	if err := s.Set(checks); err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	waitFor(t, "the fast check to run 5 times beside 1,000 hung ones", func() bool { return fast.Load() >= 5 })
}

func TestSetAddsRemovesAndKeepsUnchanged(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	s, err := New(func(ctx context.Context, c *config.Check) {
		mu.Lock()
		seen[c.Name]++
		mu.Unlock()
	}, Options{MaxSpread: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	a, b := check("a", 50*time.Millisecond, 40*time.Millisecond), check("b", 50*time.Millisecond, 40*time.Millisecond)
	if err := s.Set([]config.Check{a, b}); err != nil {
		t.Fatal(err)
	}
	count := func(n string) int { mu.Lock(); defer mu.Unlock(); return seen[n] }
	waitFor(t, "a and b to run", func() bool { return count("a") > 0 && count("b") > 0 })
	id := s.jobs["a"].id
	if err := s.Set([]config.Check{a}); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 || s.jobs["a"].id != id {
		t.Fatal("unchanged check a was rescheduled or b not removed")
	}
	before := count("b")
	na := count("a")
	waitFor(t, "a to keep running", func() bool { return count("a") >= na+3 })
	if after := count("b"); after > before+1 {
		t.Fatalf("removed check b still runs (%d → %d)", before, after)
	}
	if s.RunNow("b") {
		t.Fatal("RunNow on a removed check succeeded")
	}
}
