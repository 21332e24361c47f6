package notifier

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// Sample reminders and notices.
func reminder(seq int, at time.Time) Event {
	e := sampleEv
	e.Action, e.Seq, e.At = ActionRepeat, seq, at
	return e
}

func flapping() Event {
	return Event{Action: ActionTrigger, Kind: KindFlapping, IncidentID: FlappingID("api", t0), Check: "api",
		Target: "https://api.example.com/health", StartedAt: t0, At: t0, Changes: 6, Window: 10 * time.Minute,
		Severity: NoticeSeverity, StatusPageURL: "https://status.example.com/"}
}

func stable() Event {
	e := flapping()
	e.Action = ActionResolve
	end := t0.Add(25 * time.Minute)
	e.ResolvedAt = &end
	return e
}

func coverageLost() Event {
	return Event{Action: ActionTrigger, Kind: KindCoverage, IncidentID: CoverageID("api", t0), Check: "api",
		Target: "https://api.example.com/health", StartedAt: t0, At: t0.Add(10 * time.Minute), Severity: NoticeSeverity,
		RegionsSeeing: 1, RegionsTotal: 3, Regions: map[string]RegionVote{
			"eu-west": {Vote: "up", LatencyMS: 40}, "us-east": {Vote: "abstain"}, "ap-south": {Vote: "abstain"}}}
}

func coverageBack() Event {
	e := coverageLost()
	e.Action = ActionResolve
	end := t0.Add(14 * time.Minute)
	e.ResolvedAt, e.RegionsSeeing = &end, 3
	return e
}

func TestNoticeSummaries(t *testing.T) {
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{reminder(2, t0.Add(80*time.Minute)), "api still DOWN for 1h20m: not reachable from 2 of 3 regions (eu-west, us-east): connection timed out"},
		{reminder(1, time.Time{}), "api still DOWN: not reachable from 2 of 3 regions (eu-west, us-east): connection timed out"},
		{flapping(), "api is flapping: 6 changes in 10m; notifications paused until it is stable"},
		{stable(), "api stopped flapping: stable for 10m; notifications resumed"},
		{coverageLost(), "monitoring coverage lost: only 1 of 3 regions can see api"},
		{coverageBack(), "monitoring coverage restored after 14m: 3 of 3 regions can see api"},
	} {
		if got := Headline(tc.e); got != tc.want {
			t.Errorf("Headline = %q, want %q", got, tc.want)
		}
	}
	want := `api still DOWN for 1h20m: not reachable from 2 of 3 regions (eu-west, us-east): connection timed out
Target: https://api.example.com/health
Down since: 2026-11-22T10:00:00Z
Down for: 1h20m
Reminder: 2
Severity: critical
Group: Public API
Incident: inc-1
Status page: https://status.example.com/
Regions:
  ap-south: up (41 ms)
  eu-west: down: connection timed out (10000 ms)
  us-east: down: connection timed out (10001 ms)
`
	if got := Text(reminder(2, t0.Add(80*time.Minute))); got != want {
		t.Errorf("Text:\n%s\nwant:\n%s", got, want)
	}
	want = `monitoring coverage lost: only 1 of 3 regions can see api
Target: https://api.example.com/health
Unknown since: 2026-11-22T10:00:00Z
Regions seeing it: 1 of 3
Severity: warning
Incident: ` + CoverageID("api", t0) + `
Regions:
  ap-south: abstain
  eu-west: up (40 ms)
  us-east: abstain
`
	if got := Text(coverageLost()); got != want {
		t.Errorf("Text:\n%s\nwant:\n%s", got, want)
	}
	if !strings.HasPrefix(CoverageID("api", t0), "coverage-") || !strings.HasPrefix(FlappingID("api", t0), "flapping-") ||
		CoverageID("api", t0) == CoverageID("api", t1) || CoverageID("api", t0) == CoverageID("web", t0) {
		t.Error("notice ids")
	}
	if k := reminder(3, t0).Key(); k != "repeat#3" {
		t.Errorf("Key = %q", k)
	}
	if k := sampleEv.Key(); k != "trigger" {
		t.Errorf("Key = %q", k)
	}
}

