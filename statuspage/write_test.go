package statuspage

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/store"
)

const testToken = "0123456789abcdef-test-token"

// storeWriter is a Writer on one store without a cluster.
type storeWriter struct {
	st   *store.Store
	node string
}

func (w storeWriter) PostUpdate(ctx context.Context, u store.IncidentUpdate) (store.Incident, store.IncidentUpdate, error) {
	u.Author = w.node
	return w.st.PostIncidentUpdate(ctx, u)
}

func (w storeWriter) OpenIncident(ctx context.Context, inc store.Incident, first store.IncidentUpdate) (store.Incident, store.IncidentUpdate, error) {
	inc.Author = w.node
	return w.st.OpenManualIncident(ctx, inc, first)
}

func newWriteServer(t *testing.T, token string) (*Server, *store.Store, *httptest.Server) {
	t.Helper()
	st := newStore(t)
	src := &fakeSource{ready: true, st: testStatus()}
	s := New(Options{Source: src, History: st, Page: testPage(), Now: func() time.Time { return testNow },
		Writer: storeWriter{st: st, node: "eu-1"}, APIToken: token})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, st, ts
}

func post(t *testing.T, ts *httptest.Server, path, auth, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %d, body not JSON: %q", "POST", path, resp.StatusCode, b)
	}
	return resp, m
}

func storedUpdates(t *testing.T, st *store.Store) int {
	t.Helper()
	ups, err := st.IncidentUpdates(context.Background(), "inc-new", "inc-old")
	if err != nil {
		t.Fatal(err)
	}
	incs, err := st.Incidents(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(ups["inc-new"]) + len(ups["inc-old"]) + len(incs)
}

func TestWriteAPIAuth(t *testing.T) {
	upd := `{"status":"identified","body":"We found it."}`
	inc := `{"title":"Email delays","body":"Looking."}`

	// No token configured: the write API is disabled.
	_, st, ts := newWriteServer(t, "")
	before := storedUpdates(t, st)
	resp, m := post(t, ts, "/api/v1/incidents/inc-new/updates", "Bearer "+testToken, upd)
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") ||
		!strings.Contains(m["error"].(string), "disabled") {
		t.Fatalf("no token configured: %d %v %v", resp.StatusCode, resp.Header, m)
	}
	if resp, _ := post(t, ts, "/api/v1/incidents", "Bearer "+testToken, inc); resp.StatusCode != 401 {
		t.Fatalf("no token configured, manual incident: %d", resp.StatusCode)
	}

	_, st, ts = newWriteServer(t, testToken)
	before = storedUpdates(t, st)
	for _, tc := range []struct{ auth, wantErr string }{
		{"", "missing"},
		{"Bearer", "missing"},
		{"Basic " + testToken, "missing"},
		{"Bearer wrong-token-wrong-token", "invalid"},
		{"Bearer " + testToken + "x", "invalid"},
		{"Bearer " + testToken[:len(testToken)-1], "invalid"},
	} {
		for _, path := range []string{"/api/v1/incidents/inc-new/updates", "/api/v1/incidents"} {
			body := upd
			if path == "/api/v1/incidents" {
				body = inc
			}
			resp, m := post(t, ts, path, tc.auth, body)
			if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") ||
				!strings.Contains(m["error"].(string), tc.wantErr) {
				t.Errorf("%s with %q: %d %q %v", path, tc.auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), m)
			}
		}
	}
	if after := storedUpdates(t, st); after != before {
		t.Fatalf("unauthorized writes stored something: %d rows, was %d", after, before)
	}
	// The scheme is case-insensitive.
	if resp, m := post(t, ts, "/api/v1/incidents/inc-new/updates", "bearer "+testToken, upd); resp.StatusCode != 201 {
		t.Fatalf("lower-case scheme: %d %v", resp.StatusCode, m)
	}
}

