package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
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

// startAgg is the merged buckets of one start.
type startAgg struct {
	start int64
	a     agg
}

// nodeList returns the known nodes as an SQL list of placeholders and
// their arguments; with none it returns ok false.
func (s *Store) nodeList() (string, []any, bool) {
	nodes := s.Origins()
	if len(nodes) == 0 {
		return "", nil, false
	}
	args := make([]any, len(nodes))
	for i, n := range nodes {
		args[i] = n
	}
	return "?" + strings.Repeat(",?", len(nodes)-1), args, true
}

// scanBuckets reads check's buckets of step with from <= start < to (of
// one region unless region is ""), every node's, and calls fn for each.
// Rows come node by node, each node's by start.
func (s *Store) scanBuckets(ctx context.Context, check, region string, step Step, from, to int64, fn func(start int64, region string, a *agg)) error {
	list, nodes, ok := s.nodeList()
	if !ok || from >= to {
		return nil
	}
	q := `SELECT start, region, count, failures, lat_count, lat_min_us, lat_max_us, lat_sum_us, hist FROM series
		WHERE check_name = ? AND node IN (` + list + `) AND step = ? AND start >= ? AND start < ?`
	args := append(append([]any{check}, nodes...), int64(step), from, to)
	if region != "" {
		q += ` AND region = ?`
		args = append(args, region)
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: read buckets: %w", err)
	}
	defer rows.Close()
	var (
		a    agg
		reg  string
		blob sql.RawBytes
	)
	for rows.Next() {
		var start int64
		a = agg{}
		if err := rows.Scan(&start, &reg, &a.count, &a.failures, &a.latN, &a.latMin, &a.latMax, &a.latSum, &blob); err != nil {
			return fmt.Errorf("store: read buckets: %w", err)
		}
		if err := a.h.addEncoded(blob); err != nil {
			return fmt.Errorf("store: read buckets: %w", err)
		}
		fn(start, reg, &a)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read buckets: %w", err)
	}
	return nil
}

// merged reads check's buckets of step with from <= start < to, merged
// over nodes (and over regions, or of one region when region != ""),
// oldest first.
func (s *Store) merged(ctx context.Context, check, region string, step Step, from, to int64) ([]startAgg, error) {
	byStart := map[int64]*agg{}
	err := s.scanBuckets(ctx, check, region, step, from, to, func(start int64, _ string, a *agg) {
		m := byStart[start]
		if m == nil {
			m = new(agg)
			byStart[start] = m
		}
		m.merge(a)
	})
	if err != nil {
		return nil, err
	}
	out := make([]startAgg, 0, len(byStart))
	for st, a := range byStart {
		out = append(out, startAgg{start: st, a: *a})
	}
	slices.SortFunc(out, func(a, b startAgg) int { return cmpInt(a.start, b.start) })
	return out, nil
}

// SeriesPoint is one bucket of a region: the sum of its nodes' buckets.
type SeriesPoint struct {
	Start time.Time
	Agg   Agg
}

// Series returns check's buckets of step with from <= start < to, per
// region, each region's bucket the sum of its nodes', oldest first; only
// buckets with results.
func (s *Store) Series(ctx context.Context, check string, step Step, from, to time.Time) (map[string][]SeriesPoint, error) {
	if !step.Valid() {
		return nil, fmt.Errorf("store: bad step %d", step)
	}
	type rk struct {
		region string
		start  int64
	}
	sums := map[rk]*agg{}
	err := s.scanBuckets(ctx, check, "", step, from.UnixMilli(), to.UnixMilli(), func(start int64, region string, a *agg) {
		k := rk{region, start}
		m := sums[k]
		if m == nil {
			m = new(agg)
			sums[k] = m
		}
		m.merge(a)
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]SeriesPoint{}
	for k, a := range sums {
		if a.count > 0 {
			out[k.region] = append(out[k.region], SeriesPoint{Start: msTime(k.start), Agg: a.export()})
		}
	}
	for _, ps := range out {
		slices.SortFunc(ps, func(a, b SeriesPoint) int { return a.Start.Compare(b.Start) })
	}
	return out, nil
}

// sums returns the sums of count and failures of check's buckets of step
// with from <= start < to, every node's.
func (s *Store) sums(ctx context.Context, check string, step Step, from, to int64) (n, f int64, err error) {
	list, nodes, ok := s.nodeList()
	if !ok || from >= to {
		return 0, 0, nil
	}
	q := `SELECT coalesce(sum(count), 0), coalesce(sum(failures), 0) FROM series
		WHERE check_name = ? AND node IN (` + list + `) AND step = ? AND start >= ? AND start < ?`
	args := append(append([]any{check}, nodes...), int64(step), from, to)
	if err := s.rdb.QueryRowContext(ctx, q, args...).Scan(&n, &f); err != nil {
		return 0, 0, fmt.Errorf("store: sum buckets: %w", err)
	}
	return n, f, nil
}

// Total sums check's results over the minutes that start in [from, to)
// (from and to are rounded down to the minute), every region's: the whole
// hours from hour buckets, the minutes at either end from minute buckets.
// With every node's buckets held, it equals the sum of the minute buckets.
func (s *Store) Total(ctx context.Context, check string, from, to time.Time) (count, failures int64, err error) {
	lo, hi := floorTo(from.UnixMilli(), minuteMS), floorTo(to.UnixMilli(), minuteMS)
	if lo >= hi {
		return 0, 0, nil
	}
	hlo, hhi := floorTo(lo+hourMS-1, hourMS), floorTo(hi, hourMS)
	parts := [][3]int64{{int64(StepMinute), lo, hi}}
	if hlo < hhi {
		parts = [][3]int64{{int64(StepMinute), lo, hlo}, {int64(StepHour), hlo, hhi}, {int64(StepMinute), hhi, hi}}
	}
	for _, p := range parts {
		n, f, err := s.sums(ctx, check, Step(p[0]), p[1], p[2])
		if err != nil {
			return 0, 0, err
		}
		count += n
		failures += f
	}
	return count, failures, nil
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
	rs, err := s.merged(ctx, check, region, StepDay, first, today+dayMS)
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
// one region. Only minutes with results are returned. Minute buckets are
// kept for Options.RetainMinute.
func (s *Store) MinuteStats(ctx context.Context, check, region string, from, to time.Time) ([]MinuteStat, error) {
	lo := floorTo(from.UnixMilli(), minuteMS)
	if lo < from.UnixMilli() {
		lo += minuteMS
	}
	rs, err := s.merged(ctx, check, region, StepMinute, lo, to.UnixMilli())
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
// buckets and count every minute that overlaps the window; longer windows
// use day buckets and count every UTC day that overlaps it.
func (s *Store) Uptime(ctx context.Context, check string, window time.Duration, now time.Time) (float64, error) {
	from := now.Add(-window).UnixMilli()
	to := now.UnixMilli() + 1
	horizon := 30 * 24 * time.Hour
	if r := s.opts.RetainMinute; r > 0 && r < horizon {
		horizon = r
	}
	step, unit := StepMinute, minuteMS
	if window > horizon {
		step, unit = StepDay, dayMS
	}
	n, f, err := s.sums(ctx, check, step, floorTo(from, unit), to)
	if err != nil {
		return 0, fmt.Errorf("store: uptime: %w", err)
	}
	if n == 0 {
		return NoData, nil
	}
	return float64(n-f) / float64(n), nil
}

// Checks returns the names of the checks that have buckets, sorted.
func (s *Store) Checks(ctx context.Context) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT DISTINCT check_name FROM series ORDER BY check_name`)
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
