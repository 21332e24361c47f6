// Package report computes SLA reports: per check and per group, over a
// period, the uptime outside maintenance (with unknown time excluded, and
// with it counted as not up), incidents, total and longest downtime, MTTR,
// MTBF and latency per region, with one bar cell and one latency point per
// UTC day. Compute is a pure function of its Input (the store's state
// changes, incidents and rollups, and the config's maintenance windows), so
// the same data gives the same report on every node; Load reads the Input
// from a store. Render writes a report as JSON, CSV or one self-contained
// HTML file.
//
// # The timeline of a check
//
// Each instant of the period (up to Params.Now, past which nothing is
// known) falls in exactly one class, tested in this order:
//
//   - maintenance: inside a maintenance window of the check (one-off or an
//     occurrence of a recurring one), or while the check's recorded state
//     was maintenance (a window scheduled through the API);
//   - down: inside one of the check's incidents (from its start, agreed by
//     the cluster, to its resolution), or while its recorded state was down;
//   - unknown: its recorded state was unknown (the cluster could not tell);
//   - no data: before the first state this node ever recorded for the check;
//   - up: the rest (up and degraded).
//
// Uptime is up / (up + down): unknown time is left out, as maintenance is.
// UptimeWithUnknown is up / (up + down + unknown): unknown time counts as
// not up. Both are absent (null) when their denominator is zero.
//
// Incidents are those that overlap the period. Downtime is the down time
// above; the longest downtime is its longest uninterrupted stretch inside
// the period. MTTR is the mean full duration of the incidents resolved
// inside the period; MTBF is up time divided by the incidents that started
// inside the period. A group's figures add its checks' times and incidents
// (its uptime is the time-weighted mean of its checks'), and merge their
// latency histograms.
package report

import (
	"errors"
	"slices"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/store"
)

// AllRegions is the key of the figures merged over every region.
const AllRegions = "all"

// MaxSpan is the longest period a report covers.
const MaxSpan = 400 * 24 * time.Hour

// maxOccurrences bounds the occurrences of one recurring maintenance window
// examined for one report.
const maxOccurrences = 1 << 20

// Params select a report.
type Params struct {
	From, To time.Time // the period, [From, To)
	// Now is the time the report is made: nothing after it is known, so
	// the period is cut there. Zero means To.
	Now time.Time
	// Group restricts the report to the checks of one group ("" = all).
	Group string
	// Title heads the HTML report.
	Title string
	// Location is the time zone times are shown in (HTML, CSV); UTC when nil.
	Location *time.Location
}

// ErrUnknownGroup is returned for a Params.Group no check belongs to.
var ErrUnknownGroup = errors.New("report: no check belongs to that group")

// CheckInfo is how a check is presented.
type CheckInfo struct {
	Name        string
	DisplayName string
	Group       string
}

// Input is the data a report is computed from.
type Input struct {
	Checks      []CheckInfo // in the config's order
	Regions     []string    // the configured regions (the rollups may name others)
	Maintenance []config.Maintenance
	States      store.StateHistory
	Incidents   []store.Incident // overlapping the period, oldest first
	// Rollups by check and region over the period (store.ReportRollups).
	Rollups map[string]map[string]*store.RegionRollups
}

// Report is a computed report. Durations are in seconds, latencies in
// milliseconds; a ratio or mean that has no denominator is null.
type Report struct {
	Title string    `json:"title,omitempty"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	// Until is where the period was cut: To, or the time the report was
	// made when that came first.
	Until   time.Time `json:"until"`
	Group   string    `json:"group,omitempty"`
	Regions []string  `json:"regions"`
	// Days are the UTC days of the per-day figures (YYYY-MM-DD).
	Days      []string      `json:"days"`
	Total     Figures       `json:"total"`
	Groups    []GroupReport `json:"groups"`
	Checks    []CheckReport `json:"checks"`
	Incidents []Incident    `json:"incidents"`

	loc *time.Location
}

// Figures are the SLA figures of a check, a group or the whole report.
type Figures struct {
	UpS          float64 `json:"up_s"`
	DownS        float64 `json:"down_s"`
	UnknownS     float64 `json:"unknown_s"`
	MaintenanceS float64 `json:"maintenance_s"`
	NoDataS      float64 `json:"no_data_s"`
	// Uptime is up / (up + down): unknown time excluded.
	Uptime *float64 `json:"uptime"`
	// UptimeWithUnknown is up / (up + down + unknown): unknown time counted
	// as not up.
	UptimeWithUnknown *float64 `json:"uptime_with_unknown"`
	Incidents         int      `json:"incidents"`         // overlapping the period
	IncidentsStarted  int      `json:"incidents_started"` // of which started inside it
	DowntimeS         float64  `json:"downtime_s"`
	LongestDowntimeS  float64  `json:"longest_downtime_s"`
	MTTRS             *float64 `json:"mttr_s"`
	MTBFS             *float64 `json:"mtbf_s"`
	// Latency by region, and merged over all of them under "all".
	Latency map[string]Latency `json:"latency"`

	// In milliseconds: up, down, unknown, maintenance, no data; the
	// longest downtime; the durations of resolved incidents and their count.
	t              [5]int64
	longestMS      int64
	mttrSum, mttrN int64
	hist           map[string]*store.Rollup
}

// Latency is what the probe results of a region say over the period.
type Latency struct {
	Results  int64   `json:"results"`
	Failures int64   `json:"failures"`
	P95MS    float64 `json:"p95_ms"`
	AvgMS    float64 `json:"avg_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// CheckReport is one check's report.
type CheckReport struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Group       string `json:"group,omitempty"`
	Figures
	// Days has one entry per report day (Report.Days).
	Days []Day `json:"days"`
}

