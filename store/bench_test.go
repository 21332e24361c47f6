package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var benchRegions = []string{"eu-west", "us-east", "ap-south", "sa-east", "af-south"}

// benchResults returns n results of 50 checks in 5 regions, one result per
// check and region every 30 s, starting at t0.
func benchResults(n int) []Result {
	rng := rand.New(rand.NewPCG(7, 8))
	rs := make([]Result, n)
	for i := range rs {
		slot := i / 250 // 50 checks × 5 regions per 30 s round
		rs[i] = Result{
			Node:    "node-" + benchRegions[i%5],
			Region:  benchRegions[i%5],
			Check:   fmt.Sprintf("check-%02d", (i/5)%50),
			Time:    t0.Add(time.Duration(slot)*30*time.Second + time.Duration(i%250)*time.Millisecond),
			OK:      rng.IntN(100) != 0,
			Latency: time.Duration(math.Exp(rng.NormFloat64()*0.5+math.Log(40e3))) * time.Microsecond,
			DNS:     2 * time.Millisecond, Connect: 5 * time.Millisecond, TLS: 12 * time.Millisecond, FirstByte: 20 * time.Millisecond,
		}
		if !rs[i].OK {
			rs[i].Code, rs[i].Message = "timeout", "context deadline exceeded"
		}
	}
	return rs
}

// BenchmarkInsert measures the write path: Add per result, batched commits
// (BatchSize 500) with raw insert and minute + daily rollup upserts.
func BenchmarkInsert(b *testing.B) {
	for _, mode := range []string{"Add", "AddBatch"} {
		b.Run(mode, func(b *testing.B) {
			s := openTest(b, "", Options{BatchSize: 500, FlushInterval: time.Second})
			rs := benchResults(b.N)
			ctx := ctxT(b)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			if mode == "Add" {
				for i := range rs {
					s.Add(rs[i])
				}
			} else {
				for i := 0; i < len(rs); i += 500 {
					s.AddBatch(rs[i:min(i+500, len(rs))])
				}
			}
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "results/s")
			if st := s.Stats(); st.ResultsWritten != uint64(b.N) || st.Dropped != 0 {
				b.Fatalf("written %d dropped %d of %d", st.ResultsWritten, st.Dropped, b.N)
			}
		})
	}
}

// BenchmarkDailyUptime90 measures the 90-day bar of one check with 90 days
// × 5 regions of daily rollups (20 checks in the table), each row holding
// the histogram of 2880 results (one every 30 s).
func BenchmarkDailyUptime90(b *testing.B) {
	s := openTest(b, "", Options{})
	ctx := ctxT(b)
	rng := rand.New(rand.NewPCG(9, 10))
	now := t0
	today := floorTo(now.UnixMilli(), dayMS)
	for c := 0; c < 20; c++ {
		var bs []Bucket
		for d := 0; d < 90; d++ {
			for _, reg := range benchRegions {
				var a agg
				for i := 0; i < 2880; i++ {
					r := Result{OK: rng.IntN(500) != 0, Latency: time.Duration(math.Exp(rng.NormFloat64()*0.6+math.Log(40e3))) * time.Microsecond}
					a.add(&r)
				}
				bs = append(bs, Bucket{Check: fmt.Sprintf("check-%02d", c), Node: reg, Region: reg, Step: StepDay,
					Start: msTime(today - int64(d)*dayMS), Agg: a.export()})
			}
		}
		if !s.MergeBuckets(bs) {
			b.Fatal("queue full")
		}
	}
	mustFlush(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		days, err := s.DailyUptime(ctx, "check-07", 90, now)
		if err != nil {
			b.Fatal(err)
		}
		if len(days) != 90 || days[0].Count != 5*2880 || days[89].P95Latency == 0 {
			b.Fatalf("unexpected result %+v", days[0])
		}
	}
}

// BenchmarkMinuteStats24h is the latency chart of one check over 24 hours,
// all regions merged (1440 minutes × 5 regions of minute rollups).
func BenchmarkMinuteStats24h(b *testing.B) {
	s := openTest(b, "", Options{BatchSize: 1000})
	ctx := ctxT(b)
	// 24h of one check, 5 regions, a result every 30 s: 14400 results
	var rs []Result
	rng := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 2880; i++ {
		for _, reg := range benchRegions {
			rs = append(rs, Result{Node: reg, Region: reg, Check: "api", Time: t0.Add(-24 * time.Hour).Add(time.Duration(i) * 30 * time.Second),
				OK: true, Latency: time.Duration(20+rng.IntN(100)) * time.Millisecond})
		}
	}
	s.AddBatch(rs)
	mustFlush(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ms, err := s.MinuteStats(ctx, "api", "", t0.Add(-24*time.Hour), t0)
		if err != nil || len(ms) != 1440 {
			b.Fatalf("%d %v", len(ms), err)
		}
	}
}
