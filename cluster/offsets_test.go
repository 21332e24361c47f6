package cluster

import (
	"strconv"
	"testing"
	"time"
)

// The estimate is the largest sample of the window: the fastest message's
// stamp minus its arrival; old buckets age out.
func TestOffsetEstimate(t *testing.T) {
	var o offsets
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	stamp := func(at time.Time, skew, delay time.Duration) uint64 {
		return uint64(at.Add(skew).Add(-delay).UnixNano())
	}
	skew := 10 * time.Minute
	for i, delay := range []time.Duration{40 * time.Millisecond, 3 * time.Millisecond, 900 * time.Millisecond} {
		now := t0.Add(time.Duration(i) * time.Second)
		o.add("us-1", stamp(now, skew, delay), now)
	}
	got, ok := o.estimate("us-1", t0.Add(3*time.Second))
	if !ok || got != skew-3*time.Millisecond {
		t.Fatalf("estimate %v %v, want %v (the fastest sample)", got, ok, skew-3*time.Millisecond)
	}
	if _, ok := o.estimate("us-1", t0.Add(offsetWindow+time.Minute)); ok {
		t.Fatal("an estimate from samples older than the window")
	}
	if _, ok := o.estimate("ap-1", t0); ok {
		t.Fatal("an estimate of a node never heard")
	}
	for i := range maxOffsetOrigins + 10 {
		o.add("n"+strconv.Itoa(i), stamp(t0, 0, 0), t0)
	}
	if len(o.m) > maxOffsetOrigins {
		t.Fatalf("%d origins kept", len(o.m))
	}
}

// A peer whose clock is ten minutes ahead is seen ten minutes ahead.
func TestClockOffsetOfAPeer(t *testing.T) {
	key := testKey(t)
	a := start(t, "a", "eu", key, nil)
	b := start(t, "b", "us", key, []string{a.LocalAddr()}, func(c *Config) {
		c.Now = func() time.Time { return time.Now().Add(10 * time.Minute) }
	})
	waitFor(t, 10*time.Second, "b joined", func() bool { return a.NumAlive() == 2 })
	for i := 0; ; i++ {
		if err := b.kv.Broadcast("k", []byte("v"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		if off, ok := a.ClockOffset("b"); ok {
			if d := off - 10*time.Minute; d > 0 || d < -time.Second {
				t.Fatalf("a sees b %v ahead, want about 10m", off)
			}
			break
		}
		if i > 200 {
			t.Fatal("no offset estimate of b")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
