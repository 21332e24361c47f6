package notifier

import (
	"context"
	"encoding/json"
)

// pagerDuty sends PagerDuty Events API v2 events to url (default
// https://events.pagerduty.com/v2/enqueue). dedup_key is the incident id, so
// PagerDuty itself also deduplicates a repeated trigger or resolve. A
// reminder is a trigger with the same dedup_key (it updates the open alert);
// flapping and coverage notices have their own ids ("flapping-…",
// "coverage-…") and go out at warning severity, as certificate warnings do
// with dedup_key "cert:CHECK:SERIAL". A grouped page's update is a trigger
// with the group's dedup_key too: PagerDuty adds it to the open alert.
type pagerDuty struct{ base }

type pdEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"`
	DedupKey    string     `json:"dedup_key,omitempty"`
	Payload     *pdPayload `json:"payload,omitempty"`
	Links       []pdLink   `json:"links,omitempty"`
	Client      string     `json:"client,omitempty"`
	ClientURL   string     `json:"client_url,omitempty"`
}

type pdPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

type pdLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// pdSeverities are the severities PagerDuty accepts.
var pdSeverities = map[string]bool{"critical": true, "error": true, "warning": true, "info": true}

// severity is the notifier's severity, else the event's (the check's) when
// PagerDuty accepts it, else critical. A notice (flapping, coverage, an
// expiring certificate) is never critical: it goes out at warning (info
// when the notifier says info).
func (p *pagerDuty) severity(e Event) string {
	if e.IsMaintenance() {
		return MaintenanceSeverity
	}
	if e.IsNotice() {
		if p.cfg.Severity == "info" {
			return "info"
		}
		return NoticeSeverity
	}
	if pdSeverities[p.cfg.Severity] {
		return p.cfg.Severity
	}
	if pdSeverities[e.Severity] {
		return e.Severity
	}
	return "critical"
}

func (p *pagerDuty) body(e Event) pdEvent {
	ev := pdEvent{RoutingKey: p.cfg.RoutingKey, DedupKey: alertKey(e)}
	if e.Action == ActionResolve {
		ev.EventAction = "resolve"
		return ev
	}
	ev.EventAction = "trigger"
	source := e.Target
	if source == "" {
		source = e.Check
	}
	if source == "" && e.IsGroup() {
		source = "group " + e.Group
	}
	if source == "" && e.IsMaintenance() {
		source = "maintenance"
	}
	if source == "" {
		source = "vantage"
	}
	summary := Headline(e)
	if len(summary) > 1024 {
		summary = summary[:1021] + "..."
	}
	details := map[string]any{
		"incident_id":  e.IncidentID,
		"regions":      nonNilRegions(e.Regions),
		"down_regions": nonNilStrings(DownRegions(e)),
	}
	if !e.StartedAt.IsZero() {
		details["started_at"] = formatTime(e.StartedAt)
	}
	if e.Action == ActionTest {
		details["test"] = true
	}
	if e.DisplayName != "" {
		details["display_name"] = e.DisplayName
	}
	class := "uptime"
	switch e.Kind {
	case KindCoverage:
		class = "coverage"
		details["kind"] = e.Kind
		details["regions_seeing"] = e.RegionsSeeing
		details["regions_total"] = e.RegionsTotal
	case KindFlapping:
		class = "flapping"
		details["kind"] = e.Kind
		details["changes"] = e.Changes
		details["window"] = formatDuration(e.Window)
	case KindCert:
		class = "certificate"
		details["kind"] = e.Kind
		if c := e.Cert; c != nil {
			details["certificate"] = c
		}
	case KindGroup:
		details["kind"] = e.Kind
		details["group"] = e.Group
		details["members"] = e.Members
	case KindMaintenance:
		class = "maintenance"
		details["kind"] = e.Kind
		if m := e.Maintenance; m != nil {
			details["maintenance"] = m
		}
	}
	if e.Action == ActionUpdate {
		details["checks"] = e.Seq
	}
	if e.Action == ActionRepeat {
		details["reminder"] = e.Seq
	}
	ev.Payload = &pdPayload{
		Summary:       summary,
		Source:        source,
		Severity:      p.severity(e),
		Component:     e.Check,
		Group:         e.Group,
		Class:         class,
		CustomDetails: details,
	}
	if !e.StartedAt.IsZero() {
		ev.Payload.Timestamp = formatTime(e.StartedAt)
	}
	ev.Client = "Vantage"
	if e.StatusPageURL != "" {
		ev.ClientURL = e.StatusPageURL
		ev.Links = []pdLink{{Href: e.StatusPageURL, Text: "Status page"}}
	}
	if e.SnapshotsURL != "" {
		ev.Links = append(ev.Links, pdLink{Href: e.SnapshotsURL, Text: "Failure snapshots by region"})
	}
	return ev
}

func (p *pagerDuty) Send(ctx context.Context, e Event) (Receipt, error) {
	b, err := json.Marshal(p.body(e))
	if err != nil {
		return Receipt{}, &SendError{Body: err.Error()}
	}
	return p.postJSON(ctx, p.url, b, nil)
}

func nonNilRegions(m map[string]RegionVote) map[string]RegionVote {
	if m == nil {
		return map[string]RegionVote{}
	}
	return m
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
