package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Queries for SLA reports (package report): everything a period's report
// needs, read in a handful of queries over all checks at once, so that a
// report of a thousand checks over 90 days costs a few hundred milliseconds
// of reading, not a thousand round trips.

// Rollup is a mergeable aggregate of rollup rows: counts and the latency
// histogram, merged exactly across regions, days and checks.
type Rollup struct{ a agg }

// Merge adds o to r.
func (r *Rollup) Merge(o *Rollup) {
	if o != nil {
		r.a.merge(&o.a)
	}
}

// Aggregate returns the counts, uptime and latency statistics (P95 from the
// histogram; see the package comment for its precision).
func (r *Rollup) Aggregate() Aggregate { return r.a.aggregate() }

// Count is the number of results merged into r.
func (r *Rollup) Count() int64 { return r.a.count }

// DaySummary is one UTC day of one check in one region, or the part of
// that day inside the period.
type DaySummary struct {
	Day      time.Time // 00:00 UTC
	Count    int64
	Failures int64
	// P95 is the 95th percentile latency of the day's results with a
	// measured latency; 0 without any.
	P95 time.Duration
}

// RegionRollups is one check's rollups in one region over a period.
type RegionRollups struct {
	Total Rollup
	// Days has one entry per UTC day with results, oldest first.
	Days []DaySummary

	day    agg // the day being read (rows of one day may come in parts)
	dayAt  int64
	dayHas bool
}

// addDay merges a row of the day that starts at day; days come in order.
func (rr *RegionRollups) addDay(day int64, row *agg) {
	if rr.dayHas && rr.dayAt != day {
		rr.flushDay()
	}
	rr.dayAt, rr.dayHas = day, true
	rr.day.merge(row)
}

func (rr *RegionRollups) flushDay() {
	if rr.dayHas {
		rr.Days = append(rr.Days, daySummary(rr.dayAt, &rr.day))
		rr.day, rr.dayHas = agg{}, false
	}
}

// ReportRollups returns the rollups of checks in [from, to), by check and
// region (a check without results is absent). Whole UTC days inside the period come
// from the daily rollups. A partial day at either end comes from the
// minute rollups (minutes that start inside the period) while they are
// retained, else from the whole day's daily rollup; retention is judged
// against now, so a report of old history uses whole days at its edges.
func (s *Store) ReportRollups(ctx context.Context, checks []string, from, to, now time.Time) (map[string]map[string]*RegionRollups, error) {
	lo, hi := from.UnixMilli(), to.UnixMilli()
	if hi <= lo {
		return map[string]map[string]*RegionRollups{}, nil
	}
	firstFull := floorTo(lo, dayMS)
	if firstFull < lo {
		firstFull += dayMS
	}
	lastEnd := floorTo(hi, dayMS) // whole days are [firstFull, lastEnd)
	minuteHorizon := int64(-1 << 62)
	if r := s.opts.RetainMinute; r > 0 {
		minuteHorizon = now.Add(-r).UnixMilli()
	}

	out := map[string]map[string]*RegionRollups{}
	cur := func(check, region string) *RegionRollups {
		m := out[check]
		if m == nil {
			m = map[string]*RegionRollups{}
			out[check] = m
		}
		rr := m[region]
		if rr == nil {
			rr = &RegionRollups{}
			m[region] = rr
		}
		return rr
	}

	// dayRange reads daily rows with day in [a, b).
	dayRange := func(a, b int64) error {
		if b <= a {
			return nil
		}
		return s.scanRollups(ctx, `SELECT check_name, region, day, count, failures, lat_count, lat_min_us, lat_max_us, lat_sum_us, hist
			FROM daily_rollups WHERE check_name = ? AND day >= ? AND day < ? ORDER BY day, region`, checks, a, b,
			func(check, region string, start int64, row *agg) {
				rr := cur(check, region)
				rr.Total.a.merge(row)
				rr.addDay(start, row)
			})
	}
	// partial reads the part [a, b) of the day that starts at day: minute
	// rollups while retained, else the whole daily row.
	partial := func(day, a, b int64) error {
		if b <= a {
			return nil
		}
		if day+dayMS <= minuteHorizon || a < minuteHorizon {
			return dayRange(day, day+dayMS)
		}
		ma := floorTo(a, minuteMS)
		if ma < a {
			ma += minuteMS
		}
		byKey := map[[2]string]*agg{}
		var order [][2]string
		err := s.scanRollups(ctx, `SELECT check_name, region, minute, count, failures, lat_count, lat_min_us, lat_max_us, lat_sum_us, hist
			FROM minute_rollups WHERE check_name = ? AND minute >= ? AND minute < ? ORDER BY minute, region`, checks, ma, b,
			func(check, region string, _ int64, row *agg) {
				k := [2]string{check, region}
				d := byKey[k]
				if d == nil {
					d = &agg{}
					byKey[k] = d
					order = append(order, k)
				}
				d.merge(row)
			})
		if err != nil {
			return err
		}
		for _, k := range order {
			d := byKey[k]
			rr := cur(k[0], k[1])
			rr.Total.a.merge(d)
			rr.addDay(day, d)
		}
		return nil
	}

	var err error
	if lastEnd < firstFull { // the period lies inside one UTC day
		err = partial(floorTo(lo, dayMS), lo, hi)
	} else {
		err = partial(floorTo(lo, dayMS), lo, firstFull)
		if err == nil {
			err = dayRange(firstFull, lastEnd)
		}
		if err == nil {
			err = partial(lastEnd, lastEnd, hi)
		}
	}
	if err != nil {
		return nil, err
	}
	for _, m := range out {
		for _, rr := range m {
			rr.flushDay()
		}
	}
	return out, nil
}

