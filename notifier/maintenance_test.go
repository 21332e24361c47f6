package notifier

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

func maintStarted() Event {
	start, end := t0, t0.Add(time.Hour)
	return Event{Action: ActionTrigger, Kind: KindMaintenance, IncidentID: MaintenanceID("cfg:db-upgrade", start),
		StartedAt: start, At: start, Severity: MaintenanceSeverity, StatusPageURL: "https://status.example.com/",
		Maintenance: &MaintenanceInfo{Title: "DB upgrade", Checks: []string{"db", "api"}, Start: start, End: end}}
}

func maintEnded(at time.Time, cancelled bool) Event {
	e := maintStarted()
	m := *e.Maintenance
	m.Cancelled = cancelled
	e.Action, e.Maintenance, e.ResolvedAt = ActionResolve, &m, &at
	return e
}

func TestMaintenanceMessages(t *testing.T) {
	if id := MaintenanceID("cfg:db-upgrade", t0); !strings.HasPrefix(id, "maintenance-") || len(id) > maxIDLen ||
		id != MaintenanceID("cfg:db-upgrade", t0.In(time.FixedZone("x", 3600))) || id == MaintenanceID("cfg:db-upgrade", t0.Add(time.Minute)) ||
		id == MaintenanceID("api:0123abcd", t0) {
		t.Fatalf("MaintenanceID %q: want one id per window and start, the same in every zone", id)
	}
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{maintStarted(), "Maintenance started: DB upgrade (db, api), until 2026-11-22 11:00 UTC"},
		{maintEnded(t0.Add(time.Hour), false), "Maintenance ended: DB upgrade (db, api), after 1h"},
		{maintEnded(t0.Add(20*time.Minute), true), "Maintenance cancelled: DB upgrade (db, api), after 20m, before its scheduled end 2026-11-22 11:00 UTC"},
		{Event{Kind: KindMaintenance, Action: ActionTrigger, Maintenance: &MaintenanceInfo{Checks: []string{"a", "b", "c", "d", "e", "f", "g"}}},
			"Maintenance started: a, b, c, d, e and 2 more"},
	} {
		if got := Headline(tc.e); got != tc.want {
			t.Errorf("Headline = %q, want %q", got, tc.want)
		}
	}
	text := Text(maintEnded(t0.Add(20*time.Minute), true))
	for _, want := range []string{"Window: DB upgrade\n", "Checks: db, api\n", "Starts: 2026-11-22T10:00:00Z\n",
		"Scheduled end: 2026-11-22T11:00:00Z\n", "Cancelled at: 2026-11-22T10:20:00Z\n", "Severity: info\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Down since") || strings.Contains(text, "Regions:") {
		t.Errorf("a maintenance notice reads as an outage:\n%s", text)
	}
}

func TestMaintenanceProviders(t *testing.T) {
	// webhook: maintenance_started, then maintenance_ended, at info.
	rec := newRecorder(t, nil)
	hook := mustNew(t, config.Notifier{Name: "hook", Type: "webhook", URL: rec.URL})
	send(t, hook, maintStarted())
	send(t, hook, maintEnded(t0.Add(time.Hour), false))
	id := MaintenanceID("cfg:db-upgrade", t0)
	reqs := rec.requests()
	win := `{"title": "DB upgrade", "checks": ["db", "api"], "start": "2026-11-22T10:00:00Z", "end": "2026-11-22T11:00:00Z"}`
	assertJSON(t, reqs[0].Body, `{"event": "maintenance_started", "incident_id": "`+id+`", "check": "", "target": "",
		"started_at": "2026-11-22T10:00:00Z", "resolved_at": null, "regions": {}, "severity": "info", "maintenance": `+win+`,
		"message": "Maintenance started: DB upgrade (db, api), until 2026-11-22 11:00 UTC"}`)
	assertJSON(t, reqs[1].Body, `{"event": "maintenance_ended", "incident_id": "`+id+`", "check": "", "target": "",
		"started_at": "2026-11-22T10:00:00Z", "resolved_at": "2026-11-22T11:00:00Z", "regions": {}, "severity": "info",
		"maintenance": `+win+`, "message": "Maintenance ended: DB upgrade (db, api), after 1h"}`)

	// PagerDuty: info whatever the notifier's severity, class maintenance,
	// resolved under the same dedup_key.
	pdRec := newRecorder(t, always(http.StatusAccepted))
	pd := mustNew(t, config.Notifier{Name: "pager", Type: "pagerduty", RoutingKey: "rk", URL: pdRec.URL, Severity: "critical"})
	send(t, pd, maintStarted())
	send(t, pd, maintEnded(t0.Add(time.Hour), false))
	var trig, res struct {
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Payload     *struct{ Summary, Severity, Class, Source string }
	}
	pdReqs := pdRec.requests()
	json.Unmarshal(pdReqs[0].Body, &trig)
	json.Unmarshal(pdReqs[1].Body, &res)
	if trig.EventAction != "trigger" || trig.DedupKey != id || trig.Payload == nil || trig.Payload.Severity != "info" ||
		trig.Payload.Class != "maintenance" || trig.Payload.Source != "maintenance" {
		t.Errorf("PagerDuty trigger %+v", trig)
	}
	if res.EventAction != "resolve" || res.DedupKey != id {
		t.Errorf("PagerDuty resolve %+v", res)
	}
	// Opsgenie: P5.
	if p := (&opsgenie{base: base{cfg: config.Notifier{Priority: "P1"}}}).priority(maintStarted()); p != "P5" {
		t.Errorf("Opsgenie priority %s", p)
	}
}

// The outbox takes maintenance notices (trigger and resolve, with their
// id's prefix) and refuses others.
func TestOutboxMaintenanceNotices(t *testing.T) {
	rec := newRecorder(t, nil)
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hook(t, "hook", rec)}, OutboxOptions{})
	if err := o.Enqueue(context.Background(), maintStarted(), "hook"); err != nil {
		t.Fatal(err)
	}
	bad := maintStarted()
	bad.IncidentID = "inc-1"
	if err := o.Enqueue(context.Background(), bad, "hook"); err == nil {
		t.Error("a maintenance notice without its prefix was taken")
	}
	bad = maintStarted()
	bad.Action, bad.Seq = ActionRepeat, 1
	if err := o.Enqueue(context.Background(), bad, "hook"); err == nil {
		t.Error("a maintenance reminder was taken")
	}
}
