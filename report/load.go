package report

import (
	"context"
	"fmt"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/store"
)

// Source is the history a report is read from (*store.Store).
type Source interface {
	ReportRollups(ctx context.Context, checks []string, from, to, now time.Time) (map[string]map[string]*store.RegionRollups, error)
	ReportStates(ctx context.Context, from, to time.Time) (store.StateHistory, error)
	ReportIncidents(ctx context.Context, from, to time.Time) ([]store.Incident, error)
}

// InputFrom reads the Input of a report of cfg's checks over p's period.
// Extra windows (scheduled through the API) are added to the config's.
func InputFrom(ctx context.Context, src Source, cfg *config.Config, p Params, extra []config.Maintenance) (*Input, error) {
	if !p.To.After(p.From) {
		return nil, fmt.Errorf("report: the period is empty: to must be after from")
	}
	until := p.To
	if !p.Now.IsZero() && p.Now.Before(until) {
		until = p.Now
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	in := &Input{Regions: append([]string(nil), cfg.Cluster.Regions...)}
	var names []string
	for _, c := range cfg.Checks {
		in.Checks = append(in.Checks, CheckInfo{Name: c.Name, DisplayName: c.DisplayName, Group: c.Group})
		if p.Group == "" || c.Group == p.Group {
			names = append(names, c.Name)
		}
	}
	in.Maintenance = append(append(in.Maintenance, cfg.Maintenance...), extra...)
	var err error
	if in.Rollups, err = src.ReportRollups(ctx, names, p.From, until, now); err != nil {
		return nil, err
	}
	if in.States, err = src.ReportStates(ctx, p.From, until); err != nil {
		return nil, err
	}
	if in.Incidents, err = src.ReportIncidents(ctx, p.From, until); err != nil {
		return nil, err
	}
	return in, nil
}

// Build reads the input and computes the report.
func Build(ctx context.Context, src Source, cfg *config.Config, p Params) (*Report, error) {
	in, err := InputFrom(ctx, src, cfg, p, nil)
	if err != nil {
		return nil, err
	}
	return Compute(in, p)
}

// ParseTime parses a report bound: a date (YYYY-MM-DD, midnight in loc), a
// date and time without zone (YYYY-MM-DDTHH:MM, in loc), or RFC 3339.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	for _, layout := range []string{time.DateOnly, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date (2026-11-01) or an RFC 3339 time", s)
}
