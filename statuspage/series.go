package statuspage

import (
	"encoding/csv"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// GET /api/v1/checks/{name}/series?from=RFC3339&to=RFC3339&step=1m|1h|1d:
// every region's buckets, each the sum of the region's nodes' buckets, as
// every node holds them (see docs/architecture.md, "History that
// converges"). Defaults: the last 24 hours, 1m; from is rounded down to
// the step; at most 2 days of 1m, 90 days of 1h, 2 years of 1d.

// seriesMaxSpan bounds a request's range by step.
var seriesMaxSpan = map[store.Step]time.Duration{
	store.StepMinute: 48 * time.Hour,
	store.StepHour:   90 * 24 * time.Hour,
	store.StepDay:    2 * 366 * 24 * time.Hour,
}

// SeriesPointJSON is one bucket of a region.
type SeriesPointJSON struct {
	T        time.Time `json:"t"`
	Count    int64     `json:"count"`
	Failures int64     `json:"failures"`
	AvgMS    float64   `json:"avg_ms"`
	P95MS    float64   `json:"p95_ms"`
	MaxMS    float64   `json:"max_ms"`
}

// SeriesJSON is the body of GET /api/v1/checks/{name}/series.
type SeriesJSON struct {
	Check   string                       `json:"check"`
	Step    string                       `json:"step"`
	Regions map[string][]SeriesPointJSON `json:"regions"`
}

// registerSeries adds the series routes (called from New).
func (s *Server) registerSeries() {
	s.mux.HandleFunc("GET /api/v1/checks/{name}/series", s.series)
	s.mux.HandleFunc("GET /api/v1/checks/{name}/series.csv", s.seriesCSV)
}

// seriesQuery parses a series request; it answers the error itself.
func (s *Server) seriesQuery(w http.ResponseWriter, r *http.Request, defStep store.Step) (name string, step store.Step, from, to time.Time, sh SeriesHistory, ok bool) {
	name = r.PathValue("name")
	if s.current(r.Context()).v.byName[name] == nil {
		http.Error(w, "unknown check", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	step = defStep
	if v := q.Get("step"); v != "" {
		var good bool
		if step, good = store.ParseStep(v); !good {
			http.Error(w, "step: want 1m, 1h or 1d", http.StatusBadRequest)
			return
		}
	}
	from, to, inRange := s.queryRange(w, q)
	if !inRange {
		return
	}
	if to.Sub(from) > seriesMaxSpan[step] {
		http.Error(w, "range too long: at most 2 days of 1m, 90 days of 1h or 2 years of 1d", http.StatusBadRequest)
		return
	}
	from = step.Floor(from) // the bucket holding from is answered whole
	sh, good := s.opts.History.(SeriesHistory)
	if !good {
		http.Error(w, "no history on this node", http.StatusServiceUnavailable)
		return
	}
	return name, step, from, to, sh, true
}

// seriesOf reads the buckets and shapes them for the API.
func (s *Server) seriesOf(w http.ResponseWriter, r *http.Request, defStep store.Step) (*SeriesJSON, bool) {
	name, step, from, to, sh, ok := s.seriesQuery(w, r, defStep)
	if !ok {
		return nil, false
	}
	m, err := sh.Series(r.Context(), name, step, from, to)
	if err != nil {
		s.opts.Logger.Error("statuspage: series", "check", name, "err", err)
		http.Error(w, "history unavailable", http.StatusInternalServerError)
		return nil, false
	}
	out := &SeriesJSON{Check: name, Step: step.String(), Regions: make(map[string][]SeriesPointJSON, len(m))}
	for reg, ps := range m {
		js := make([]SeriesPointJSON, len(ps))
		for i, p := range ps {
			js[i] = seriesPoint(p)
		}
		out.Regions[reg] = js
	}
	return out, true
}

// seriesPoint is a bucket's figures as the API shows them: the mean from
// the exact sum, the 95th percentile from the merged histogram (within
// ±11 % between 0.1 ms and 60 s), the exact maximum.
func seriesPoint(p store.SeriesPoint) SeriesPointJSON {
	a := &p.Agg
	j := SeriesPointJSON{T: p.Start.UTC(), Count: a.Count, Failures: a.Failures}
	if a.LatCount > 0 {
		j.AvgMS = float64(a.LatSumUS) / float64(a.LatCount) / 1000
		j.P95MS = MS(a.Aggregate().P95Latency)
		j.MaxMS = float64(a.LatMaxUS) / 1000
	}
	return j
}

func (s *Server) series(w http.ResponseWriter, r *http.Request) {
	out, ok := s.seriesOf(w, r, store.StepMinute)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=10")
	writeJSON(w, r, out, s.opts.Logger)
}

// seriesCSV is the series as CSV, one line per region and bucket.
func (s *Server) seriesCSV(w http.ResponseWriter, r *http.Request) {
	out, ok := s.seriesOf(w, r, store.StepMinute)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+out.Check+`-`+out.Step+`.csv"`)
	h.Set("Cache-Control", "public, max-age=10")
	cw := csv.NewWriter(w)
	_ = cw.Write(seriesCSVHeader)
	for _, reg := range slices.Sorted(maps.Keys(out.Regions)) {
		for _, p := range out.Regions[reg] {
			up := ""
			if p.Count > 0 {
				up = strconv.FormatFloat(float64(p.Count-p.Failures)/float64(p.Count), 'f', -1, 64)
			}
			f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
			_ = cw.Write([]string{p.T.Format(time.RFC3339), out.Check, reg, out.Step, strconv.FormatInt(p.Count, 10),
				strconv.FormatInt(p.Failures, 10), up, f(p.AvgMS), f(p.P95MS), f(p.MaxMS)})
		}
	}
	cw.Flush()
}

var seriesCSVHeader = []string{"t", "check", "region", "step", "count", "failures", "uptime", "avg_ms", "p95_ms", "max_ms"}
