package notifier

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

const regionsJSON = `{
	"ap-south": {"vote": "up", "error": "", "latency_ms": 41.2},
	"eu-west": {"vote": "down", "error": "connect_timeout", "latency_ms": 10000},
	"us-east": {"vote": "down", "error": "connect_timeout", "latency_ms": 10001}}`

func mustNew(t *testing.T, n config.Notifier) Provider {
	t.Helper()
	p, err := New(n, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != n.Name {
		t.Fatalf("Name = %q, want %q", p.Name(), n.Name)
	}
	return p
}

func send(t *testing.T, p Provider, e Event) Receipt {
	t.Helper()
	r, err := p.Send(context.Background(), e)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return r
}

func checkReq(t *testing.T, r request, method, path, query string, headers map[string]string) {
	t.Helper()
	if r.Method != method || r.Path != path || r.Query != query {
		t.Fatalf("request %s %s?%s, want %s %s?%s", r.Method, r.Path, r.Query, method, path, query)
	}
	for k, v := range headers {
		if got := r.Header.Get(k); got != v {
			t.Fatalf("header %s = %q, want %q", k, got, v)
		}
	}
}

func TestPagerDuty(t *testing.T) {
	rec := newRecorder(t, always(http.StatusAccepted))
	p := mustNew(t, config.Notifier{Name: "pager", Type: "pagerduty", RoutingKey: "rk", URL: rec.URL + "/v2/enqueue"})
	r := send(t, p, sampleEv)
	if r.Status != 202 || r.Body != `{"status":"ok"}` {
		t.Fatalf("receipt %+v", r)
	}
	send(t, p, resolved(sampleEv))
	reqs := rec.requests()
	ct := map[string]string{"Content-Type": "application/json"}
	checkReq(t, reqs[0], "POST", "/v2/enqueue", "", ct)
	assertJSON(t, reqs[0].Body, `{
		"routing_key": "rk", "event_action": "trigger", "dedup_key": "inc-1",
		"payload": {
			"summary": "`+sampleSummary+`",
			"source": "https://api.example.com/health",
			"severity": "critical",
			"timestamp": "2026-11-22T10:00:00Z",
			"component": "api",
			"group": "Public API",
			"class": "uptime",
			"custom_details": {"incident_id": "inc-1", "started_at": "2026-11-22T10:00:00Z",
				"down_regions": ["eu-west", "us-east"], "regions": `+regionsJSON+`}
		},
		"links": [{"href": "https://status.example.com/", "text": "Status page"}],
		"client": "Vantage", "client_url": "https://status.example.com/"}`)
	checkReq(t, reqs[1], "POST", "/v2/enqueue", "", ct)
	assertJSON(t, reqs[1].Body, `{"routing_key": "rk", "event_action": "resolve", "dedup_key": "inc-1"}`)

	// The notifier's severity wins; without one, the check's; else critical.
	for _, tc := range []struct{ notifier, check, want string }{
		{"warning", "critical", "warning"}, {"", "info", "info"}, {"", "", "critical"}, {"", "bogus", "critical"},
	} {
		pd := &pagerDuty{base: base{cfg: config.Notifier{Severity: tc.notifier}}}
		e := sampleEv
		e.Severity = tc.check
		if got := pd.body(e).Payload.Severity; got != tc.want {
			t.Errorf("severity(%q, %q) = %q, want %q", tc.notifier, tc.check, got, tc.want)
		}
	}
}

func TestWebhook(t *testing.T) {
	rec := newRecorder(t, always(http.StatusNoContent))
	p := mustNew(t, config.Notifier{Name: "hook", Type: "webhook", URL: rec.URL + "/hook?x=1", Secret: "s3cret",
		Headers: map[string]string{"X-Team": "sre", "Authorization": "Bearer t"}})
	send(t, p, sampleEv)
	send(t, p, resolved(sampleEv))
	reqs := rec.requests()
	want := []string{
		`{"event": "down", "incident_id": "inc-1", "check": "api", "target": "https://api.example.com/health",
		  "started_at": "2026-11-22T10:00:00Z", "resolved_at": null, "regions": ` + regionsJSON + `,
		  "message": "` + sampleSummary + `"}`,
		`{"event": "up", "incident_id": "inc-1", "check": "api", "target": "https://api.example.com/health",
		  "started_at": "2026-11-22T10:00:00Z", "resolved_at": "2026-11-22T10:12:03Z", "regions": ` + regionsJSON + `,
		  "message": "api is up again after 12m3s"}`,
	}
	for i, r := range reqs {
		checkReq(t, r, "POST", "/hook", "x=1", map[string]string{"Content-Type": "application/json",
			"X-Team": "sre", "Authorization": "Bearer t"})
		assertJSON(t, r.Body, want[i])
		if !strings.Contains(string(r.Body), `"resolved_at":`) {
			t.Fatalf("resolved_at missing: %s", r.Body)
		}
		sig := r.Header.Get("X-Vantage-Signature")
		hexSig, ok := strings.CutPrefix(sig, "sha256=")
		if !ok {
			t.Fatalf("signature %q", sig)
		}
		got, _ := hex.DecodeString(hexSig)
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write(r.Body)
		if !hmac.Equal(got, m.Sum(nil)) {
			t.Fatalf("signature %q does not verify", sig)
		}
	}

	// No secret: no signature header.
	rec2 := newRecorder(t, nil)
	send(t, mustNew(t, config.Notifier{Name: "h2", Type: "webhook", URL: rec2.URL}), sampleEv)
	if h := rec2.requests()[0].Header.Get("X-Vantage-Signature"); h != "" {
		t.Fatalf("unexpected signature %q", h)
	}
}

func TestSlack(t *testing.T) {
	rec := newRecorder(t, nil)
	send(t, mustNew(t, config.Notifier{Name: "chat", Type: "slack", URL: rec.URL + "/services/T/B/X"}), sampleEv)
	r := rec.requests()[0]
	checkReq(t, r, "POST", "/services/T/B/X", "", map[string]string{"Content-Type": "application/json"})
	assertJSON(t, r.Body, `{"text": "`+sampleSummary+`", "blocks": [
		{"type": "section", "text": {"type": "mrkdwn", "text": "*`+sampleSummary+`*"}},
		{"type": "section", "fields": [
			{"type": "mrkdwn", "text": "*Target*\nhttps://api.example.com/health"},
			{"type": "mrkdwn", "text": "*Down since*\n2026-11-22T10:00:00Z"},
			{"type": "mrkdwn", "text": "*Severity*\ncritical"},
			{"type": "mrkdwn", "text": "*Group*\nPublic API"},
			{"type": "mrkdwn", "text": "*Incident*\ninc-1"}]},
		{"type": "section", "text": {"type": "mrkdwn", "text": "`+"```"+`ap-south: up (41 ms)\neu-west: down: connection timed out (10000 ms)\nus-east: down: connection timed out (10001 ms)`+"```"+`"}},
		{"type": "context", "elements": [{"type": "mrkdwn", "text": "<https://status.example.com/|Status page>"}]}]}`)
}

func TestDiscord(t *testing.T) {
	rec := newRecorder(t, always(http.StatusNoContent))
	send(t, mustNew(t, config.Notifier{Name: "dc", Type: "discord", URL: rec.URL + "/api/webhooks/1/tok"}), resolved(sampleEv))
	r := rec.requests()[0]
	checkReq(t, r, "POST", "/api/webhooks/1/tok", "", map[string]string{"Content-Type": "application/json"})
	assertJSON(t, r.Body, `{"username": "Vantage", "embeds": [{
		"title": "api is up again after 12m3s", "color": 2002494, "url": "https://status.example.com/",
		"description": "`+"```"+`\nap-south: up (41 ms)\neu-west: down: connection timed out (10000 ms)\nus-east: down: connection timed out (10001 ms)\n`+"```"+`",
		"fields": [
			{"name": "Target", "value": "https://api.example.com/health", "inline": false},
			{"name": "Down since", "value": "2026-11-22T10:00:00Z", "inline": true},
			{"name": "Resolved at", "value": "2026-11-22T10:12:03Z", "inline": true},
			{"name": "Duration", "value": "12m3s", "inline": true},
			{"name": "Severity", "value": "critical", "inline": true},
			{"name": "Group", "value": "Public API", "inline": true},
			{"name": "Incident", "value": "inc-1", "inline": true},
			{"name": "Status page", "value": "https://status.example.com/", "inline": false}],
		"timestamp": "2026-11-22T10:12:03Z"}]}`)
}

func TestMSTeams(t *testing.T) {
	rec := newRecorder(t, always(http.StatusAccepted))
	send(t, mustNew(t, config.Notifier{Name: "teams", Type: "msteams", URL: rec.URL + "/workflows/abc/triggers/manual/paths/invoke"}), sampleEv)
	r := rec.requests()[0]
	checkReq(t, r, "POST", "/workflows/abc/triggers/manual/paths/invoke", "", map[string]string{"Content-Type": "application/json"})
	assertJSON(t, r.Body, `{"type": "message", "attachments": [{
		"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
		"content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
			"body": [
				{"type": "TextBlock", "text": "`+sampleSummary+`", "weight": "Bolder", "size": "Medium", "color": "Attention", "wrap": true},
				{"type": "FactSet", "facts": [
					{"title": "Target", "value": "https://api.example.com/health"},
					{"title": "Down since", "value": "2026-11-22T10:00:00Z"},
					{"title": "Severity", "value": "critical"},
					{"title": "Group", "value": "Public API"},
					{"title": "Incident", "value": "inc-1"},
					{"title": "Status page", "value": "https://status.example.com/"}]},
				{"type": "TextBlock", "text": "Regions", "weight": "Bolder", "wrap": true},
				{"type": "FactSet", "facts": [
					{"title": "ap-south", "value": "up (41 ms)"},
					{"title": "eu-west", "value": "down: connection timed out (10000 ms)"},
					{"title": "us-east", "value": "down: connection timed out (10001 ms)"}]}],
			"actions": [{"type": "Action.OpenUrl", "title": "Status page", "url": "https://status.example.com/"}]}}]}`)
}

func TestTelegram(t *testing.T) {
	rec := newRecorder(t, nil)
	send(t, mustNew(t, config.Notifier{Name: "tg", Type: "telegram", URL: rec.URL, BotToken: "123:ABC", ChatID: "-10042"}), sampleEv)
	r := rec.requests()[0]
	checkReq(t, r, "POST", "/bot123:ABC/sendMessage", "", map[string]string{"Content-Type": "application/json"})
	assertJSON(t, r.Body, `{"chat_id": "-10042", "disable_web_page_preview": true, "text": `+jsonString(sampleText)+`}`)
}

func TestOpsgenie(t *testing.T) {
	rec := newRecorder(t, always(http.StatusAccepted))
	p := mustNew(t, config.Notifier{Name: "og", Type: "opsgenie", URL: rec.URL, APIKey: "key-1", Priority: "P2"})
	send(t, p, sampleEv)
	send(t, p, resolved(sampleEv))
	reqs := rec.requests()
	auth := map[string]string{"Content-Type": "application/json", "Authorization": "GenieKey key-1"}
	checkReq(t, reqs[0], "POST", "/v2/alerts", "", auth)
	assertJSON(t, reqs[0].Body, `{"message": "`+sampleSummary+`", "alias": "inc-1",
		"description": `+jsonString(sampleText)+`, "priority": "P2", "source": "vantage",
		"tags": ["vantage", "api"], "entity": "https://api.example.com/health",
		"details": {"Target": "https://api.example.com/health", "Down since": "2026-11-22T10:00:00Z",
			"Severity": "critical", "Group": "Public API", "Incident": "inc-1", "Status page": "https://status.example.com/",
			"region ap-south": "up (41 ms)", "region eu-west": "down: connection timed out (10000 ms)",
			"region us-east": "down: connection timed out (10001 ms)"}}`)
	checkReq(t, reqs[1], "POST", "/v2/alerts/inc-1/close", "identifierType=alias", auth)
	assertJSON(t, reqs[1].Body, `{"source": "vantage", "note": "api is up again after 12m3s"}`)
}

func jsonString(s string) string {
	b := new(strings.Builder)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryAfter string
		retryable  bool
		wait       time.Duration
	}{
		{400, "", false, 0}, {401, "", false, 0}, {404, "", false, 0}, {422, "", false, 0},
		{429, "7", true, 7 * time.Second}, {500, "", true, 0}, {502, "", true, 0}, {503, "2", true, 2 * time.Second},
	} {
		rec := newRecorder(t, func(_ int, w http.ResponseWriter) int {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			return tc.status
		})
		p := mustNew(t, config.Notifier{Name: "h", Type: "webhook", URL: rec.URL})
		_, err := p.Send(context.Background(), sampleEv)
		var se *SendError
		if !errors.As(err, &se) {
			t.Fatalf("%d: err %v is not a *SendError", tc.status, err)
		}
		if se.Status != tc.status || se.Retryable != tc.retryable || se.RetryAfter != tc.wait || se.Body != `{"status":"ok"}` {
			t.Fatalf("%d: %+v", tc.status, se)
		}
		if IsRetryable(err) != tc.retryable {
			t.Fatalf("%d: IsRetryable", tc.status)
		}
	}
	// A network error is retryable.
	rec := newRecorder(t, nil)
	url := rec.URL
	rec.Close()
	_, err := mustNew(t, config.Notifier{Name: "h", Type: "webhook", URL: url}).Send(context.Background(), sampleEv)
	var se *SendError
	if !errors.As(err, &se) || !se.Retryable || se.Status != 0 {
		t.Fatalf("network error: %#v", err)
	}

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); d != 90*time.Second {
		t.Fatalf("http-date Retry-After = %v", d)
	}
	for _, v := range []string{"", "-1", "soon", now.Add(-time.Minute).Format(http.TimeFormat)} {
		if d := parseRetryAfter(v, now); d != 0 {
			t.Fatalf("Retry-After %q = %v", v, d)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, n := range []config.Notifier{
		{Name: "a", Type: "pagerduty"},
		{Name: "b", Type: "slack"},
		{Name: "c", Type: "telegram", BotToken: "x"},
		{Name: "d", Type: "email", SMTP: "localhost:25", From: "a@b.c"},
		{Name: "e", Type: "email", SMTP: "nohost", From: "a@b.c", To: []string{"x@y.z"}},
		{Name: "f", Type: "carrier-pigeon"},
	} {
		if _, err := New(n, Options{}); err == nil {
			t.Errorf("New(%+v) succeeded", n)
		}
	}
}
