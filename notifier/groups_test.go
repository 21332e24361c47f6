package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier/smtptest"
)

// groupEv is a grouped page of n checks of group shop; the last added of
// them are new.
func groupEv(action Action, n, added int) Event {
	e := Event{Action: action, Kind: KindGroup, IncidentID: GroupID(0, "shop", t0), Group: "shop",
		StartedAt: t0, Severity: "critical", StatusPageURL: "https://status.example.com/",
		Regions: map[string]RegionVote{}}
	for i := range n {
		m := GroupMember{Check: fmt.Sprintf("c%02d", i), Target: fmt.Sprintf("https://c%02d.example.com/", i),
			IncidentID: fmt.Sprintf("inc-%02d", i), StartedAt: t0.Add(time.Duration(i) * time.Second),
			New:     i >= n-added,
			Regions: map[string]RegionVote{"eu-west": {Vote: "down", Error: "http_503"}, "us-east": {Vote: "down", Error: "http_503"}}}
		if action == ActionResolve {
			at := t1
			m.ResolvedAt = &at
		}
		e.Members = append(e.Members, m)
	}
	if action == ActionUpdate {
		e.Seq = n
	}
	if action == ActionResolve {
		at := t1
		e.ResolvedAt = &at
	}
	return e
}

func TestGroupID(t *testing.T) {
	a := GroupID(0, "shop", t0)
	if a != GroupID(0, "shop", t0.In(time.FixedZone("x", 3600))) || !strings.HasPrefix(a, "group-") || len(a) > maxIDLen {
		t.Fatalf("GroupID %q", a)
	}
	for _, b := range []string{GroupID(1, "shop", t0), GroupID(0, "shop2", t0), GroupID(0, "shop", t0.Add(time.Nanosecond))} {
		if b == a {
			t.Fatalf("GroupID does not tell %q apart", b)
		}
	}
}

