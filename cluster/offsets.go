package cluster

import (
	"sync"
	"time"
)

// Peers' clocks are not ours. Every envelope carries its origin's clock
// when it was made (the stamp, unix ns); stamp - (our clock when it
// arrived) is the origin's clock offset minus the message's delay, so the
// largest such sample of the last offsetWindow (the fastest message) is
// the estimate. Samples are kept per origin in offsetBuckets buckets.
const (
	offsetWindow  = 2 * time.Minute
	offsetBuckets = 4
)

// offsets estimates each origin's clock offset from this node's.
type offsets struct {
	mu sync.Mutex
	m  map[string]*offsetSamples
}

type offsetSamples struct {
	bucket [offsetBuckets]struct {
		start time.Time
		max   time.Duration
		ok    bool
	}
}

// add records one message of origin stamped at stamp and received at now.
func (o *offsets) add(origin string, stamp uint64, now time.Time) {
	if stamp == 0 || stamp > 1<<62 {
		return
	}
	sample := time.Duration(int64(stamp) - now.UnixNano())
	span := offsetWindow / offsetBuckets
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]*offsetSamples{}
	}
	s := o.m[origin]
	if s == nil {
		if len(o.m) >= maxOffsetOrigins {
			return
		}
		s = &offsetSamples{}
		o.m[origin] = s
	}
	i := int(now.UnixNano()/int64(span)) % offsetBuckets
	b := &s.bucket[i]
	start := now.Truncate(span)
	if !b.ok || !b.start.Equal(start) {
		b.start, b.max, b.ok = start, sample, true
		return
	}
	b.max = max(b.max, sample)
}

// maxOffsetOrigins bounds the origins whose offsets are kept.
const maxOffsetOrigins = 4096

// estimate returns origin's offset as of now (ok false without a sample
// in the window).
func (o *offsets) estimate(origin string, now time.Time) (time.Duration, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.m[origin]
	if s == nil {
		return 0, false
	}
	var best time.Duration
	found := false
	for _, b := range s.bucket {
		if !b.ok || now.Sub(b.start) > offsetWindow {
			continue
		}
		if !found || b.max > best {
			best, found = b.max, true
		}
	}
	return best, found
}

// forget drops an origin (it left or was pruned with the dead).
func (o *offsets) forget(origin string) {
	o.mu.Lock()
	delete(o.m, origin)
	o.mu.Unlock()
}

// ClockOffset is the estimated offset of node's clock from this node's
// (positive: ahead), from the stamps of its recent messages; ok is false
// without one in the last two minutes.
func (c *Cluster) ClockOffset(node string) (time.Duration, bool) {
	return c.offsets.estimate(node, c.now())
}
