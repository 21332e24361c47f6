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
	"github.com/vantage-dev/vantage/notifier/smtptest"
)

// certEvents are the warning about an expiring certificate and its
// resolve once a renewed one is served.
func certEvents(t *testing.T) (Event, Event) {
	t.Helper()
	tc, _ := smtptest.Cert(t)
	c := *tc.Leaf
	c.SerialNumber = c.SerialNumber.SetInt64(0x0A1B2C)
	c.NotAfter = t0.Add(13*24*time.Hour + 5*time.Hour)
	c.DNSNames = []string{"api.example.com"}
	info := NewCertInfo(&c)
	warn := Event{Action: ActionTrigger, Kind: KindCert, IncidentID: CertID("api", info.Serial), Check: "api",
		DisplayName: "Public API", Target: "https://api.example.com/health", StartedAt: t0, At: t0,
		Severity: NoticeSeverity, StatusPageURL: "https://status.example.com/", Cert: &info}
	newInfo := CertInfo{Subject: info.Subject, Serial: "0D0E0F", NotAfter: t0.Add(90 * 24 * time.Hour)}
	done := warn
	done.Action = ActionResolve
	end := t0.Add(2 * 24 * time.Hour)
	done.ResolvedAt, done.Renewed = &end, &newInfo
	return warn, done
}

func TestCertIDAndInfo(t *testing.T) {
	warn, _ := certEvents(t)
	if warn.IncidentID != "cert:api:A1B2C" || warn.Cert.Serial != "A1B2C" || warn.Cert.Subject != "CN=vantage test smtp" ||
		warn.Cert.Issuer != "CN=vantage test smtp" || warn.Cert.DNSNames[0] != "api.example.com" {
		t.Fatalf("event %+v cert %+v", warn, warn.Cert)
	}
	if !warn.IsNotice() {
		t.Fatal("a certificate warning is a notice")
	}
	// Too long for the sent log: hashed, stable, distinct; providers keep the full key.
	long := strings.Repeat("c", 40)
	serial := strings.Repeat("F", 40)
	id := CertID(long, serial)
	if len(id) > 64 || !strings.HasPrefix(id, "cert:") || id != CertID(long, serial) || id == CertID(long, serial+"0") {
		t.Fatalf("long id %q", id)
	}
	e := warn
	e.Check, e.IncidentID, e.Cert = long, id, &CertInfo{Serial: serial}
	if k := alertKey(e); k != "cert:"+long+":"+serial {
		t.Fatalf("alert key %q", k)
	}
}

func TestCertMessages(t *testing.T) {
	warn, done := certEvents(t)
	if h := Headline(warn); h != "Public API's TLS certificate (CN=vantage test smtp) expires in 13 days, on 2026-12-05 15:00 UTC" {
		t.Errorf("warning headline %q", h)
	}
	expired := warn
	expired.At = t0.Add(16 * 24 * time.Hour)
	if h := Headline(expired); h != "Public API's TLS certificate (CN=vantage test smtp) expired 2 days ago, on 2026-12-05 15:00 UTC" {
		t.Errorf("expired headline %q", h)
	}
	if h := Headline(done); h != "Public API serves a renewed TLS certificate (CN=vantage test smtp), valid until 2027-02-20 10:00 UTC" {
		t.Errorf("resolve headline %q", h)
	}
	gone := done
	gone.Renewed = nil
	if h := Headline(gone); h != "Public API no longer serves the expiring TLS certificate (CN=vantage test smtp)" {
		t.Errorf("resolve headline %q", h)
	}
	want := `Public API's TLS certificate (CN=vantage test smtp) expires in 13 days, on 2026-12-05 15:00 UTC
Check: api
Target: https://api.example.com/health
Certificate: CN=vantage test smtp
Issuer: CN=vantage test smtp
Serial: A1B2C
Expires: 2026-12-05T15:00:00Z
Warned since: 2026-11-22T10:00:00Z
Severity: warning
Incident: cert:api:A1B2C
Status page: https://status.example.com/
`
	if got := Text(warn); got != want {
		t.Errorf("Text:\n%s\nwant:\n%s", got, want)
	}
}

