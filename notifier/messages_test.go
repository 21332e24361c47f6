package notifier

import (
	"testing"
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
  eu-west: down connect_timeout (10000 ms)
  us-east: down connect_timeout (10001 ms)
`

func TestSummary(t *testing.T) {
	abst := sampleEv
	abst.Regions = map[string]RegionVote{
		"b": {Vote: "down"}, "a": {Vote: "abstain"}, "c": {Vote: "up"}, "d": {Vote: "up"}, "e": {Vote: "down", Error: "dns"},
	}
	bare := sampleEv
	bare.Regions = nil
	noEnd := sampleEv
	noEnd.Action = ActionResolve
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{sampleEv, sampleSummary},
		{abst, "api DOWN: b down, e dns; c up, d up; a abstain"},
		{bare, "api DOWN"},
		{resolved(sampleEv), "api UP after 12m3s"},
		{noEnd, "api UP"},
		{Event{Action: ActionTest, Check: "api"}, "vantage TEST notification: api"},
		{Event{Action: ActionTest}, "vantage TEST notification"},
	} {
		for i := 0; i < 5; i++ { // map order must not matter
			if got := Summary(tc.e); got != tc.want {
				t.Fatalf("Summary = %q, want %q", got, tc.want)
			}
		}
	}
}

func TestText(t *testing.T) {
	if got := Text(sampleEv); got != sampleText {
		t.Fatalf("Text:\n%s\nwant:\n%s", got, sampleText)
	}
	want := `api UP after 12m3s
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
  eu-west: down connect_timeout (10000 ms)
  us-east: down connect_timeout (10001 ms)
`
	if got := Text(resolved(sampleEv)); got != want {
		t.Fatalf("Text:\n%s\nwant:\n%s", got, want)
	}
}