func TestGroupHeadlineAndText(t *testing.T) {
	for _, c := range []struct {
		e    Event
		want string
	}{
		{groupEv(ActionTrigger, 1, 0), "1 check in group shop is down: c00"},
		{groupEv(ActionTrigger, 3, 0), "3 checks in group shop are down: c00, c01 and c02"},
		{groupEv(ActionTrigger, 30, 0), "30 checks in group shop are down: c00, c01, c02, c03, c04 and 25 more"},
		{groupEv(ActionUpdate, 7, 2), "2 more checks in group shop are down, 7 in all: c05 and c06"},
		{groupEv(ActionUpdate, 4, 1), "1 more check in group shop is down, 4 in all: c03"},
		{groupEv(ActionUpdate, 4, 0), "4 checks in group shop are down: c00, c01, c02 and c03"},
		{func() Event { e := groupEv(ActionRepeat, 7, 0); e.Seq, e.At = 1, t0.Add(time.Hour); return e }(),
			"group shop still DOWN for 1h: 7 checks: c00, c01, c02, c03, c04 and 2 more"},
		{groupEv(ActionResolve, 7, 0), "all 7 checks in group shop are up again after 12m3s"},
		{groupEv(ActionResolve, 1, 0), "c00 in group shop is up again after 12m3s"},
	} {
		if got := Headline(c.e); got != c.want {
			t.Errorf("Headline(%s of %d) = %q, want %q", c.e.Action, len(c.e.Members), got, c.want)
		}
	}
	e := groupEv(ActionUpdate, 3, 1)
	up := t0.Add(time.Minute)
	e.Members[0].ResolvedAt = &up
	text := Text(e)
	for _, want := range []string{
		"Checks down: 2 of 3\n",
		"Group: shop\n",
		"Incident: " + e.IncidentID + "\n",
		"Checks:\n  c00 (https://c00.example.com/): up again after 1m\n",
		"  c01 (https://c01.example.com/): not reachable from 2 of 2 regions (eu-west, us-east): HTTP 503\n",
		"  c02 (https://c02.example.com/) (new): not reachable",
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("Text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Regions:") {
		t.Fatalf("a grouped page's text has a regions block:\n%s", text)
	}
}

// The webhook body of a grouped page: the contract's fields (check and
// target empty), then kind, group and members; an update is "update" with
// seq the number of checks listed.
func TestGroupWebhookBody(t *testing.T) {
	e := groupEv(ActionUpdate, 2, 1)
	e.Members[0].Regions = nil
	e.Members[1].Regions = map[string]RegionVote{"eu-west": {Vote: "down", Error: "http_503"}}
	b, _ := json.Marshal(NewWebhookBody(e))
	assertJSON(t, b, `{"event": "update", "incident_id": "`+e.IncidentID+`", "check": "", "target": "",
		"started_at": "2026-11-22T10:00:00Z", "resolved_at": null, "regions": {},
		"message": "1 more check in group shop is down, 2 in all: c01", "seq": 2,
		"kind": "group", "group": "shop", "members": [
		{"check": "c00", "target": "https://c00.example.com/", "incident_id": "inc-00", "started_at": "2026-11-22T10:00:00Z"},
		{"check": "c01", "target": "https://c01.example.com/", "incident_id": "inc-01", "started_at": "2026-11-22T10:00:01Z",
		 "new": true, "regions": {"eu-west": {"vote": "down", "error": "http_503", "latency_ms": 0}}}]}`)
	for action, want := range map[Action]string{ActionTrigger: "down", ActionRepeat: "repeat", ActionResolve: "up"} {
		if got := NewWebhookBody(groupEv(action, 2, 0)).Event; got != want {
			t.Fatalf("%s: event %q, want %q", action, got, want)
		}
	}
}

// PagerDuty: trigger and update are triggers of the group's dedup_key (an
// update lands in the open alert), with the checks in custom_details; the
// resolve closes the key.
func TestGroupPagerDuty(t *testing.T) {
	rec := newRecorder(t, always(http.StatusAccepted))
	p := mustNew(t, config.Notifier{Name: "pager", Type: "pagerduty", RoutingKey: "rk", URL: rec.URL})
	for _, e := range []Event{groupEv(ActionTrigger, 2, 0), groupEv(ActionUpdate, 3, 1), groupEv(ActionResolve, 3, 0)} {
		send(t, p, e)
	}
	reqs := rec.requests()
	var bodies []pdEvent
	for _, r := range reqs {
		var b pdEvent
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	id := GroupID(0, "shop", t0)
	for i, want := range []string{"trigger", "trigger", "resolve"} {
		if bodies[i].EventAction != want || bodies[i].DedupKey != id {
			t.Fatalf("request %d: %s of %s, want %s of %s", i, bodies[i].EventAction, bodies[i].DedupKey, want, id)
		}
	}
	up := bodies[1].Payload
	if up.Summary != "1 more check in group shop is down, 3 in all: c02" || up.Source != "group shop" ||
		up.Group != "shop" || up.Severity != "critical" || up.Component != "" {
		t.Fatalf("update payload %+v", up)
	}
	ms, _ := up.CustomDetails["members"].([]any)
	if len(ms) != 3 || up.CustomDetails["kind"] != "group" || up.CustomDetails["checks"] != float64(3) {
		t.Fatalf("update details %+v", up.CustomDetails)
	}
}

// Slack, Discord and Teams list the checks; Opsgenie notes an update on
// the open alert.
func TestGroupChatBodies(t *testing.T) {
	e := groupEv(ActionTrigger, 3, 0)
	b, _ := json.Marshal(slackBody(e))
	if !strings.Contains(string(b), "c02 (https://c02.example.com/): not reachable from 2 of 2 regions") {
		t.Fatalf("slack body lacks the checks: %s", b)
	}
	d, _ := json.Marshal(discordBody(e))
	if !strings.Contains(string(d), "c01 (https://c01.example.com/)") {
		t.Fatalf("discord body lacks the checks: %s", d)
	}
	m, _ := json.Marshal(teamsBody(e))
	if !strings.Contains(string(m), "c00 (https://c00.example.com/)") {
		t.Fatalf("teams body lacks the checks: %s", m)
	}

	rec := newRecorder(t, always(http.StatusAccepted))
	og := mustNew(t, config.Notifier{Name: "og", Type: "opsgenie", APIKey: "k", URL: rec.URL})
	send(t, og, e)
	send(t, og, groupEv(ActionUpdate, 4, 1))
	reqs := rec.requests()
	if reqs[0].Path != "/v2/alerts" || !strings.Contains(string(reqs[0].Body), `"entity":"group shop"`) {
		t.Fatalf("opsgenie create %s %s", reqs[0].Path, reqs[0].Body)
	}
	if want := "/v2/alerts/" + e.IncidentID + "/notes"; reqs[1].Path != want {
		t.Fatalf("opsgenie update at %s, want %s", reqs[1].Path, want)
	}
}

// The outbox takes a grouped page's trigger, updates (each size once),
// reminders and resolve, and refuses an update of anything else.
func TestGroupOutbox(t *testing.T) {
	rec := newRecorder(t, nil)
	o := openOutbox(t, filepath.Join(t.TempDir(), "o.db"), []Provider{hook(t, "hook", rec)}, OutboxOptions{})
	ctx := context.Background()
	for _, e := range []Event{groupEv(ActionTrigger, 2, 0), groupEv(ActionUpdate, 3, 1), groupEv(ActionUpdate, 3, 1),
		groupEv(ActionResolve, 3, 0)} {
		if err := o.Enqueue(ctx, e, "hook"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three deliveries", func() bool { return rec.count() == 3 })
	var got []string
	for _, r := range rec.requests() {
		got = append(got, eventOf(t, r))
	}
	if strings.Join(got, ",") != "down,update,up" {
		t.Fatalf("delivered %v", got)
	}
	bad := sampleEv
	bad.Action, bad.Seq = ActionUpdate, 2
	if err := o.Enqueue(ctx, bad, "hook"); err == nil {
		t.Fatal("an update of a single check's incident accepted")
	}
	noSeq := groupEv(ActionUpdate, 2, 1)
	noSeq.Seq = 0
	if err := o.Enqueue(ctx, noSeq, "hook"); err == nil {
		t.Fatal("an update without seq accepted")
	}
	badID := groupEv(ActionTrigger, 2, 0)
	badID.IncidentID = "inc-1"
	if err := o.Enqueue(ctx, badID, "hook"); err == nil {
		t.Fatal("a grouped page with an incident's id accepted")
	}
}

// Email: both parts list the checks; an update replies in the page's
// thread.
func TestGroupEmail(t *testing.T) {
	srv, pool := smtptest.Start(t, "implicit")
	n := emailNotifier(srv, "implicit")
	n.Auth, n.Username, n.Password = "login", "user", "pw"
	p := mustNewOpts(t, n, Options{RootCAs: pool})
	send(t, p, groupEv(ActionTrigger, 2, 0))
	send(t, p, groupEv(ActionUpdate, 3, 1))
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	_, text, html := smtptest.Alternative(t, msgs[0].Data)
	if !strings.Contains(text, "c01 (https://c01.example.com/): not reachable") || !strings.Contains(html, "<li>c01 (https://c01.example.com/): not reachable") {
		t.Fatalf("parts:\n%s\n%s", text, html)
	}
	update, _, _ := smtptest.Alternative(t, msgs[1].Data)
	id := GroupID(0, "shop", t0)
	if s := subject(t, update); s != "1 more check in group shop is down, 3 in all: c02" {
		t.Errorf("update Subject %q", s)
	}
	if update.Header.Get("Message-Id") != "<"+id+".update#3@vantage>" || update.Header.Get("In-Reply-To") != "<"+id+".trigger@vantage>" {
		t.Errorf("threading: %v", update.Header)
	}
}
