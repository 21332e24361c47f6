package statuspage

import (
	"context"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// History is the part of the result store the status page reads. It lists
// exactly the methods used, so *store.Store satisfies it and tests can fake
// it. Implementations must be safe for concurrent use.
type History interface {
	// DailyUptime: one entry per UTC day for the last days days, oldest
	// first, all regions merged (the 90-day bar).
	DailyUptime(ctx context.Context, check string, days int, now time.Time) ([]store.DayStat, error)
	// MinuteStats: per-minute statistics in [from, to) of one region
	// (region "" = all); the 24 h latency chart and the check page.
	MinuteStats(ctx context.Context, check, region string, from, to time.Time) ([]store.MinuteStat, error)
	// Uptime: fraction of successful results over window, or store.NoData.
	Uptime(ctx context.Context, check string, window time.Duration, now time.Time) (float64, error)
	// History: raw results in [from, to), oldest first (the history API).
	History(ctx context.Context, check string, from, to time.Time, limit int) ([]store.Result, error)
	// Incidents: newest first; limit <= 0 = all.
	Incidents(ctx context.Context, limit int) ([]store.Incident, error)
	// StateChanges of check ("" = all) in [from, to), oldest first.
	StateChanges(ctx context.Context, check string, from, to time.Time) ([]store.StateChange, error)
}

// SeriesHistory is implemented by a History that holds every node's
// buckets (*store.Store does): the /series API, and the page's 24 h
// number from the buckets of every region.
type SeriesHistory interface {
	// Series: check's buckets of step with from <= start < to, per
	// region, each the sum of its nodes' buckets, oldest first, only
	// buckets with results.
	Series(ctx context.Context, check string, step store.Step, from, to time.Time) (map[string][]store.SeriesPoint, error)
	// Total: results and failures of check in the minutes [from, to),
	// every region's.
	Total(ctx context.Context, check string, from, to time.Time) (count, failures int64, err error)
	// SeriesGen changes when a past day's bucket changed.
	SeriesGen() uint64
}

// UpdateHistory is implemented by a History that also holds operators'
// incident updates (*store.Store does); the page shows them in the
// incidents' timelines.
type UpdateHistory interface {
	// IncidentUpdates: the updates of the given incidents, newest first.
	IncidentUpdates(ctx context.Context, ids ...string) (map[string][]store.IncidentUpdate, error)
}

// Page is what the status page shows besides live states: its title and
// text, how checks are presented, and the maintenance windows.
type Page struct {
	// ID is the page id in the Statuspage-compatible documents; default
	// derived from Title.
	ID          string
	Title       string // default "Status"
	Description string
	// URL is the public base URL (no trailing slash), used in feeds,
	// shortlinks and summary.json; may be empty.
	URL         string
	Checks      []PageCheck
	Maintenance []MaintenanceWindow
	Site        Site // language, time zone, branding, recurring maintenance (site.go)
}

// PageCheck is how one check is presented. Checks are shown in this order;
// a check present in Status but not here is shown after them with its name.
type PageCheck struct {
	Name        string // the check's id
	DisplayName string // default Name
	Description string
	Group       string // "" = ungrouped
}

// MaintenanceWindow is a planned maintenance of some checks.
type MaintenanceWindow struct {
	Title  string
	Checks []string
	Start  time.Time
	End    time.Time
}

// label returns the display name of a check.
func (c PageCheck) label() string {
	if c.DisplayName != "" {
		return c.DisplayName
	}
	return c.Name
}
