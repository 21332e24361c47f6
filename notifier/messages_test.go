package notifier

import (
	"testing"
	"time"
)

const sampleText = sampleSummary + `
Target: https://api.example.com/health
Down since: 2026-11-22T10:00:00Z
Severity: critical
Group: Public API
Incident: inc-1
Status page: https://status.example.com/
Regions:
  ap-south: up (41 ms)
  eu-west: down: connection timed out (10000 ms)
  us-east: down: connection timed out (10001 ms)
`

func TestDescribe(t *testing.T) {
	for code, want := range map[string]string{
		"":                "",
		"http_503":        "HTTP 503",
		"http_404":        "HTTP 404",
		"http_status":     "unexpected HTTP status",
		"http_5xx":        "http 5xx",
		"http_999":        "http 999",
		"connect_refused": "connection refused",
		"connect_timeout": "connection timed out",
		"dns_nxdomain":    "DNS: no such name",
		"dns_servfail":    "DNS: server failure",
		"dns_bad_glue":    "DNS error: bad glue",
		"dns":             "DNS lookup failed",
		"tls":             "TLS error",
		"tls_expired":     "TLS error",
		"tls_unknown_ca":  "TLS error",
		"timeout":         "no answer in time",
		"body_mismatch":   "unexpected response",
		"icmp_loss":       "packet loss",
		"something_new":   "something new",
	} {
		if got := Describe(code); got != want {
			t.Errorf("Describe(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestHeadline(t *testing.T) {
	checkout := Event{Action: ActionTrigger, IncidentID: "i", Check: "checkout", DisplayName: "Checkout",
		Regions: map[string]RegionVote{
			"eu-west": {Vote: "down", Error: "http_503"}, "us-east": {Vote: "down", Error: "http_503"},
			"ap-south": {Vote: "down", Error: "http_503"}}}
	mixed := checkout
	mixed.Regions = map[string]RegionVote{
		"eu-west": {Vote: "down", Error: "http_503"}, "us-east": {Vote: "down", Error: "connect_timeout"},
		"ap-south": {Vote: "down", Error: "connect_timeout"}, "sa-east": {Vote: "up"}}
	noCodes := checkout
	noCodes.Regions = map[string]RegionVote{"b": {Vote: "down"}, "a": {Vote: "abstain"}, "c": {Vote: "up"}}
	someCodes := checkout
	someCodes.Regions = map[string]RegionVote{"b": {Vote: "down"}, "a": {Vote: "down", Error: "dns_nxdomain"}}
	bare := sampleEv
	bare.Regions = nil
	allUp := sampleEv
	allUp.Regions = map[string]RegionVote{"a": {Vote: "up"}}
	noEnd := sampleEv
	noEnd.Action = ActionResolve
	named := resolved(sampleEv)
	named.DisplayName = "Public API"
	testResolve := Event{Action: ActionResolve, Test: true, Check: "vantage-test"}
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{checkout, "Checkout is not reachable from 3 of 3 regions (ap-south, eu-west, us-east): HTTP 503"},
		{mixed, "Checkout is not reachable from 3 of 4 regions: connection timed out in ap-south, us-east; HTTP 503 in eu-west"},
		{noCodes, "Checkout is not reachable from 1 of 3 regions (b)"},
		{someCodes, "Checkout is not reachable from 2 of 2 regions: DNS: no such name in a; failing in b"},
		{sampleEv, sampleSummary},
		{bare, "api is down"},
		{allUp, "api is down"},
		{resolved(sampleEv), "api is up again after 12m3s"},
		{named, "Public API is up again after 12m3s"},
		{noEnd, "api is up again"},
		{Event{Action: ActionTest, Check: "api"}, "vantage TEST notification: api"},
		{Event{Action: ActionTest}, "vantage TEST notification"},
		{testResolve, "vantage TEST notification resolved: vantage-test"},
	} {
		for i := 0; i < 5; i++ { // map order must not matter
			if got := Headline(tc.e); got != tc.want {
				t.Fatalf("Headline = %q, want %q", got, tc.want)
			}
		}
	}
}

// TestHeadlineKorean: a display name in Korean is used as it is.
func TestHeadlineKorean(t *testing.T) {
	e := sampleEv
	e.DisplayName = "결제 API"
	want := "결제 API is not reachable from 2 of 3 regions (eu-west, us-east): connection timed out"
	if got := Headline(e); got != want {
		t.Fatalf("Headline = %q, want %q", got, want)
	}
	// The check's name joins the details when the display name differs.
	if fs := fields(e); fs[0] != (field{"Check", "api"}) {
		t.Fatalf("fields %v", fs)
	}
}

func TestText(t *testing.T) {
	if got := Text(sampleEv); got != sampleText {
		t.Fatalf("Text:\n%s\nwant:\n%s", got, sampleText)
	}
	want := `api is up again after 12m3s
Target: https://api.example.com/health
Down since: 2026-11-22T10:00:00Z
Resolved at: 2026-11-22T10:12:03Z
Duration: 12m3s
Severity: critical
Group: Public API
Incident: inc-1
Status page: https://status.example.com/
Regions:
  ap-south: up (41 ms)
  eu-west: down: connection timed out (10000 ms)
  us-east: down: connection timed out (10001 ms)
`
	if got := Text(resolved(sampleEv)); got != want {
		t.Fatalf("Text:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatLeft(t *testing.T) {
	for d, want := range map[time.Duration]string{
		13*24*time.Hour + 5*time.Hour: "13 days", 48 * time.Hour: "2 days", 47 * time.Hour: "47 hours",
		2 * time.Hour: "2 hours", 119 * time.Minute: "119 minutes", time.Minute: "1 minute", 0: "0 minutes",
	} {
		if got := formatLeft(d); got != want {
			t.Errorf("formatLeft(%v) = %q, want %q", d, got, want)
		}
	}
}