func TestWriteAPIValidation(t *testing.T) {
	_, st, ts := newWriteServer(t, testToken)
	auth := "Bearer " + testToken
	before := storedUpdates(t, st)
	for _, tc := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/api/v1/incidents/inc-new/updates", `{"status":"fixed","body":"x"}`, 400, `unknown status "fixed"`},
		{"/api/v1/incidents/inc-new/updates", `{"status":"identified","body":"  "}`, 400, "body is empty"},
		{"/api/v1/incidents/inc-new/updates", `{"status":"identified"}`, 400, "body is empty"},
		{"/api/v1/incidents/inc-new/updates", `{"status":"identified","body":"` + strings.Repeat("a", MaxUpdateBody+1) + `"}`, 400, "at most 10240"},
		{"/api/v1/incidents/inc-new/updates", `{"status":"identified","body":"a\u0000b"}`, 400, "control character"},
		{"/api/v1/incidents/inc-new/updates", `{"status":"identified","body":"x","extra":1}`, 400, "unknown field"},
		{"/api/v1/incidents/inc-new/updates", `{"status":`, 400, "invalid JSON"},
		{"/api/v1/incidents/inc-new/updates", ``, 400, "empty request body"},
		{"/api/v1/incidents/inc-new/updates", `{"status":"identified","body":"x"} {}`, 400, "more than one"},
		{"/api/v1/incidents/inc-new/updates", `{"status":"identified","body":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "over 65536 bytes"},
		{"/api/v1/incidents/nope/updates", `{"status":"identified","body":"x"}`, 404, "unknown incident nope"},
		{"/api/v1/incidents/inc-new/updates", `{"status":"resolved","body":"x"}`, 409, "resolves when the check is up again"},
		{"/api/v1/incidents", `{"body":"x"}`, 400, "title is empty"},
		{"/api/v1/incidents", `{"title":"a\nb","body":"x"}`, 400, "one line"},
		{"/api/v1/incidents", `{"title":"` + strings.Repeat("t", MaxTitle+1) + `","body":"x"}`, 400, "at most 200"},
		{"/api/v1/incidents", `{"title":"t"}`, 400, "body is empty"},
		{"/api/v1/incidents", `{"title":"t","body":"x","status":"open"}`, 400, `unknown status "open"`},
		{"/api/v1/incidents", `{"title":"t","body":"x","impact":"huge"}`, 400, `unknown impact "huge"`},
		{"/api/v1/incidents", `{"title":"t","body":"x","checks":["api","nope"]}`, 400, `unknown check "nope"`},
	} {
		resp, m := post(t, ts, tc.path, auth, tc.body)
		msg, _ := m["error"].(string)
		if resp.StatusCode != tc.code || !strings.Contains(msg, tc.want) || resp.Header.Get("Content-Type") != "application/json" {
			body := tc.body
			if len(body) > 80 {
				body = body[:80] + "..."
			}
			t.Errorf("POST %s %s: %d %q, want %d %q", tc.path, body, resp.StatusCode, msg, tc.code, tc.want)
		}
	}
	if after := storedUpdates(t, st); after != before {
		t.Fatalf("invalid writes stored something: %d rows, was %d", after, before)
	}
	// The largest body is accepted.
	if resp, m := post(t, ts, "/api/v1/incidents/inc-new/updates", auth,
		`{"status":"identified","body":"`+strings.Repeat("b", MaxUpdateBody)+`"}`); resp.StatusCode != 201 {
		t.Fatalf("10 KB body: %d %v", resp.StatusCode, m)
	}
}

func readEvent(t *testing.T, c interface {
	SetReadDeadline(time.Time) error
	ReadMessage() (int, []byte, error)
}, typ string) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		if err := json.Unmarshal(msg, &ev); err != nil {
			t.Fatal(err)
		}
		if ev["type"] == typ {
			return ev
		}
	}
}

func TestPostUpdateShownEverywhere(t *testing.T) {
	s, _, ts := newWriteServer(t, testToken)
	c := dial(t, ts)
	waitClients(t, s.Hub(), 1)
	_, before := fetch(t, ts, "/api/v2/summary.json")

	resp, m := post(t, ts, "/api/v1/incidents/inc-new/updates", "Bearer "+testToken,
		`{"status":"identified","body":"A full disk on the primary.\nWe are moving data."}`)
	if resp.StatusCode != 201 || resp.Header.Get("Location") != "/incidents/inc-new" {
		t.Fatalf("post: %d %v", resp.StatusCode, m)
	}
	u := m["incident_update"].(map[string]any)
	id := u["id"].(string)
	if len(id) != 16 || u["status"] != "identified" || u["author"] != "eu-1" || u["incident_id"] != "inc-new" ||
		m["incident"].(map[string]any)["status"] != "identified" {
		t.Fatalf("response %v", m)
	}

	// websocket event
	ev := readEvent(t, c, "incident")
	if ev["id"] != "inc-new" || ev["status"] != "identified" || ev["open"] != true ||
		ev["update"].(map[string]any)["id"] != id || ev["update"].(map[string]any)["body"] != "A full disk on the primary.\nWe are moving data." {
		t.Fatalf("event %v", ev)
	}

	// summary.json: the incident's status and its updates, newest first
	_, body := fetch(t, ts, "/api/v2/summary.json")
	if string(body) == string(before) {
		t.Fatal("summary not re-rendered")
	}
	var sum spSummary
	if err := json.Unmarshal(body, &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Incidents) != 1 || sum.Incidents[0].Status != "identified" || len(sum.Incidents[0].IncidentUpdates) != 2 {
		t.Fatalf("summary incidents %+v", sum.Incidents)
	}
	first := sum.Incidents[0].IncidentUpdates[0]
	if first.ID != id || first.Status != "identified" || first.IncidentID != "inc-new" || !first.CreatedAt.Equal(testNow) ||
		!first.DisplayAt.Equal(testNow) || sum.Incidents[0].IncidentUpdates[1].Status != "investigating" {
		t.Fatalf("summary updates %+v", sum.Incidents[0].IncidentUpdates)
	}
	if !sum.Incidents[0].UpdatedAt.Equal(testNow) {
		t.Errorf("incident updated_at %s", sum.Incidents[0].UpdatedAt)
	}
	// Statuspage's incident lists
	_, body = fetch(t, ts, "/api/v2/incidents/unresolved.json")
	var unres spIncidentsDoc
	if err := json.Unmarshal(body, &unres); err != nil || len(unres.Incidents) != 1 || unres.Incidents[0].Status != "identified" {
		t.Fatalf("unresolved.json %s", body)
	}
	_, body = fetch(t, ts, "/api/v2/incidents.json")
	var all spIncidentsDoc
	if err := json.Unmarshal(body, &all); err != nil || len(all.Incidents) != 2 {
		t.Fatalf("incidents.json %s", body)
	}

	// /api/v1/incidents
	_, body = fetch(t, ts, "/api/v1/incidents")
	var doc IncidentsJSON
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	ij := doc.Incidents[0]
	if ij.ID != "inc-new" || ij.Status != "identified" || len(ij.Updates) != 2 || ij.Updates[0].ID != id ||
		ij.Updates[0].Author != "eu-1" || ij.Updates[0].Automatic || !ij.Updates[1].Automatic || ij.URL != "https://status.example.com/incidents/inc-new" {
		t.Fatalf("v1 incident %+v", ij)
	}

	// the page, the incident's page and the feed
	for _, path := range []string{"/", "/incidents/inc-new", "/checks/db", "/feed.atom"} {
		resp, body := fetch(t, ts, path)
		page := string(body)
		if resp.StatusCode != 200 || !strings.Contains(page, "A full disk on the primary.") || !strings.Contains(page, "Identified") {
			t.Errorf("%s: %d, update missing:\n%s", path, resp.StatusCode, page)
		}
	}
	_, body = fetch(t, ts, "/")
	page := string(body)
	active := page[strings.Index(page, `id="active-incidents"`):strings.Index(page, `id="h-checks"`)]
	if !strings.Contains(active, `data-update="`+id+`"`) || strings.Index(active, `data-update="`+id+`"`) > strings.Index(active, `data-update="inc-new-opened"`) {
		t.Errorf("active incident timeline not newest first:\n%s", active)
	}
	if resp, _ := fetch(t, ts, "/incidents/nope"); resp.StatusCode != 404 {
		t.Errorf("unknown incident page %d", resp.StatusCode)
	}
}

func TestManualIncidentLifecycle(t *testing.T) {
	s, _, ts := newWriteServer(t, testToken)
	auth := "Bearer " + testToken
	c := dial(t, ts)
	waitClients(t, s.Hub(), 1)

	resp, m := post(t, ts, "/api/v1/incidents", auth,
		`{"title":"Email notifications delayed","body":"Emails are arriving up to 30 minutes late.","impact":"critical","checks":["api","api","web"]}`)
	if resp.StatusCode != 201 {
		t.Fatalf("open: %d %v", resp.StatusCode, m)
	}
	inc := m["incident"].(map[string]any)
	id := inc["id"].(string)
	if !strings.HasPrefix(id, "manual-") || inc["manual"] != true || inc["status"] != "investigating" || inc["impact"] != "critical" ||
		inc["check"] != "" || len(inc["checks"].([]any)) != 2 || resp.Header.Get("Location") != "/incidents/"+id {
		t.Fatalf("manual incident %v", m)
	}
	if ev := readEvent(t, c, "incident"); ev["id"] != id || ev["manual"] != true || ev["open"] != true || ev["title"] != "Email notifications delayed" {
		t.Fatalf("event %v", ev)
	}

	summary := func() spSummary {
		_, body := fetch(t, ts, "/api/v2/summary.json")
		var sum spSummary
		if err := json.Unmarshal(body, &sum); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	sum := summary()
	if len(sum.Incidents) != 2 || sum.Incidents[0].ID != id {
		t.Fatalf("summary incidents %+v", sum.Incidents)
	}
	mi := sum.Incidents[0]
	if mi.Impact != "critical" || mi.Status != "investigating" || len(mi.IncidentUpdates) != 1 || len(mi.Components) != 2 ||
		mi.Components[0].ID != "api" || mi.Components[1].ID != "web" || mi.Shortlink != "https://status.example.com/incidents/"+id {
		t.Fatalf("manual incident in summary %+v", mi)
	}
	// a critical incident makes the page a major outage (db alone: partial)
	if sum.Status.Indicator != "critical" {
		t.Fatalf("status with a critical manual incident %+v", sum.Status)
	}
	_, body := fetch(t, ts, "/")
	if page := string(body); !strings.Contains(page, ">Major outage<") || !strings.Contains(page, "Emails are arriving up to 30 minutes late.") ||
		!strings.Contains(page, "Critical impact") {
		t.Fatalf("page with a manual incident:\n%s", page)
	}

	// monitoring, then resolved
	if resp, m := post(t, ts, "/api/v1/incidents/"+id+"/updates", auth, `{"status":"monitoring","body":"Queue drained."}`); resp.StatusCode != 201 {
		t.Fatalf("monitoring: %d %v", resp.StatusCode, m)
	}
	if mi := summary().Incidents[0]; mi.Status != "monitoring" || mi.MonitoringAt == nil {
		t.Fatalf("monitoring incident %+v", mi)
	}
	resp, m = post(t, ts, "/api/v1/incidents/"+id+"/updates", auth, `{"status":"resolved","body":"All emails delivered."}`)
	if resp.StatusCode != 201 || m["incident"].(map[string]any)["resolved_at"] == nil {
		t.Fatalf("resolve: %d %v", resp.StatusCode, m)
	}
	sum = summary()
	if len(sum.Incidents) != 1 || sum.Incidents[0].ID != "inc-new" || sum.Status.Indicator != "major" {
		t.Fatalf("after resolution: %+v %+v", sum.Incidents, sum.Status)
	}
	_, body = fetch(t, ts, "/")
	page := string(body)
	past := page[strings.Index(page, `id="past-incidents"`):]
	if !strings.Contains(past, `id="incident-`+id+`"`) || !strings.Contains(past, "All emails delivered.") ||
		strings.Index(past, "All emails delivered.") > strings.Index(past, "Queue drained.") {
		t.Fatalf("resolved manual incident not in the past incidents, newest first:\n%s", past)
	}
	// the check's own page lists the manual incident that names it
	if _, body := fetch(t, ts, "/checks/web"); !strings.Contains(string(body), "Email notifications delayed") {
		t.Fatal("check page misses the manual incident")
	}
}
