package statuspage

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/store"
)

// secret bits that must never reach a visitor.
const (
	secretTarget = "https://ops:hunter2@10.1.2.3:8443/health?token=SECRETTOKEN"
	secretMsg    = "dial tcp 10.9.8.7:443: connect: connection refused"
	secretAddr   = "10.20.30.40:7946"
)

// leakyStatus is testStatus with targets, raw messages and member
// addresses, versions and config hashes filled in, as the node gives them.
func leakyStatus() *Status {
	st := testStatus()
	st.Node.Version = "v9.9.9-secret"
	st.Cluster.Members = []Member{
		{Name: "eu-1", Region: "eu-west", State: "alive", Addr: secretAddr, Version: "v9.9.9-secret", ConfigHash: "cafebabe"},
		{Name: "us-1", Region: "us-east", State: "alive", Addr: "10.20.30.41:7946"}}
	st.Cluster.Regions["ap-south"] = RegionInfo{Eligible: false, Reason: "ap-1: canary tcp://10.5.5.5:53 failed"}
	for i := range st.Checks {
		st.Checks[i].Target = secretTarget
		st.Checks[i].Type = "http"
	}
	db := &st.Checks[1]
	db.Regions = map[string]*RegionVote{
		"eu-west":  {Vote: "down", Error: "connect_refused", Message: secretMsg, Phases: &Phases{ConnectMS: 1}},
		"us-east":  {Vote: "down", Error: "connect_refused", Message: secretMsg},
		"ap-south": {Vote: "abstain"}}
	return st
}