func TestPagerDutyNotices(t *testing.T) {
	rec := newRecorder(t, always(http.StatusAccepted))
	// Even a notifier set to critical sends notices at warning.
	p := mustNew(t, config.Notifier{Name: "pager", Type: "pagerduty", RoutingKey: "rk", URL: rec.URL, Severity: "critical"})
	for _, e := range []Event{reminder(2, t0.Add(80*time.Minute)), coverageLost(), coverageBack(), flapping(), stable()} {
		send(t, p, e)
	}
	reqs := rec.requests()
	type pd struct {
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Payload     *struct {
			Summary, Severity, Class string
			CustomDetails            map[string]any `json:"custom_details"`
		}
	}
	var got []pd
	for _, r := range reqs {
		var b pd
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		got = append(got, b)
	}
	// The reminder updates the open incident: a trigger with its dedup_key.
	if g := got[0]; g.EventAction != "trigger" || g.DedupKey != "inc-1" || g.Payload.Severity != "critical" ||
		!strings.HasPrefix(g.Payload.Summary, "api still DOWN for 1h20m") || g.Payload.CustomDetails["reminder"] != 2.0 {
		t.Errorf("reminder %+v", g)
	}
	// Coverage: never critical, its own dedup key, resolved when back.
	cov := CoverageID("api", t0)
	if g := got[1]; g.EventAction != "trigger" || g.DedupKey != cov || g.Payload.Severity != "warning" ||
		g.Payload.Class != "coverage" || g.Payload.Summary != "monitoring coverage lost: only 1 of 3 regions can see api" ||
		g.Payload.CustomDetails["regions_seeing"] != 1.0 || g.Payload.CustomDetails["regions_total"] != 3.0 {
		t.Errorf("coverage lost %+v", g)
	}
	if g := got[2]; g.EventAction != "resolve" || g.DedupKey != cov || g.Payload != nil {
		t.Errorf("coverage back %+v", g)
	}
	flap := FlappingID("api", t0)
	if g := got[3]; g.EventAction != "trigger" || g.DedupKey != flap || g.Payload.Severity != "warning" || g.Payload.Class != "flapping" {
		t.Errorf("flapping %+v", g)
	}
	if g := got[4]; g.EventAction != "resolve" || g.DedupKey != flap {
		t.Errorf("stable %+v", g)
	}
	// An info notifier keeps info for notices.
	info := &pagerDuty{base: base{cfg: config.Notifier{Severity: "info"}}}
	if s := info.body(coverageLost()).Payload.Severity; s != "info" {
		t.Errorf("info notifier: %s", s)
	}
	for _, sev := range []string{"", "critical", "error", "warning"} {
		pd := &pagerDuty{base: base{cfg: config.Notifier{Severity: sev}}}
		if s := pd.body(coverageLost()).Payload.Severity; s != "warning" {
			t.Errorf("notifier severity %q: coverage sent at %s", sev, s)
		}
	}
}

func TestWebhookNotices(t *testing.T) {
	rec := newRecorder(t, nil)
	p := mustNew(t, config.Notifier{Name: "hook", Type: "webhook", URL: rec.URL})
	for _, e := range []Event{reminder(2, t0.Add(80*time.Minute)), flapping(), stable(), coverageLost(), coverageBack()} {
		send(t, p, e)
	}
	reqs := rec.requests()
	cov, flap := CoverageID("api", t0), FlappingID("api", t0)
	covRegions := `{"ap-south": {"vote": "abstain", "error": "", "latency_ms": 0}, "eu-west": {"vote": "up", "error": "", "latency_ms": 40},
		"us-east": {"vote": "abstain", "error": "", "latency_ms": 0}}`
	want := []string{
		`{"event": "repeat", "incident_id": "inc-1", "check": "api", "target": "https://api.example.com/health",
		  "started_at": "2026-11-22T10:00:00Z", "resolved_at": null, "regions": ` + regionsJSON + `, "seq": 2,
		  "message": "api still DOWN for 1h20m: not reachable from 2 of 3 regions (eu-west, us-east): connection timed out"}`,
		`{"event": "flapping", "incident_id": "` + flap + `", "check": "api", "target": "https://api.example.com/health",
		  "started_at": "2026-11-22T10:00:00Z", "resolved_at": null, "regions": {}, "changes": 6, "window_seconds": 600,
		  "severity": "warning", "message": "api is flapping: 6 changes in 10m; notifications paused until it is stable"}`,
		`{"event": "stable", "incident_id": "` + flap + `", "check": "api", "target": "https://api.example.com/health",
		  "started_at": "2026-11-22T10:00:00Z", "resolved_at": "2026-11-22T10:25:00Z", "regions": {}, "window_seconds": 600,
		  "severity": "warning", "message": "api stopped flapping: stable for 10m; notifications resumed"}`,
		`{"event": "coverage_lost", "incident_id": "` + cov + `", "check": "api", "target": "https://api.example.com/health",
		  "started_at": "2026-11-22T10:00:00Z", "resolved_at": null, "regions": ` + covRegions + `,
		  "regions_seeing": 1, "regions_total": 3, "severity": "warning",
		  "message": "monitoring coverage lost: only 1 of 3 regions can see api"}`,
		`{"event": "coverage_restored", "incident_id": "` + cov + `", "check": "api", "target": "https://api.example.com/health",
		  "started_at": "2026-11-22T10:00:00Z", "resolved_at": "2026-11-22T10:14:00Z", "regions": ` + covRegions + `,
		  "regions_seeing": 3, "regions_total": 3, "severity": "warning",
		  "message": "monitoring coverage restored after 14m: 3 of 3 regions can see api"}`,
	}
	for i, r := range reqs {
		assertJSON(t, r.Body, want[i])
	}
}