func daySummary(day int64, a *agg) DaySummary {
	d := DaySummary{Day: msTime(day), Count: a.count, Failures: a.failures}
	if a.latN > 0 {
		d.P95 = usDur(a.h.quantile(0.95, a.latMin, a.latMax))
	}
	return d
}

// scanRollups runs q (check, region, start, then the rollup columns) once
// per check, with the check and [a, b) as arguments (the primary key's
// order: no sort), and hands each row to fn; row is reused between calls.
func (s *Store) scanRollups(ctx context.Context, q string, checks []string, a, b int64, fn func(check, region string, start int64, row *agg)) error {
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: report rollups: %w", err)
	}
	defer conn.Close()
	st, err := conn.PrepareContext(ctx, q)
	if err != nil {
		return fmt.Errorf("store: report rollups: %w", err)
	}
	defer st.Close()
	for _, c := range checks {
		if err := scanRollupRows(ctx, st, c, a, b, fn); err != nil {
			return err
		}
	}
	return nil
}

func scanRollupRows(ctx context.Context, st *sql.Stmt, c string, a, b int64, fn func(check, region string, start int64, row *agg)) error {
	rows, err := st.QueryContext(ctx, c, a, b)
	if err != nil {
		return fmt.Errorf("store: report rollups: %w", err)
	}
	defer rows.Close()
	var (
		row           agg
		blob          sql.RawBytes
		check, region string
		start         int64
	)
	for rows.Next() {
		row = agg{}
		if err := rows.Scan(&check, &region, &start, &row.count, &row.failures, &row.latN, &row.latMin, &row.latMax, &row.latSum, &blob); err != nil {
			return fmt.Errorf("store: report rollups: %w", err)
		}
		if err := row.h.addEncoded(blob); err != nil {
			return fmt.Errorf("store: report rollups: %w", err)
		}
		fn(check, region, start, &row)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: report rollups: %w", err)
	}
	return nil
}

// StateHistory is what a report needs of the state changes of a period.
type StateHistory struct {
	// Before holds, per check, its last change before the period (the
	// state the period starts in); later ties are broken by insertion order.
	Before map[string]StateChange
	// First is, per check, the time of its first change ever: before it,
	// this node knows nothing of the check.
	First map[string]time.Time
	// Changes are the changes inside the period, oldest first.
	Changes []StateChange
}

// ReportStates returns the state history of every check for [from, to).
func (s *Store) ReportStates(ctx context.Context, from, to time.Time) (StateHistory, error) {
	h := StateHistory{Before: map[string]StateChange{}, First: map[string]time.Time{}}
	rows, err := s.rdb.QueryContext(ctx, `SELECT check_name, ts, from_state, to_state, incident_id, detail FROM (
			SELECT check_name, ts, from_state, to_state, incident_id, detail,
				row_number() OVER (PARTITION BY check_name ORDER BY ts DESC, id DESC) AS rn
			FROM state_changes WHERE ts < ?) WHERE rn = 1`, from.UnixMilli())
	if err != nil {
		return h, fmt.Errorf("store: report states: %w", err)
	}
	for rows.Next() {
		var c StateChange
		var ts int64
		if err := rows.Scan(&c.Check, &ts, &c.From, &c.To, &c.IncidentID, &c.Detail); err != nil {
			rows.Close()
			return h, fmt.Errorf("store: report states: %w", err)
		}
		c.Time = msTime(ts)
		h.Before[c.Check] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return h, fmt.Errorf("store: report states: %w", err)
	}

	rows, err = s.rdb.QueryContext(ctx, `SELECT check_name, min(ts) FROM state_changes GROUP BY check_name`)
	if err != nil {
		return h, fmt.Errorf("store: report states: %w", err)
	}
	for rows.Next() {
		var name string
		var ts int64
		if err := rows.Scan(&name, &ts); err != nil {
			rows.Close()
			return h, fmt.Errorf("store: report states: %w", err)
		}
		h.First[name] = msTime(ts)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return h, fmt.Errorf("store: report states: %w", err)
	}

	h.Changes, err = s.StateChanges(ctx, "", from, to)
	return h, err
}

// ReportIncidents returns the incidents of checks (not manual ones) that
// overlap [from, to): started before to and not resolved by from, oldest
// first.
func (s *Store) ReportIncidents(ctx context.Context, from, to time.Time) ([]Incident, error) {
	return s.queryIncidents(ctx, `SELECT `+incidentCols+` FROM incidents
		WHERE manual = 0 AND started_at < ? AND (resolved_at IS NULL OR resolved_at > ?)
		ORDER BY started_at, id`, to.UnixMilli(), from.UnixMilli())
}
