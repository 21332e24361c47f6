package store

import (
	"database/sql"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// SeedDailyForBench inserts one daily rollup row per check, region and day
// for days days from first: copies of 64 rows made from 2880 results each
// (one every 30 s, log-normal latencies around 40 ms, 0.2 % failures).
func SeedDailyForBench(tb testing.TB, s *Store, checks, regions []string, first time.Time, days int) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(21, 22))
	var rows [64]struct {
		a    agg
		blob []byte
	}
	for i := range rows {
		for range 2880 {
			r := Result{OK: rng.IntN(500) != 0, Latency: time.Duration(math.Exp(rng.NormFloat64()*0.6+math.Log(40e3))) * time.Microsecond}
			rows[i].a.add(&r)
		}
		rows[i].blob = rows[i].a.h.encode(nil)
	}
	day0 := floorTo(first.UnixMilli(), dayMS)
	err := s.exec(ctxT(tb), func(tx *sql.Tx) error {
		st, err := tx.Prepare(`INSERT INTO daily_rollups(check_name, day, region, count, failures, lat_count, lat_min_us, lat_max_us, lat_sum_us, hist)
			VALUES (?,?,?,?,?,?,?,?,?,?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, c := range checks {
			for d := range days {
				for _, reg := range regions {
					r := &rows[rng.IntN(len(rows))]
					if _, err := st.Exec(c, day0+int64(d)*dayMS, reg, r.a.count, r.a.failures, r.a.latN,
						r.a.latMin, r.a.latMax, r.a.latSum, r.blob); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}
