package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// SeedDailyForBench merges one day bucket per check, region and day for
// days days from first (one node per region, named after it): copies of 64
// buckets made from 2880 results each (one every 30 s, log-normal
// latencies around 40 ms, 0.2 % failures).
func SeedDailyForBench(tb testing.TB, s *Store, checks, regions []string, first time.Time, days int) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(21, 22))
	var rows [64]Agg
	for i := range rows {
		var a agg
		for range 2880 {
			r := Result{OK: rng.IntN(500) != 0, Latency: time.Duration(math.Exp(rng.NormFloat64()*0.6+math.Log(40e3))) * time.Microsecond}
			a.add(&r)
		}
		rows[i] = a.export()
	}
	day0 := floorTo(first.UnixMilli(), dayMS)
	var bs []Bucket
	flush := func() {
		if !s.MergeBuckets(bs) {
			tb.Fatal("merge refused")
		}
		if err := s.Flush(ctxT(tb)); err != nil {
			tb.Fatal(err)
		}
		bs = bs[:0]
	}
	for _, c := range checks {
		for d := range days {
			for _, reg := range regions {
				bs = append(bs, Bucket{Check: c, Node: reg + "-1", Region: reg, Step: StepDay,
					Start: msTime(day0 + int64(d)*dayMS), Agg: rows[rng.IntN(len(rows))]})
				if len(bs) == 5000 {
					flush()
				}
			}
		}
	}
	flush()
	if st := s.Stats(); st.ResultsFailed != 0 {
		tb.Fatal(fmt.Sprint("merge failed: ", st))
	}
}
