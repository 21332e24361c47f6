package notifier

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// KindMaintenance: a maintenance window began or ended, for the routes
// that ask for it (notify_maintenance). Trigger: the window (one
// occurrence of a recurring one) started; resolve: it ended, at its
// scheduled end or earlier when it was cancelled or removed
// (MaintenanceInfo.Cancelled). IncidentID is MaintenanceID(...); Check is
// empty and Maintenance lists the window's checks. A notice, sent at info
// severity.
const KindMaintenance = "maintenance"

// MaintenanceSeverity is the severity of maintenance notices.
const MaintenanceSeverity = "info"

// MaintenanceInfo describes the window of a maintenance notice.
type MaintenanceInfo struct {
	Title  string   `json:"title,omitempty"`
	Checks []string `json:"checks"`
	// Start and End are the occurrence's scheduled bounds, [Start, End).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Every and Timezone are a recurring window's schedule; empty for a
	// one-off window.
	Every    string `json:"every,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	// WindowID is the id of a window scheduled through
	// POST /api/v1/maintenance; empty for one of the config file.
	WindowID string `json:"window_id,omitempty"`
	// Cancelled marks an end before End: the window was cancelled or
	// removed from the config while it ran.
	Cancelled bool `json:"cancelled,omitempty"`
}

// MaintenanceID is the id of the notices of one occurrence of a
// maintenance window: "maintenance-" and a hash of the window's key (the
// same on every node: a runtime window's id, or a config window's title,
// checks and schedule) and the occurrence's start.
func MaintenanceID(key string, start time.Time) string {
	h := sha256.Sum256([]byte(key + "|" + start.UTC().Format(time.RFC3339Nano)))
	return KindMaintenance + "-" + hex.EncodeToString(h[:8])
}

// IsMaintenance reports whether e is a maintenance notice.
func (e Event) IsMaintenance() bool { return e.Kind == KindMaintenance }

// maintenanceHeadline is the headline of a maintenance notice:
//
//	Maintenance started: DB upgrade (db, api), until 2026-12-01 03:00 UTC
//	Maintenance ended: DB upgrade (db, api), after 1h
//	Maintenance cancelled: DB upgrade (db, api), after 20m, before its scheduled end 2026-12-01 03:00 UTC
func maintenanceHeadline(e Event) string {
	m := e.Maintenance
	if m == nil {
		m = &MaintenanceInfo{}
	}
	what := maintenanceName(m)
	if e.Action != ActionResolve {
		if m.End.IsZero() {
			return "Maintenance started: " + what
		}
		return "Maintenance started: " + what + ", until " + formatDay(m.End)
	}
	s := "Maintenance ended: " + what
	if m.Cancelled {
		s = "Maintenance cancelled: " + what
	}
	if e.ResolvedAt != nil && !m.Start.IsZero() {
		s += ", after " + formatDuration(e.ResolvedAt.Sub(m.Start))
	}
	if m.Cancelled && !m.End.IsZero() {
		s += ", before its scheduled end " + formatDay(m.End)
	}
	return s
}

// maintenanceName is "TITLE (a, b)", or "a, b" without a title; at most
// five checks are named.
func maintenanceName(m *MaintenanceInfo) string {
	checks := m.Checks
	more := ""
	if len(checks) > 5 {
		more = fmt.Sprintf(" and %d more", len(checks)-5)
		checks = checks[:5]
	}
	list := strings.Join(checks, ", ") + more
	switch {
	case m.Title != "" && list != "":
		return m.Title + " (" + list + ")"
	case m.Title != "":
		return m.Title
	case list != "":
		return list
	}
	return "a maintenance window"
}

// maintenanceFields are the details of a maintenance notice.
func maintenanceFields(e Event) fieldList {
	m := e.Maintenance
	if m == nil {
		return nil
	}
	var fs fieldList
	fs.add("Window", m.Title)
	fs.add("Checks", strings.Join(m.Checks, ", "))
	fs.addTime("Starts", m.Start)
	fs.addTime("Scheduled end", m.End)
	if e.Action == ActionResolve && e.ResolvedAt != nil {
		label := "Ended at"
		if m.Cancelled {
			label = "Cancelled at"
		}
		fs.add(label, formatTime(*e.ResolvedAt))
	}
	if m.Every != "" {
		every := m.Every
		if m.Timezone != "" {
			every += " (" + m.Timezone + ")"
		}
		fs.add("Every", every)
	}
	fs.add("Window id", m.WindowID)
	return fs
}