// GroupReport is one group's report.
type GroupReport struct {
	Name   string   `json:"name"`
	Checks []string `json:"checks"`
	Figures
}

// Day is one UTC day of a check (the part inside the period).
type Day struct {
	UpS          float64 `json:"up_s"`
	DownS        float64 `json:"down_s,omitempty"`
	UnknownS     float64 `json:"unknown_s,omitempty"`
	MaintenanceS float64 `json:"maintenance_s,omitempty"`
	NoDataS      float64 `json:"no_data_s,omitempty"`
	// Uptime is up / (up + down), null without either.
	Uptime *float64 `json:"uptime"`
	// P95MS is the day's 95th percentile latency by region (regions
	// without results are left out).
	P95MS map[string]float64 `json:"p95_ms,omitempty"`
}

// Incident is one incident of the report.
type Incident struct {
	ID    string     `json:"id"`
	Check string     `json:"check"`
	Title string     `json:"title"`
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end"` // null while open
	// DurationS is the whole incident's duration (to Until while open).
	DurationS float64 `json:"duration_s"`
	// DowntimeS is its down time inside the period, outside maintenance.
	DowntimeS float64 `json:"downtime_s"`
}

// Compute computes the report of p from in.
func Compute(in *Input, p Params) (*Report, error) {
	if !p.To.After(p.From) {
		return nil, errors.New("report: the period is empty: to must be after from")
	}
	if p.To.Sub(p.From) > MaxSpan {
		return nil, errors.New("report: the period is longer than 400 days")
	}
	until := p.To
	if !p.Now.IsZero() && p.Now.Before(until) {
		until = p.Now
	}
	if until.Before(p.From) {
		until = p.From
	}
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	r := &Report{Title: p.Title, From: p.From.UTC(), To: p.To.UTC(), Until: until.UTC(), Group: p.Group, loc: loc,
		Groups: []GroupReport{}, Checks: []CheckReport{}, Incidents: []Incident{}}
	lo, hi := p.From.UnixMilli(), until.UnixMilli()

	var checks []CheckInfo
	for _, c := range in.Checks {
		if p.Group == "" || c.Group == p.Group {
			checks = append(checks, c)
		}
	}
	if p.Group != "" && len(checks) == 0 {
		return nil, ErrUnknownGroup
	}

	// Regions: the configured ones in order, then any other the rollups name.
	r.Regions = append([]string{}, in.Regions...)
	var extra []string
	for _, c := range checks {
		for reg := range in.Rollups[c.Name] {
			if !slices.Contains(r.Regions, reg) && !slices.Contains(extra, reg) {
				extra = append(extra, reg)
			}
		}
	}
	slices.Sort(extra)
	r.Regions = append(r.Regions, extra...)

	// Days: the UTC days that overlap [From, Until).
	var dayStarts []int64
	for d := floorDay(lo); d < max(hi, lo+1); d += dayMS {
		dayStarts = append(dayStarts, d)
		r.Days = append(r.Days, time.UnixMilli(d).UTC().Format(time.DateOnly))
	}
	dayIndex := map[int64]int{}
	for i, d := range dayStarts {
		dayIndex[d] = i
	}

	// Maintenance windows, each expanded once over the period.
	windows := make([]set, len(in.Maintenance))
	for i, w := range in.Maintenance {
		windows[i] = windowSet(w, p.From, until)
	}

	changes := map[string][]store.StateChange{}
	for _, ch := range in.States.Changes {
		changes[ch.Check] = append(changes[ch.Check], ch)
	}
	incidents := map[string][]store.Incident{}
	for _, inc := range in.Incidents {
		incidents[inc.Check] = append(incidents[inc.Check], inc)
	}

	total := newFigures()
	groups := map[string]*GroupReport{}
	var groupOrder []string
	for _, c := range checks {
		var maint set
		for i, w := range in.Maintenance {
			if slices.Contains(w.Checks, c.Name) {
				maint = union(maint, windows[i])
			}
		}
		cr, incs := computeCheck(c, lo, hi, maint, in.States, changes[c.Name], incidents[c.Name], dayStarts)
		cr.hist = map[string]*store.Rollup{}
		for reg, rr := range in.Rollups[c.Name] {
			cr.hist[reg] = &rr.Total
			for _, d := range rr.Days {
				i, ok := dayIndex[d.Day.UnixMilli()]
				if !ok || d.P95 <= 0 {
					continue
				}
				if cr.Days[i].P95MS == nil {
					cr.Days[i].P95MS = map[string]float64{}
				}
				cr.Days[i].P95MS[reg] = ms(d.P95)
			}
		}
		r.Incidents = append(r.Incidents, incs...)
		total.add(&cr.Figures)
		if c.Group != "" {
			g := groups[c.Group]
			if g == nil {
				g = &GroupReport{Name: c.Group, Figures: newFigures()}
				groups[c.Group] = g
				groupOrder = append(groupOrder, c.Group)
			}
			g.Checks = append(g.Checks, c.Name)
			g.add(&cr.Figures)
		}
		r.Checks = append(r.Checks, cr)
	}
	for i := range r.Checks {
		r.Checks[i].finish(r.Regions)
	}
	for _, name := range groupOrder {
		g := groups[name]
		g.finish(r.Regions)
		r.Groups = append(r.Groups, *g)
	}
	total.finish(r.Regions)
	r.Total = total
	slices.SortStableFunc(r.Incidents, func(a, b Incident) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return r, nil
}

const dayMS = int64(24 * time.Hour / time.Millisecond)

func floorDay(ms int64) int64 {
	q := ms / dayMS
	if ms%dayMS < 0 {
		q--
	}
	return q * dayMS
}

func ms(d time.Duration) float64 {
	return float64(d.Round(100*time.Microsecond)) / float64(time.Millisecond)
}

func secs(msec int64) float64 { return float64(msec) / 1000 }

// windowSet returns the times in [from, to) covered by w.
func windowSet(w config.Maintenance, from, to time.Time) set {
	lo, hi := from.UnixMilli(), to.UnixMilli()
	if !w.Recurring() {
		return clip(set{{w.Start.UnixMilli(), w.End.UnixMilli()}}, lo, hi)
	}
	var ivs []iv
	if s, e, ok := w.Occurrence(from); ok {
		ivs = append(ivs, iv{s.UnixMilli(), e.UnixMilli()})
	}
	t := from
	for range maxOccurrences {
		s, e, ok := w.Next(t)
		if !ok || !s.Before(to) {
			break
		}
		ivs = append(ivs, iv{s.UnixMilli(), e.UnixMilli()})
		t = s
	}
	return clip(normalize(ivs), lo, hi)
}

// computeCheck builds one check's timeline over [lo, hi) and its figures,
// except latency.
func computeCheck(c CheckInfo, lo, hi int64, maint set, st store.StateHistory, changes []store.StateChange,
	incs []store.Incident, dayStarts []int64) (CheckReport, []Incident) {
	cr := CheckReport{Name: c.Name, DisplayName: c.DisplayName, Group: c.Group, Figures: newFigures()}
	if cr.DisplayName == "" {
		cr.DisplayName = c.Name
	}

	// The recorded states, as segments.
	var stMaint, stDown, stUnknown, stNone []iv
	cur := ""
	if b, ok := st.Before[c.Name]; ok {
		cur = b.To
	}
	t := lo
	seg := func(end int64) {
		end = min(end, hi)
		if end <= t {
			return
		}
		x := iv{t, end}
		switch quorum.State(cur) {
		case quorum.StateMaintenance:
			stMaint = append(stMaint, x)
		case quorum.StateDown:
			stDown = append(stDown, x)
		case quorum.StateUnknown:
			stUnknown = append(stUnknown, x)
		case "":
			stNone = append(stNone, x)
		}
		t = end
	}
	for _, ch := range changes {
		seg(ch.Time.UnixMilli())
		cur = ch.To
	}
	seg(hi)

	maint = union(maint, normalize(stMaint))
	var incIvs []iv
	for _, inc := range incs {
		end := hi
		if inc.ResolvedAt != nil {
			end = inc.ResolvedAt.UnixMilli()
		}
		incIvs = append(incIvs, iv{inc.StartedAt.UnixMilli(), end})
	}
	down := minus(clip(union(normalize(incIvs), normalize(stDown)), lo, hi), maint)
	unknown := minus(minus(normalize(stUnknown), maint), down)
	none := minus(minus(minus(normalize(stNone), maint), down), unknown)
	up := minus(minus(minus(minus(set{{lo, hi}}, maint), down), unknown), none)
	if hi <= lo {
		up = nil
	}

	f := &cr.Figures
	f.t = [5]int64{measure(up), measure(down), measure(unknown), measure(maint), measure(none)}
	f.longestMS = longest(down)

	// Days.
	n := len(dayStarts)
	upD, downD, unkD, maintD, noneD := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	end := max(hi, lo)
	if n > 0 {
		end = dayStarts[n-1] + dayMS
	}
	perBucket(up, dayStarts, end, upD)
	perBucket(down, dayStarts, end, downD)
	perBucket(unknown, dayStarts, end, unkD)
	perBucket(maint, dayStarts, end, maintD)
	perBucket(none, dayStarts, end, noneD)
	cr.Days = make([]Day, n)
	for i := range cr.Days {
		cr.Days[i] = Day{UpS: secs(upD[i]), DownS: secs(downD[i]), UnknownS: secs(unkD[i]),
			MaintenanceS: secs(maintD[i]), NoDataS: secs(noneD[i]), Uptime: ratio(upD[i], upD[i]+downD[i])}
	}

	// Incidents.
	var out []Incident
	for _, inc := range incs {
		start := inc.StartedAt.UnixMilli()
		endMS := hi
		var endT *time.Time
		if inc.ResolvedAt != nil {
			e := inc.ResolvedAt.UTC()
			endT, endMS = &e, e.UnixMilli()
		}
		if start >= hi || endMS <= lo {
			continue // not in the part of the period that is known
		}
		f.Incidents++
		if start >= lo {
			f.IncidentsStarted++
		}
		if inc.ResolvedAt != nil && endMS > lo && endMS <= hi {
			f.mttrSum += endMS - start
			f.mttrN++
		}
		title := inc.Title
		if title == "" {
			title = cr.DisplayName + " is down"
		}
		out = append(out, Incident{ID: inc.ID, Check: c.Name, Title: title, Start: inc.StartedAt.UTC(), End: endT,
			DurationS: secs(max(endMS-start, 0)), DowntimeS: secs(measure(minus(clip(set{{start, endMS}}, lo, hi), maint)))})
	}
	return cr, out
}

func newFigures() Figures { return Figures{hist: map[string]*store.Rollup{}} }

// add adds a check's times, incidents and histograms to a group's or the
// total's figures.
func (f *Figures) add(c *Figures) {
	for i := range f.t {
		f.t[i] += c.t[i]
	}
	f.longestMS = max(f.longestMS, c.longestMS)
	f.Incidents += c.Incidents
	f.IncidentsStarted += c.IncidentsStarted
	f.mttrSum += c.mttrSum
	f.mttrN += c.mttrN
	for reg, h := range c.hist {
		m := f.hist[reg]
		if m == nil {
			m = &store.Rollup{}
			f.hist[reg] = m
		}
		m.Merge(h)
	}
}

// finish computes the ratios, means and latency figures.
func (f *Figures) finish(regions []string) {
	upMS, downMS, unkMS := f.t[0], f.t[1], f.t[2]
	f.UpS, f.DownS, f.UnknownS, f.MaintenanceS, f.NoDataS = secs(upMS), secs(downMS), secs(unkMS), secs(f.t[3]), secs(f.t[4])
	f.DowntimeS, f.LongestDowntimeS = f.DownS, secs(f.longestMS)
	f.Uptime = ratio(upMS, upMS+downMS)
	f.UptimeWithUnknown = ratio(upMS, upMS+downMS+unkMS)
	if f.mttrN > 0 {
		v := float64(f.mttrSum) / float64(f.mttrN) / 1000
		f.MTTRS = &v
	}
	if f.IncidentsStarted > 0 {
		v := float64(upMS) / 1000 / float64(f.IncidentsStarted)
		f.MTBFS = &v
	}
	f.Latency = map[string]Latency{}
	var all store.Rollup
	for _, reg := range regionsOf(regions, f.hist) {
		h := f.hist[reg]
		all.Merge(h)
		f.Latency[reg] = latencyOf(h)
	}
	if all.Count() > 0 {
		f.Latency[AllRegions] = latencyOf(&all)
	}
}

// regionsOf lists the regions of hist, in the report's order.
func regionsOf(regions []string, hist map[string]*store.Rollup) []string {
	var out []string
	for _, r := range regions {
		if hist[r] != nil {
			out = append(out, r)
		}
	}
	return out
}

func latencyOf(h *store.Rollup) Latency {
	a := h.Aggregate()
	return Latency{Results: a.Count, Failures: a.Failures, P95MS: ms(a.P95Latency), AvgMS: ms(a.AvgLatency), MaxMS: ms(a.MaxLatency)}
}

func ratio(num, den int64) *float64 {
	if den <= 0 {
		return nil
	}
	v := float64(num) / float64(den)
	return &v
}
