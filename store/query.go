package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"time"
)

// NoData is the Uptime value reported for a period without results.
const NoData = -1.0

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func msDur(ms float64) time.Duration {
	return time.Duration(math.Round(ms * float64(time.Millisecond)))
}

func usDur(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// History returns the raw results of a check with from <= Time < to, oldest
// first. With limit > 0 and more rows in range it returns the newest limit
// of them (still oldest first). Raw results are kept for Options.RetainRaw.
func (s *Store) History(ctx context.Context, check string, from, to time.Time, limit int) ([]Result, error) {
	q := `SELECT node, region, ts, ok, latency_ms, dns_ms, connect_ms, tls_ms, first_byte_ms, code, message
		FROM results WHERE check_name = ? AND ts >= ? AND ts < ? ORDER BY ts DESC, id DESC`
	args := []any{check, from.UnixMilli(), to.UnixMilli()}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	defer rows.Close()
	var out []Result
	for rows.Next() {
		var (
			r                        Result
			ts                       int64
			ok                       int64
			lat                      float64
			dns, conn, tlsMS, firstB sql.NullFloat64
		)
		if err := rows.Scan(&r.Node, &r.Region, &ts, &ok, &lat, &dns, &conn, &tlsMS, &firstB, &r.Code, &r.Message); err != nil {
			return nil, fmt.Errorf("store: history: %w", err)
		}
		r.Check = check
		r.Time = msTime(ts)
		r.OK = ok != 0
		r.Latency = msDur(lat)
		r.DNS = msDur(dns.Float64)
		r.Connect = msDur(conn.Float64)
		r.TLS = msDur(tlsMS.Float64)
		r.FirstByte = msDur(firstB.Float64)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

// Aggregate is what a rollup holds about a period: counts, uptime and
// latency statistics. Latency statistics cover the results with a measured
// latency (Latency > 0), failures included; they are 0 without any.
type Aggregate struct {
	Count, Failures int64
	// Uptime is (Count-Failures)/Count, or NoData (-1) when Count is 0.
	Uptime     float64
	MinLatency time.Duration
	AvgLatency time.Duration
	MaxLatency time.Duration
	// P95Latency is estimated from a log-scale histogram: within a factor
	// of 1.113 of the true 95th percentile (see the package comment).
	P95Latency time.Duration
}

// HasData reports whether the period has any result.
func (a Aggregate) HasData() bool { return a.Count > 0 }

func (a *agg) aggregate() Aggregate {
	out := Aggregate{Count: a.count, Failures: a.failures, Uptime: NoData}
	if a.count > 0 {
		out.Uptime = float64(a.count-a.failures) / float64(a.count)
	}
	if a.latN > 0 {
		out.MinLatency = usDur(a.latMin)
		out.MaxLatency = usDur(a.latMax)
		out.AvgLatency = usDur(int64(math.Round(float64(a.latSum) / float64(a.latN))))
		out.P95Latency = usDur(a.h.quantile(0.95, a.latMin, a.latMax))
	}
	return out
}

// DayStat is one UTC day of a check.
type DayStat struct {
	Day time.Time // 00:00 UTC
	Aggregate
}

// MinuteStat is one minute of a check.
type MinuteStat struct {
	Minute time.Time // start of the minute, UTC
	Aggregate
}

// startAgg is the merged rollup of one minute or day.
type startAgg struct {
	start int64
	a     agg
}

// rollups reads the rollup rows of check with from <= start <= to, merged
// over regions (or of one region when region != ""), oldest first.
func (s *Store) rollups(ctx context.Context, daily bool, check, region string, from, to int64) ([]startAgg, error) {
	table, col := "minute_rollups", "minute"
	if daily {
		table, col = "daily_rollups", "day"
	}
	// The primary key (check_name, start, region) returns rows grouped by
	// start, so merging needs no map.
	q := fmt.Sprintf(`SELECT %[2]s, count, failures, lat_count, lat_min_us, lat_max_us, lat_sum_us, hist
		FROM %[1]s WHERE check_name = ? AND %[2]s >= ? AND %[2]s <= ?`, table, col)
	args := []any{check, from, to}
	if region != "" {
		q += ` AND region = ?`
		args = append(args, region)
	}
	q += fmt.Sprintf(` ORDER BY %s`, col)
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: read rollups: %w", err)
	}
	defer rows.Close()
	var (
		out  []startAgg
		row  agg
		blob sql.RawBytes
	)
	for rows.Next() {
		var start int64
		row.latN, row.latMin, row.latMax = 0, 0, 0
		if err := rows.Scan(&start, &row.count, &row.failures, &row.latN, &row.latMin, &row.latMax, &row.latSum, &blob); err != nil {
			return nil, fmt.Errorf("store: read rollups: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].start != start {
			out = append(out, startAgg{start: start})
		}
		cur := &out[len(out)-1].a
		// merge without materialising the row's histogram
		h := cur.h
		cur.merge(&row)
		cur.h = h
		if err := cur.h.addEncoded(blob); err != nil {
			return nil, fmt.Errorf("store: read rollups: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read rollups: %w", err)
	}
	return out, nil
}

// DailyUptime returns one entry per UTC day for the last days days up to
// and including now's day, oldest first, aggregated over all regions. Days
// without results are present with Count 0 and Uptime NoData.
func (s *Store) DailyUptime(ctx context.Context, check string, days int, now time.Time) ([]DayStat, error) {
	return s.DailyUptimeRegion(ctx, check, "", days, now)
}

// DailyUptimeRegion is DailyUptime restricted to one region ("" = all).
func (s *Store) DailyUptimeRegion(ctx context.Context, check, region string, days int, now time.Time) ([]DayStat, error) {
	if days <= 0 {
		return nil, nil
	}
	today := floorTo(now.UnixMilli(), dayMS)
	first := today - int64(days-1)*dayMS
	rs, err := s.rollups(ctx, true, check, region, first, today)
	if err != nil {
		return nil, err
	}
	out := make([]DayStat, days)
	var empty agg
	j := 0
	for i := range out {
		d := first + int64(i)*dayMS
		a := &empty
		if j < len(rs) && rs[j].start == d {
			a = &rs[j].a
			j++
		}
		out[i] = DayStat{Day: msTime(d), Aggregate: a.aggregate()}
	}
	return out, nil
}

// MinuteStats returns per-minute statistics of a check for the minutes that
// start in [from, to), oldest first, merged over regions (region "") or of
// one region. Only minutes with results are returned. Minute rollups are
// kept for Options.RetainMinute.
func (s *Store) MinuteStats(ctx context.Context, check, region string, from, to time.Time) ([]MinuteStat, error) {
	lo := floorTo(from.UnixMilli(), minuteMS)
	if lo < from.UnixMilli() {
		lo += minuteMS
	}
	hi := to.UnixMilli() - 1
	if hi < lo {
		return nil, nil
	}
	rs, err := s.rollups(ctx, false, check, region, lo, hi)
	if err != nil {
		return nil, err
	}
	out := make([]MinuteStat, len(rs))
	for i := range rs {
		out[i] = MinuteStat{Minute: msTime(rs[i].start), Aggregate: rs[i].a.aggregate()}
	}
	return out, nil
}

// Uptime returns the fraction of successful results of check over the
// window ending at now, all regions together, or NoData (-1) without
// results. Windows up to 30 days (or RetainMinute, if shorter) use minute
// rollups and count every minute that overlaps the window; longer windows
// use daily rollups and count every UTC day that overlaps it.
func (s *Store) Uptime(ctx context.Context, check string, window time.Duration, now time.Time) (float64, error) {
	from := now.Add(-window).UnixMilli()
	to := now.UnixMilli()
	horizon := 30 * 24 * time.Hour
	if r := s.opts.RetainMinute; r > 0 && r < horizon {
		horizon = r
	}
	var q string
	if window <= horizon {
		q = `SELECT coalesce(sum(count), 0), coalesce(sum(failures), 0) FROM minute_rollups
			WHERE check_name = ? AND minute >= ? AND minute <= ?`
		from = floorTo(from, minuteMS)
	} else {
		q = `SELECT coalesce(sum(count), 0), coalesce(sum(failures), 0) FROM daily_rollups
			WHERE check_name = ? AND day >= ? AND day <= ?`
		from = floorTo(from, dayMS)
	}
	var n, f int64
	if err := s.rdb.QueryRowContext(ctx, q, check, from, to).Scan(&n, &f); err != nil {
		return 0, fmt.Errorf("store: uptime: %w", err)
	}
	if n == 0 {
		return NoData, nil
	}
	return float64(n-f) / float64(n), nil
}

// Checks returns the names of the checks that have daily rollups, sorted.
func (s *Store) Checks(ctx context.Context) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT DISTINCT check_name FROM daily_rollups ORDER BY check_name`)
	if err != nil {
		return nil, fmt.Errorf("store: checks: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("store: checks: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