// TestCertProviders: PagerDuty at warning with dedup_key cert:CHECK:SERIAL
// (whatever the notifier's severity), resolved by the same key; Opsgenie by
// alias; the webhook's cert_expiring and cert_renewed.
func TestCertProviders(t *testing.T) {
	warn, done := certEvents(t)
	rec := newRecorder(t, always(http.StatusAccepted))
	pd := mustNew(t, config.Notifier{Name: "pd", Type: "pagerduty", RoutingKey: "rk", URL: rec.URL + "/v2/enqueue", Severity: "critical"})
	og := mustNew(t, config.Notifier{Name: "og", Type: "opsgenie", URL: rec.URL, APIKey: "k"})
	hook := mustNew(t, config.Notifier{Name: "hook", Type: "webhook", URL: rec.URL + "/hook"})
	for _, p := range []Provider{pd, og, hook} {
		send(t, p, warn)
		send(t, p, done)
	}
	reqs := rec.requests()
	assertJSON(t, reqs[0].Body, `{"routing_key": "rk", "event_action": "trigger", "dedup_key": "cert:api:A1B2C",
		"payload": {"summary": "Public API's TLS certificate (CN=vantage test smtp) expires in 13 days, on 2026-12-05 15:00 UTC",
			"source": "https://api.example.com/health", "severity": "warning", "timestamp": "2026-11-22T10:00:00Z",
			"component": "api", "class": "certificate",
			"custom_details": {"incident_id": "cert:api:A1B2C", "started_at": "2026-11-22T10:00:00Z", "kind": "cert",
				"display_name": "Public API", "regions": {}, "down_regions": [],
				"certificate": {"subject": "CN=vantage test smtp", "issuer": "CN=vantage test smtp", "serial": "A1B2C",
					"not_after": "2026-12-05T15:00:00Z", "dns_names": ["api.example.com"]}}},
		"links": [{"href": "https://status.example.com/", "text": "Status page"}],
		"client": "Vantage", "client_url": "https://status.example.com/"}`)
	assertJSON(t, reqs[1].Body, `{"routing_key": "rk", "event_action": "resolve", "dedup_key": "cert:api:A1B2C"}`)

	checkReq(t, reqs[2], "POST", "/v2/alerts", "", nil)
	var create map[string]any
	json.Unmarshal(reqs[2].Body, &create)
	if create["alias"] != "cert:api:A1B2C" || create["priority"] != "P3" || !strings.Contains(create["message"].(string), "TLS certificate") {
		t.Errorf("opsgenie create %v", create)
	}
	checkReq(t, reqs[3], "POST", "/v2/alerts/cert:api:A1B2C/close", "identifierType=alias", nil)

	var w1, w2 map[string]any
	json.Unmarshal(reqs[4].Body, &w1)
	json.Unmarshal(reqs[5].Body, &w2)
	if w1["event"] != "cert_expiring" || w1["severity"] != "warning" || w1["display_name"] != "Public API" ||
		w1["cert"].(map[string]any)["serial"] != "A1B2C" || w1["renewed"] != nil {
		t.Errorf("webhook warning %v", w1)
	}
	if w2["event"] != "cert_renewed" || w2["renewed"].(map[string]any)["serial"] != "0D0E0F" || w2["resolved_at"] != "2026-11-24T10:00:00Z" {
		t.Errorf("webhook renewed %v", w2)
	}
}

// TestCertThroughOutbox: the outbox takes certificate warnings under
// their cert: id, and refuses them under another.
func TestCertThroughOutbox(t *testing.T) {
	warn, done := certEvents(t)
	rec := newRecorder(t, nil)
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hook(t, "hook", rec)}, OutboxOptions{})
	ctx := context.Background()
	bad := warn
	bad.IncidentID = "cert-api-A1B2C"
	if err := o.Enqueue(ctx, bad, "hook"); err == nil || !strings.Contains(err.Error(), `must start with "cert:"`) {
		t.Fatalf("bad id: %v", err)
	}
	for _, e := range []Event{warn, warn, done} {
		if err := o.Enqueue(ctx, e, "hook"); err != nil {
			t.Fatal(err)
		}
	}
	waitState2(t, o, warn.IncidentID, "hook", ActionResolve, StateDelivered)
	o.Close()
	if evs := webhookEvents(t, rec.requests()); len(evs) != 2 || evs[0].Event != "cert_expiring" || evs[1].Event != "cert_renewed" {
		t.Fatalf("receiver got %+v", evs)
	}
}

// TestPagerDutySeverityFromConfig: loaded from a config, a PagerDuty
// notifier without severity pages at the check's severity; one with a
// severity at its own.
func TestPagerDutySeverityFromConfig(t *testing.T) {
	rec := newRecorder(t, always(http.StatusAccepted))
	c, err := config.Parse("t.yaml", []byte(`
notifiers:
  - {name: pd, type: pagerduty, routing_key: k, url: "`+rec.URL+`"}
  - {name: pd-info, type: pagerduty, routing_key: k, url: "`+rec.URL+`", severity: info}
checks:
  - {name: api, type: tcp, target: "api.example.com:443", severity: warning, notify: [pd, pd-info]}
  - {name: db, type: tcp, target: "db.example.com:5432", notify: [pd]}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := NewAll(c.Notifiers, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		check string
		p     Provider
		want  string
	}{{"api", ps[0], "warning"}, {"api", ps[1], "info"}, {"db", ps[0], "critical"}} {
		ck := c.CheckByName(tc.check)
		e := sampleEv
		e.Check, e.Target, e.Severity = ck.Name, ck.TargetString(), ck.Severity
		send(t, tc.p, e)
		var body struct {
			Payload struct{ Severity string } `json:"payload"`
		}
		reqs := rec.requests()
		json.Unmarshal(reqs[len(reqs)-1].Body, &body)
		if body.Payload.Severity != tc.want {
			t.Errorf("%s via %s: severity %q, want %q", tc.check, tc.p.Name(), body.Payload.Severity, tc.want)
		}
	}
}