func TestOpsgenieNotices(t *testing.T) {
	rec := newRecorder(t, always(http.StatusAccepted))
	p := mustNew(t, config.Notifier{Name: "og", Type: "opsgenie", URL: rec.URL, APIKey: "k", Priority: "P1"})
	send(t, p, reminder(2, t0.Add(80*time.Minute)))
	send(t, p, coverageLost())
	send(t, p, coverageBack())
	reqs := rec.requests()
	auth := map[string]string{"Authorization": "GenieKey k"}
	checkReq(t, reqs[0], "POST", "/v2/alerts/inc-1/notes", "identifierType=alias", auth)
	assertJSON(t, reqs[0].Body, `{"source": "vantage",
		"note": "api still DOWN for 1h20m: not reachable from 2 of 3 regions (eu-west, us-east): connection timed out"}`)
	checkReq(t, reqs[1], "POST", "/v2/alerts", "", auth)
	var create map[string]any
	json.Unmarshal(reqs[1].Body, &create)
	// A notifier set to P1 still sends a coverage alert at P3.
	if create["alias"] != CoverageID("api", t0) || create["priority"] != "P3" ||
		create["message"] != "monitoring coverage lost: only 1 of 3 regions can see api" {
		t.Errorf("coverage create %v", create)
	}
	checkReq(t, reqs[2], "POST", "/v2/alerts/"+CoverageID("api", t0)+"/close", "identifierType=alias", auth)
	low := &opsgenie{base: base{cfg: config.Notifier{Priority: "P5"}}}
	if p := low.priority(coverageLost()); p != "P5" {
		t.Errorf("P5 notifier: coverage at %s", p)
	}
}

func TestChatNotices(t *testing.T) {
	// Slack, Discord, Teams and Telegram carry the summary line.
	for _, typ := range []string{"slack", "discord", "msteams", "telegram"} {
		rec := newRecorder(t, nil)
		p := mustNew(t, config.Notifier{Name: typ, Type: typ, URL: rec.URL, BotToken: "1:a", ChatID: "1"})
		for _, e := range []Event{reminder(2, t0.Add(80*time.Minute)), flapping(), coverageLost()} {
			send(t, p, e)
		}
		reqs := rec.requests()
		for i, want := range []string{"api still DOWN for 1h20m", "api is flapping: 6 changes in 10m",
			"monitoring coverage lost: only 1 of 3 regions can see api"} {
			if !strings.Contains(string(reqs[i].Body), want) {
				t.Errorf("%s: body %d lacks %q: %s", typ, i, want, reqs[i].Body)
			}
		}
	}
	if c := discordBody(coverageLost())["embeds"].([]any)[0].(map[string]any)["color"]; c != colorWarn {
		t.Errorf("discord coverage colour %v", c)
	}
	if c := discordBody(reminder(1, t0))["embeds"].([]any)[0].(map[string]any)["color"]; c != colorDown {
		t.Errorf("discord reminder colour %v", c)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 3 * time.Second: "3s", 12*time.Minute + 3*time.Second: "12m3s", 10 * time.Minute: "10m",
		80 * time.Minute: "1h20m", 2 * time.Hour: "2h", 2*time.Hour + 5*time.Second: "2h0m5s", -time.Second: "0s",
		1500 * time.Millisecond: "2s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
