package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
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

// RegionRollups is one check's rollups in one region over a period: the
// sum of its nodes' buckets.
type RegionRollups struct {
	Total Rollup
	// Days has one entry per UTC day with results, oldest first.
	Days []DaySummary

	days map[int64]*agg
}

func (rr *RegionRollups) add(start int64, row *agg) {
	rr.Total.a.merge(row)
	day := floorTo(start, dayMS)
	d := rr.days[day]
	if d == nil {
		d = &agg{}
		rr.days[day] = d
	}
	d.merge(row)
}

func (rr *RegionRollups) finish() {
	starts := make([]int64, 0, len(rr.days))
	for d := range rr.days {
		starts = append(starts, d)
	}
	slices.Sort(starts)
	rr.Days = make([]DaySummary, len(starts))
	for i, d := range starts {
		rr.Days[i] = daySummary(d, rr.days[d])
	}
	rr.days = nil
}

// reportPiece is a part of the period read from buckets of one step.
type reportPiece struct {
	step     Step
	from, to int64 // bucket starts in [from, to)
}

// ReportRollups returns the buckets of checks in [from, to), summed over
// each region's nodes, by check and region (a check without results is
// absent). Whole UTC days inside the period come from the day buckets. A
// partial day at either end comes from the minute buckets while they are
// retained (buckets that start inside the period), else from the hour
// buckets, else from the whole day's; retention is judged against now.
func (s *Store) ReportRollups(ctx context.Context, checks []string, from, to, now time.Time) (map[string]map[string]*RegionRollups, error) {
	out := map[string]map[string]*RegionRollups{}
	lo, hi := from.UnixMilli(), to.UnixMilli()
	list, nodes, ok := s.nodeList()
	if !ok || hi <= lo {
		return out, nil
	}
	firstFull := ceilTo(lo, dayMS)
	lastEnd := floorTo(hi, dayMS) // whole days are [firstFull, lastEnd)
	var pieces []reportPiece
	if lastEnd < firstFull { // the period lies inside one UTC day
		pieces = append(pieces, s.partialPiece(lo, hi, now))
	} else {
		if lo < firstFull {
			pieces = append(pieces, s.partialPiece(lo, firstFull, now))
		}
		if firstFull < lastEnd {
			pieces = append(pieces, reportPiece{StepDay, firstFull, lastEnd})
		}
		if lastEnd < hi {
			pieces = append(pieces, s.partialPiece(lastEnd, hi, now))
		}
	}

	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: report buckets: %w", err)
	}
	defer conn.Close()
	st, err := conn.PrepareContext(ctx, `SELECT region, start, count, failures, lat_count, lat_min_us, lat_max_us, lat_sum_us, hist
		FROM series WHERE check_name = ? AND node IN (`+list+`) AND step = ? AND start >= ? AND start < ?`)
	if err != nil {
		return nil, fmt.Errorf("store: report buckets: %w", err)
	}
	defer st.Close()
	args := make([]any, 0, len(nodes)+4)
	for _, c := range checks {
		byRegion := out[c]
		for _, p := range pieces {
			args = append(append(append(args[:0], c), nodes...), int64(p.step), p.from, p.to)
			err := scanReportRows(ctx, st, args, func(region string, start int64, row *agg) {
				if byRegion == nil {
					byRegion = map[string]*RegionRollups{}
					out[c] = byRegion
				}
				rr := byRegion[region]
				if rr == nil {
					rr = &RegionRollups{days: map[int64]*agg{}}
					byRegion[region] = rr
				}
				rr.add(start, row)
			})
			if err != nil {
				return nil, err
			}
		}
		for _, rr := range byRegion {
			rr.finish()
		}
	}
	return out, nil
}

// partialPiece is how the part [a, b) of one UTC day is read: the finest
// step still retained at now for its first bucket, else the whole day.
func (s *Store) partialPiece(a, b int64, now time.Time) reportPiece {
	for _, step := range []Step{StepMinute, StepHour} {
		first := ceilTo(a, stepMS[step])
		if h, ok := s.horizonMS(step, now.UnixMilli()); !ok || first >= h {
			return reportPiece{step, first, b}
		}
	}
	day := floorTo(a, dayMS)
	return reportPiece{StepDay, day, day + dayMS}
}

func ceilTo(ms, unit int64) int64 {
	f := floorTo(ms, unit)
	if f < ms {
		f += unit
	}
	return f
}

func daySummary(day int64, a *agg) DaySummary {
	d := DaySummary{Day: msTime(day), Count: a.count, Failures: a.failures}
	if a.latN > 0 {
		d.P95 = usDur(a.h.quantile(0.95, a.latMin, a.latMax))
	}
	return d
}

func scanReportRows(ctx context.Context, st *sql.Stmt, args []any, fn func(region string, start int64, row *agg)) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("store: report buckets: %w", err)
	}
	defer rows.Close()
	var (
		row    agg
		blob   sql.RawBytes
		region string
		start  int64
	)
	for rows.Next() {
		row = agg{}
		if err := rows.Scan(&region, &start, &row.count, &row.failures, &row.latN, &row.latMin, &row.latMax, &row.latSum, &blob); err != nil {
			return fmt.Errorf("store: report buckets: %w", err)
		}
		if err := row.h.addEncoded(blob); err != nil {
			return fmt.Errorf("store: report buckets: %w", err)
		}
		fn(region, start, &row)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: report buckets: %w", err)
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