// storeWithDetails is newStore with the db incident's Details as the node
// writes them, and a third incident whose Details are JSON.
func storeWithDetails(t *testing.T, details string) *store.Store {
	t.Helper()
	st := newStore(t)
	ctx := context.Background()
	if _, err := st.OpenIncident(ctx, store.Incident{ID: "inc-web", Check: "web", Title: "web is down", State: "down",
		StartedAt: testNow.Add(-3 * time.Hour), Details: IncidentDetailsOf(map[string]*RegionVote{
			"eu-west": {Vote: "down", Error: "http_503", Message: secretMsg}, "us-east": {Vote: "down", Error: "timeout"},
			"ap-south": {Vote: "up"}})}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ResolveIncident(ctx, "inc-web", testNow.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if details != "" {
		// db's current incident, with the node's details
		if _, err := st.OpenIncident(ctx, store.Incident{ID: "inc-db2", Check: "db", Title: "DB is down", State: "down",
			StartedAt: testNow.Add(-5 * time.Minute), Details: details}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func newServerWith(t *testing.T, h History, st *Status, p Page) (*Server, *fakeSource, *httptest.Server) {
	t.Helper()
	src := &fakeSource{ready: true, st: st}
	s := New(Options{Source: src, History: h, Page: p, Now: func() time.Time { return testNow }, APIToken: testToken,
		Writer: nil})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, src, ts
}

// An incident reads in words, from the votes and error codes it opened
// with, in the page, the incident's page, the feed and the Statuspage
// and v1 documents; the old vote tally never shows.
func TestReadableIncidents(t *testing.T) {
	h := storeWithDetails(t, "down: eu-west,us-east; up: none; abstain: ap-south")
	st := leakyStatus()
	st.Checks[1].IncidentID = "inc-db2"
	_, _, ts := newServerWith(t, h, st, testPage())
	// db's incident: the legacy details name the regions, the check's
	// current votes (same incident) give the codes.
	wantDB := "Database is not reachable from 2 of 3 regions (eu-west, us-east): connection refused"
	// web's: JSON details with two codes.
	wantWeb := "web is not reachable from 2 of 3 regions: HTTP 503 in eu-west; no answer in time in us-east"
	for _, p := range []string{"/", "/incidents/inc-db2", "/feed.atom", "/api/v2/summary.json", "/api/v2/incidents.json",
		"/api/v2/incidents/unresolved.json", "/api/v1/incidents", "/checks/db"} {
		_, body := fetch(t, ts, p)
		b := string(body)
		if !strings.Contains(b, wantDB) {
			t.Errorf("%s lacks %q", p, wantDB)
		}
		if strings.Contains(b, "down: eu-west") || strings.Contains(b, "abstain: ") {
			t.Errorf("%s shows the vote tally", p)
		}
	}
	for _, p := range []string{"/", "/incidents/inc-web", "/feed.atom", "/api/v2/incidents.json", "/api/v1/incidents"} {
		if _, body := fetch(t, ts, p); !strings.Contains(string(body), wantWeb) {
			t.Errorf("%s lacks %q", p, wantWeb)
		}
	}
	_, body := fetch(t, ts, "/incidents/inc-web")
	if !strings.Contains(string(body), "web is operational again.") || !strings.Contains(string(body), "1h 0m") {
		t.Errorf("resolved incident page:\n%s", body)
	}
	// An incident without details that is not the check's current one
	// says so in general words.
	_, body = fetch(t, ts, "/incidents/inc-new")
	if !strings.Contains(string(body), "Database is not responding as expected; we are investigating.") {
		t.Errorf("incident without details:\n%s", body)
	}
	// /api/v1/incidents keeps free-text details only.
	_, body = fetch(t, ts, "/api/v1/incidents")
	var doc IncidentsJSON
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, inc := range doc.Incidents {
		if inc.Details != "" {
			t.Errorf("%s: details %q", inc.ID, inc.Details)
		}
	}
}

func TestParseDetails(t *testing.T) {
	for in, want := range map[string]string{
		"down: a,b; up: c; abstain: none":                 "a=down b=down c=up",
		"down: none; up: a; abstain: b":                   "a=up b=abstain",
		`{"regions":{"x":{"vote":"down","error":"tls"}}}`: "x=down:tls",
		"free text about the outage":                      "",
		"down: a; sideways: b":                            "",
		`{"regions":{}}`:                                  "",
		"":                                                "",
		"{not json":                                       "",
		"down: a; up: b; abstain: c; down: d":             "a=down b=up c=abstain d=down",
		"down:  eu-west , us-east ;up:none;abstain:ap-south": "ap-south=abstain eu-west=down us-east=down",
	} {
		regions, ok := parseDetails(in)
		var parts []string
		for _, r := range sortedKeys(regions) {
			p := r + "=" + regions[r].Vote
			if regions[r].Error != "" {
				p += ":" + regions[r].Error
			}
			parts = append(parts, p)
		}
		if got := strings.Join(parts, " "); got != want || ok != (want != "") {
			t.Errorf("parseDetails(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}

// Without the token nothing a visitor can fetch shows a target, a raw
// error message, a member's address or version; with it, /api/v1/status
// shows them.
func TestNothingPublicShowsSecrets(t *testing.T) {
	h := storeWithDetails(t, "")
	s, _, ts := newServerWith(t, h, leakyStatus(), testPage())
	// a result with a raw message in the history
	h.AddBatch([]store.Result{{Node: "eu-1", Region: "eu-west", Check: "db", Time: testNow.Add(-time.Minute), Code: "connect_refused", Message: secretMsg}})
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"SECRETTOKEN", "hunter2", "10.1.2.3", "10.9.8.7", "10.20.30.4", "v9.9.9-secret", "cafebabe", "10.5.5.5"}
	paths := []string{"/", "/checks/db", "/checks/api", "/incidents/inc-new", "/incidents/inc-web", "/feed.atom",
		"/api/v1/status", "/api/v1/incidents", "/api/v2/summary.json", "/api/v2/status.json", "/api/v2/components.json",
		"/api/v2/incidents.json", "/api/v2/incidents/unresolved.json", "/api/v2/scheduled-maintenances.json",
		"/badge/db.svg", "/badge/db.svg?type=uptime&window=24h",
		"/api/v1/checks/db/history?from=2026-11-22T09:00:00Z&to=2026-11-22T10:00:00Z",
		"/api/v1/checks/db/history.csv?from=2026-11-22T09:00:00Z&to=2026-11-22T10:00:00Z"}
	for _, p := range paths {
		for _, gz := range []bool{false, true} {
			hdr := []string{}
			if gz {
				hdr = append(hdr, "Accept-Encoding", "gzip")
			}
			resp, body := fetch(t, ts, p, hdr...)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d", p, resp.StatusCode)
			}
			if resp.Header.Get("Content-Encoding") == "gzip" {
				body = gunzip(t, body)
			}
			for _, sec := range secrets {
				if strings.Contains(string(body), sec) {
					t.Errorf("%s shows %q", p, sec)
				}
			}
		}
	}
	// The public status keeps what the contract says it keeps.
	_, body := fetch(t, ts, "/api/v1/status")
	var pub Status
	if err := json.Unmarshal(body, &pub); err != nil {
		t.Fatal(err)
	}
	db := pub.Checks[1]
	if db.Name != "db" || db.State != "down" || db.IncidentID != "inc-new" || db.Regions["eu-west"].Error != "connect_refused" ||
		db.Regions["eu-west"].Vote != "down" || db.Regions["eu-west"].Phases == nil || pub.Checks[0].Regions["eu-west"].LatencyMS != 41.5 ||
		pub.Cluster.Members[0].Name != "eu-1" || pub.Cluster.Members[0].State != "alive" || pub.Cluster.Regions["ap-south"].Eligible {
		t.Errorf("public status lost too much: %s", body)
	}
	// With the token: everything.
	resp, body := fetch(t, ts, "/api/v1/status", "Authorization", "Bearer "+testToken)
	for _, want := range []string{secretTarget, secretMsg, secretAddr, "v9.9.9-secret", "cafebabe"} {
		if !strings.Contains(strings.ReplaceAll(string(body), `\u0026`, "&"), want) {
			t.Errorf("operator status lacks %q", want)
		}
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "private, no-cache" || !strings.Contains(resp.Header.Get("Vary"), "Authorization") {
		t.Errorf("operator status headers %v", resp.Header)
	}
	// A wrong token is refused rather than answered with the public view.
	if resp, _ := fetch(t, ts, "/api/v1/status", "Authorization", "Bearer wrong-token-0123456789"); resp.StatusCode != 401 ||
		resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	// Both views are encoded once per Status.
	n := s.encodes.Load()
	for range 3 {
		fetch(t, ts, "/api/v1/status")
		fetch(t, ts, "/api/v1/status", "Authorization", "Bearer "+testToken)
	}
	if m := s.encodes.Load(); m != n {
		t.Errorf("%d encodings for repeated requests", m-n)
	}
	// The history API with the token has the messages.
	_, body = fetch(t, ts, "/api/v1/checks/db/history?from=2026-11-22T09:00:00Z&to=2026-11-22T10:00:00Z", "Authorization", "Bearer "+testToken)
	if !strings.Contains(string(body), secretMsg) {
		t.Errorf("operator history lacks the message: %s", body)
	}

	// The websocket's events carry no messages.
	conn := dial(t, ts)
	waitClients(t, s.Hub(), 1)
	st := leakyStatus()
	s.Publish(Event{Name: "db", State: "down", Since: testNow, IncidentID: "inc-new", Regions: st.Checks[1].Regions})
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(msg), "10.9.8.7") || !strings.Contains(string(msg), "connect_refused") {
		t.Errorf("websocket event %s", msg)
	}
	if st.Checks[1].Regions["eu-west"].Message != secretMsg {
		t.Errorf("Publish modified the caller's votes")
	}
	_ = conn.WriteMessage(websocket.CloseMessage, nil)
}

// Without a token configured, a request with one is refused (the
// operator's view cannot exist), and the public view is served to others.
func TestStatusTokenNotConfigured(t *testing.T) {
	srv := httptest.NewServer(New(Options{Source: &fakeSource{ready: true, st: leakyStatus()}}))
	defer srv.Close()
	if resp, body := fetch(t, srv, "/api/v1/status", "Authorization", "Bearer anything-at-all-1234"); resp.StatusCode != 401 ||
		!strings.Contains(string(body), "no API token is configured") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, body := fetch(t, srv, "/api/v1/status"); resp.StatusCode != 200 || strings.Contains(string(body), "SECRETTOKEN") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// The Statuspage indicator: maintenance when a check is in maintenance
// and none is down; unknown checks do not raise it.
func TestStatuspageIndicator(t *testing.T) {
	for _, tc := range []struct {
		states []string
		ind    string
	}{
		{[]string{"up", "up", "up"}, "none"},
		{[]string{"up", "maintenance", "up"}, "maintenance"},
		{[]string{"unknown", "maintenance", "up"}, "maintenance"},
		{[]string{"down", "maintenance", "up"}, "major"},
		{[]string{"up", "unknown", "up"}, "none"},
		{[]string{"unknown", "unknown", "unknown"}, "none"},
		{[]string{"up", "unknown", "down"}, "major"},
		{[]string{"down", "down", "down"}, "critical"},
	} {
		st := testStatus()
		for i, s := range tc.states {
			st.Checks[i].State = s
			st.Checks[i].Regions = nil
		}
		_, _, ts := newServerWith(t, nil, st, testPage())
		for _, p := range []string{"/api/v2/status.json", "/api/v2/summary.json"} {
			_, body := fetch(t, ts, p)
			var doc struct {
				Status struct{ Indicator, Description string }
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Status.Indicator != tc.ind || doc.Status.Description == "" {
				t.Errorf("%v %s: indicator %q (%q), want %q", tc.states, p, doc.Status.Indicator, doc.Status.Description, tc.ind)
			}
		}
	}
}

// The shapes of Statuspage's public documents, field by field with their
// JSON types, as Atlassian documents them (developer.statuspage.io, the
// public API: components.json, scheduled-maintenances*.json), and CORS.
func TestStatuspageDocuments(t *testing.T) {
	p := testPage()
	weekly, err := config.NewRecurringMaintenance("Weekly patching", []string{"web"}, "0 9 * * 0", 2*time.Hour, "Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	// Sunday 22 Nov 2026 09:00 KST = 00:00 UTC: the 10:00 UTC test time
	// is after it (2 h long: done), the next is 29 Nov.
	daily, err := config.NewRecurringMaintenance("Nightly backup", []string{"api"}, "0 9 * * *", 2*time.Hour, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	p.Site.Recurring = []config.Maintenance{weekly, daily}
	p.Maintenance = append(p.Maintenance, MaintenanceWindow{Title: "Old", Checks: []string{"web"},
		Start: testNow.Add(-50 * time.Hour), End: testNow.Add(-49 * time.Hour)})
	st := testStatus()
	st.Checks[0].State, st.Checks[1].State, st.Checks[1].Regions = "maintenance", "up", nil
	_, _, ts := newServerWith(t, nil, st, p)

	type shape map[string]string // field → JSON type: string, number, bool, array, object, null, string|null
	typeOf := func(v any) string {
		switch v.(type) {
		case string:
			return "string"
		case float64:
			return "number"
		case bool:
			return "bool"
		case []any:
			return "array"
		case map[string]any:
			return "object"
		case nil:
			return "null"
		}
		return "?"
	}
	check := func(what string, m map[string]any, want shape) {
		t.Helper()
		for k, typ := range want {
			v, ok := m[k]
			if !ok {
				t.Errorf("%s lacks %q", what, k)
				continue
			}
			if got := typeOf(v); !strings.Contains("|"+typ+"|", "|"+got+"|") {
				t.Errorf("%s.%s is %s, want %s", what, k, got, typ)
			}
		}
		for k := range m {
			if _, ok := want[k]; !ok {
				t.Errorf("%s has %q, not in Statuspage's shape", what, k)
			}
		}
	}
	pageShape := shape{"id": "string", "name": "string", "url": "string", "time_zone": "string", "updated_at": "string"}
	compShape := shape{"id": "string", "name": "string", "status": "string", "created_at": "string", "updated_at": "string",
		"position": "number", "description": "string|null", "showcase": "bool", "start_date": "string|null",
		"group_id": "string|null", "page_id": "string", "group": "bool", "only_show_if_degraded": "bool"}
	groupShape := shape{"components": "array"}
	for k, v := range compShape {
		groupShape[k] = v
	}
	updShape := shape{"id": "string", "status": "string", "body": "string", "incident_id": "string", "created_at": "string",
		"updated_at": "string", "display_at": "string", "affected_components": "array|null"}
	smShape := shape{"id": "string", "name": "string", "status": "string", "created_at": "string", "updated_at": "string",
		"monitoring_at": "string|null", "resolved_at": "string|null", "impact": "string", "shortlink": "string",
		"started_at": "string", "page_id": "string", "incident_updates": "array", "components": "array",
		"scheduled_for": "string", "scheduled_until": "string"}
	get := func(path string) map[string]any {
		t.Helper()
		resp, body := fetch(t, ts, path, "Origin", "https://widgets.example.net")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no Access-Control-Allow-Origin: *", path)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	doc := get("/api/v2/components.json")
	check("components.json", doc, shape{"page": "object", "components": "array"})
	check("page", doc["page"].(map[string]any), pageShape)
	statuses := map[string]string{}
	for _, c := range doc["components"].([]any) {
		cm := c.(map[string]any)
		if cm["group"] == true {
			check("group component", cm, groupShape)
		} else {
			check("component", cm, compShape)
		}
		statuses[cm["id"].(string)] = cm["status"].(string)
	}
	if statuses["api"] != "under_maintenance" || statuses["db"] != "operational" || len(statuses) != 5 {
		t.Errorf("component statuses %v", statuses)
	}

	all := get("/api/v2/scheduled-maintenances.json")
	check("scheduled-maintenances.json", all, shape{"page": "object", "scheduled_maintenances": "array"})
	byName := map[string][]map[string]any{}
	for _, m := range all["scheduled_maintenances"].([]any) {
		mm := m.(map[string]any)
		check("scheduled maintenance "+mm["name"].(string), mm, smShape)
		for _, u := range mm["incident_updates"].([]any) {
			check("maintenance update", u.(map[string]any), updShape)
		}
		for _, c := range mm["components"].([]any) {
			check("maintenance component", c.(map[string]any), compShape)
		}
		byName[mm["name"].(string)] = append(byName[mm["name"].(string)], mm)
	}
	// DB upgrade: tomorrow; weekly: next Sunday 09:00 KST; nightly: today
	// 09:00–11:00 UTC in progress and tomorrow's; Old: completed.
	if len(byName["DB upgrade"]) != 1 || byName["DB upgrade"][0]["status"] != "scheduled" {
		t.Errorf("one-off window %v", byName["DB upgrade"])
	}
	if w := byName["Weekly patching"]; len(w) != 1 || w[0]["scheduled_for"] != "2026-11-29T00:00:00Z" || w[0]["scheduled_until"] != "2026-11-29T02:00:00Z" {
		t.Errorf("weekly window %v", w)
	}
	if n := byName["Nightly backup"]; len(n) != 2 || n[0]["status"] != "scheduled" || n[1]["status"] != "in_progress" ||
		n[1]["scheduled_for"] != "2026-11-22T09:00:00Z" {
		t.Errorf("nightly windows %v", n)
	}
	if o := byName["Old"]; len(o) != 1 || o[0]["status"] != "completed" || o[0]["resolved_at"] != "2026-11-20T09:00:00Z" {
		t.Errorf("completed window %v", o)
	}
	up := get("/api/v2/scheduled-maintenances/upcoming.json")["scheduled_maintenances"].([]any)
	act := get("/api/v2/scheduled-maintenances/active.json")["scheduled_maintenances"].([]any)
	if len(up) != 3 || len(act) != 1 || act[0].(map[string]any)["name"] != "Nightly backup" {
		t.Errorf("upcoming %d, active %d", len(up), len(act))
	}
	for _, m := range up {
		if m.(map[string]any)["status"] != "scheduled" {
			t.Errorf("upcoming %v", m)
		}
	}
	for _, p := range []string{"/api/v2/summary.json", "/api/v2/status.json", "/api/v2/incidents.json", "/api/v2/incidents/unresolved.json"} {
		get(p)
	}
	// summary.json lists the upcoming and active ones
	if sm := get("/api/v2/summary.json")["scheduled_maintenances"].([]any); len(sm) != 4 {
		t.Errorf("summary lists %d maintenances", len(sm))
	}
	// A preflight is answered; other APIs are not opened to other sites.
	req, _ := http.NewRequest("OPTIONS", ts.URL+"/api/v2/summary.json", nil)
	req.Header.Set("Origin", "https://widgets.example.net")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Errorf("preflight %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := fetch(t, ts, "/api/v1/status"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("/api/v1/status opened to other sites")
	}
	// The page shows the maintenance windows too.
	_, body := fetch(t, ts, "/")
	if !strings.Contains(string(body), "Nightly backup") || !strings.Contains(string(body), "Weekly patching") {
		t.Errorf("index lacks the recurring windows")
	}
}

func TestPageFromConfigSite(t *testing.T) {
	dir := t.TempDir()
	_ = dir
	weekly, _ := config.NewRecurringMaintenance("w", []string{"db"}, "0 2 * * 0", time.Hour, "")
	cfg := &config.Config{
		StatusPage: config.StatusPage{Title: "T", Locale: "ko", Timezone: "Asia/Seoul", Branding: &config.Branding{
			Logo: filepath.Join(dir, "l.png"), LogoData: []byte("PNG"), LogoType: "image/png", CustomCSS: "a{}",
			Links: []config.StatusPageLink{{Name: "Home", URL: "https://example.com"}}}},
		Checks:      []config.Check{{Name: "db"}},
		Maintenance: []config.Maintenance{weekly, {Title: "m", Checks: []string{"db"}, Start: testNow, End: testNow.Add(time.Hour)}},
	}
	p := PageFromConfig(cfg)
	s := p.Site
	if s.Locale != "ko" || s.Timezone != "Asia/Seoul" || string(s.Logo) != "PNG" || s.LogoType != "image/png" || s.CustomCSS != "a{}" ||
		len(s.Links) != 1 || s.Links[0] != (Link{"Home", "https://example.com"}) || len(s.Recurring) != 1 || len(p.Maintenance) != 1 {
		t.Fatalf("page %+v", p)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
