package store

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
)

// Latency histogram.
//
// Every rollup row carries a fixed log-scale histogram of its latencies so
// that percentiles can be computed from rollups alone, and rollups of several
// regions or days can be merged exactly (bucket counts simply add up).
//
//   - bucket 0 holds latencies below histLowUS (0.1 ms);
//   - buckets 1..62 are log-spaced between 0.1 ms and 60 s: bucket k covers
//     [b(k-1), b(k)) with b(i) = 0.1 ms * f^i and f = 600000^(1/62) ≈ 1.2394;
//   - bucket 63 holds latencies of 60 s and more.
//
// A percentile is reported as the geometric midpoint of the bucket that holds
// the sample of that rank, clamped to the row's exact minimum and maximum.
// Inside 0.1 ms .. 60 s the estimate is therefore within a factor of
// √f ≈ 1.113 of the true sample: at most +11.4 % / −10.2 % relative error.
// Below 0.1 ms the absolute error is under 0.1 ms; above 60 s the exact
// maximum is reported.
const (
	histBuckets = 64
	histLowUS   = 100.0        // 0.1 ms in microseconds
	histHighUS  = 60_000_000.0 // 60 s in microseconds
)

// histBounds[i] is b(i) in microseconds, i = 0..62; histBounds[62] = 60 s.
var histBounds = func() [histBuckets - 1]float64 {
	var b [histBuckets - 1]float64
	step := math.Log(histHighUS/histLowUS) / float64(histBuckets-2)
	for i := range b {
		b[i] = histLowUS * math.Exp(step*float64(i))
	}
	b[len(b)-1] = histHighUS
	return b
}()

// histFactor is f, the ratio between two consecutive bucket bounds.
var histFactor = math.Pow(histHighUS/histLowUS, 1/float64(histBuckets-2))

// hist is a latency histogram: counts per bucket.
type hist [histBuckets]uint64

// bucketOf returns the bucket of a latency given in microseconds.
func bucketOf(us int64) int {
	v := float64(us)
	// The first bound greater than v is the bucket index: v < b(0) gives 0,
	// b(k-1) <= v < b(k) gives k and v >= b(62) gives 63.
	return sort.Search(len(histBounds), func(i int) bool { return histBounds[i] > v })
}

// bucketMid returns the representative value (microseconds) of bucket k.
func bucketMid(k int) float64 {
	switch {
	case k <= 0:
		return histLowUS / 2
	case k >= histBuckets-1:
		return histHighUS
	default:
		return math.Sqrt(histBounds[k-1] * histBounds[k])
	}
}

func (h *hist) add(us int64) { h[bucketOf(us)]++ }

func (h *hist) merge(o *hist) {
	for i := range h {
		h[i] += o[i]
	}
}

func (h *hist) total() uint64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	return n
}

// quantile returns the q-quantile (0 < q <= 1, nearest rank) in microseconds,
// clamped to [minUS, maxUS]. It returns 0 for an empty histogram.
func (h *hist) quantile(q float64, minUS, maxUS int64) int64 {
	n := h.total()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var cum uint64
	k := 0
	for i, c := range h {
		cum += c
		if cum >= rank {
			k = i
			break
		}
	}
	var v int64
	if k == histBuckets-1 {
		v = maxUS
	} else {
		v = int64(math.Round(bucketMid(k)))
	}
	if v < minUS {
		v = minUS
	}
	if v > maxUS {
		v = maxUS
	}
	return v
}

// encode returns the compact form stored in the hist BLOB column: for every
// non-empty bucket, one byte of bucket index followed by the count as an
// unsigned varint. An empty histogram encodes as an empty blob.
func (h *hist) encode(dst []byte) []byte {
	if dst == nil {
		dst = make([]byte, 0, 32) // never nil: nil would be stored as NULL
	}
	dst = dst[:0]
	for i, c := range h {
		if c == 0 {
			continue
		}
		dst = append(dst, byte(i))
		dst = binary.AppendUvarint(dst, c)
	}
	return dst
}

// appendTo appends the encoding of h to dst.
func (h *hist) appendTo(dst []byte) []byte {
	for i, c := range h {
		if c == 0 {
			continue
		}
		dst = append(dst, byte(i))
		dst = binary.AppendUvarint(dst, c)
	}
	return dst
}

var errBadHist = errors.New("store: malformed histogram blob")

// addEncoded adds the counts of an encoded histogram to h.
func (h *hist) addEncoded(b []byte) error {
	for len(b) > 0 {
		i := int(b[0])
		if i >= histBuckets {
			return errBadHist
		}
		c, n := binary.Uvarint(b[1:])
		if n <= 0 {
			return errBadHist
		}
		h[i] += c
		b = b[1+n:]
	}
	return nil
}
