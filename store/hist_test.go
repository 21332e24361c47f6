package store

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistBuckets(t *testing.T) {
	if got := bucketOf(0); got != 0 {
		t.Fatalf("bucketOf(0) = %d", got)
	}
	if got := bucketOf(99); got != 0 {
		t.Fatalf("bucketOf(99us) = %d", got)
	}
	if got := bucketOf(100); got != 1 {
		t.Fatalf("bucketOf(100us) = %d, want 1", got)
	}
	if got := bucketOf(59_999_999); got != 62 {
		t.Fatalf("bucketOf(60s-1us) = %d, want 62", got)
	}
	if got := bucketOf(60_000_000); got != 63 {
		t.Fatalf("bucketOf(60s) = %d, want 63", got)
	}
	if got := bucketOf(1 << 40); got != 63 {
		t.Fatalf("bucketOf(huge) = %d", got)
	}
	// Monotone, and every bucket 1..62 reachable.
	prev := 0
	seen := map[int]bool{}
	for us := int64(0); us < 70_000_000; us = us*101/100 + 1 {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("not monotone at %d", us)
		}
		prev = b
		seen[b] = true
	}
	if len(seen) != histBuckets {
		t.Fatalf("reached %d buckets, want %d", len(seen), histBuckets)
	}
	if math.Abs(histFactor-1.2394) > 0.001 {
		t.Fatalf("factor %v", histFactor)
	}
}

func TestHistEncodeRoundTrip(t *testing.T) {
	var h hist
	if b := h.encode(nil); len(b) != 0 {
		t.Fatalf("empty histogram encodes to %d bytes", len(b))
	}
	h[0] = 1
	h[5] = 300
	h[63] = 1 << 40
	b := h.encode(nil)
	var g hist
	if err := g.addEncoded(b); err != nil {
		t.Fatal(err)
	}
	if g != h {
		t.Fatalf("round trip: %v != %v", g, h)
	}
	if err := g.addEncoded([]byte{64, 1}); err == nil {
		t.Fatal("bucket 64 accepted")
	}
	if err := g.addEncoded([]byte{3}); err == nil {
		t.Fatal("truncated blob accepted")
	}
}

// TestHistP95ErrorBound checks the documented bound on random samples.
func TestHistP95ErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bound := math.Sqrt(histFactor) * (1 + 1e-9)
	for trial := 0; trial < 500; trial++ {
		n := 1 + rng.IntN(3000)
		xs := make([]int64, n)
		var h hist
		// log-uniform between 100us and 60s, sometimes a narrow range
		lo, hi := math.Log(100), math.Log(60e6)
		if trial%2 == 0 {
			c := lo + rng.Float64()*(hi-lo)
			lo, hi = max(lo, c-0.5), min(hi, c+0.5)
		}
		for i := range xs {
			xs[i] = int64(math.Exp(lo + rng.Float64()*(hi-lo)))
			h.add(xs[i])
		}
		slices.Sort(xs)
		rank := int(math.Ceil(0.95 * float64(n)))
		want := xs[rank-1]
		got := h.quantile(0.95, xs[0], xs[n-1])
		// plus 0.5 us: the estimate is rounded to whole microseconds
		ratio := float64(got) / float64(want)
		if float64(got) > float64(want)*bound+0.5 || float64(got) < float64(want)/bound-0.5 {
			t.Fatalf("trial %d n=%d: p95 %d, true %d, ratio %.4f outside ±%.4f", trial, n, got, want, ratio, bound)
		}
	}
}

func TestHistQuantileEdges(t *testing.T) {
	var h hist
	if got := h.quantile(0.95, 0, 0); got != 0 {
		t.Fatalf("empty: %d", got)
	}
	h.add(5000)
	if got := h.quantile(0.95, 5000, 5000); got != 5000 {
		t.Fatalf("single sample: %d, want clamped to 5000", got)
	}
	var o hist
	o.add(90_000_000)
	o.add(120_000_000)
	if got := o.quantile(0.95, 90_000_000, 120_000_000); got != 120_000_000 {
		t.Fatalf("overflow bucket: %d, want max", got)
	}
}
