package node

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/report"
	"github.com/vantage-dev/vantage/store"
)

const reportToken = "report-test-token-0123456789"

// reportNode is one node without gossip whose store holds an incident of
// api spanning the end of November, and a one-hour window on db.
func reportNode(t *testing.T) (*Node, *httptest.Server) { return reportNodeWith(t, "") }

// reportNodeWith is reportNode with more keys under statuspage (each line
// indented by two spaces).
func reportNodeWith(t *testing.T, statuspage string) (*Node, *httptest.Server) {
	t.Helper()
	path := writeFile(t, "report.yaml", `
cluster:
  regions: [eu, us]
checks:
  - name: api
    type: tcp
    target: 127.0.0.1:1
    group: Public API
  - name: db
    type: tcp
    target: 127.0.0.1:2
statuspage:
  title: Acme
  api_token: `+reportToken+`
`+statuspage+`maintenance:
  - checks: [db]
    start: 2026-11-05T12:00:00Z
    end: 2026-11-05T13:00:00Z
`)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	now := time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)
	n, err := New(context.Background(), Options{Config: cfg, Name: "eu-1", Region: "eu", DBPath: filepath.Join(dir, "v.db"),
		OutboxPath: filepath.Join(dir, "outbox.db"), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx := context.Background()
	st := n.Store()
	for _, c := range []store.StateChange{
		{Check: "api", Time: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), From: "unknown", To: "up"},
		{Check: "db", Time: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), From: "unknown", To: "up"},
		{Check: "api", Time: time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC), From: "up", To: "down", IncidentID: "inc-1"},
		{Check: "api", Time: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC), From: "down", To: "up", IncidentID: "inc-1"},
	} {
		if err := st.RecordStateChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.OpenIncident(ctx, store.Incident{ID: "inc-1", Check: "api", Title: "api is down", StartedAt: time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ResolveIncident(ctx, "inc-1", time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	return n, srv
}

func getWithToken(t *testing.T, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestReportsAPI(t *testing.T) {
	n, srv := reportNode(t)
	u := srv.URL + "/api/v1/reports?from=2026-11-01&to=2026-12-01"

	for _, tok := range []string{"", "wrong-token-0123456789"} {
		if resp, _ := getWithToken(t, u, tok); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: %s", tok, resp.Status)
		}
	}
	resp, body := getWithToken(t, u, reportToken)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%s %v: %s", resp.Status, resp.Header, body)
	}
	var r report.Report
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	const month = 30 * 86400.0
	api, db := r.Checks[0], r.Checks[1]
	if r.Title != "Acme uptime report" || api.Name != "api" || api.DownS != 7200 || api.Incidents != 1 || api.MTTRS != nil ||
		*api.Uptime != (month-7200)/month || db.MaintenanceS != 3600 || *db.Uptime != 1 {
		t.Fatalf("report: %s", body)
	}
	if len(r.Groups) != 1 || r.Groups[0].Name != "Public API" {
		t.Fatalf("groups %+v", r.Groups)
	}

	// December so far: the incident's last two hours, its MTTR, cut at
	// now; a window scheduled through the API counts as maintenance.
	n.mesh.Maint.Seed([]mesh.Window{{ID: "00112233aabbccdd", Version: 1, Title: "db move", Checks: []string{"api"},
		Start: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC), Author: "eu-1",
		Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Updated: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}})
	_, body = getWithToken(t, srv.URL+"/api/v1/reports?from=2026-12-01&to=2027-01-01&group=Public+API", reportToken)
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Checks) != 1 || r.Checks[0].DownS != 7200 || *r.Checks[0].MTTRS != 4*3600 || r.Until.Day() != 10 || r.Checks[0].MaintenanceS != 3600 {
		t.Fatalf("december: %s", body)
	}

	resp, body = getWithToken(t, u+"&format=csv", reportToken)
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || len(recs) != 5 ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "vantage-report-20261101-20261201.csv") {
		t.Fatalf("csv %v %v: %v", err, resp.Header, recs)
	}
	resp, body = getWithToken(t, u+"&format=html", reportToken)
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "<!doctype html>") || !strings.Contains(string(body), "Acme uptime report") {
		t.Fatalf("html %s", resp.Status)
	}

	for q, code := range map[string]int{
		"from=2026-11-01":                            400,
		"from=2026-11-01&to=2026-10-01":              400,
		"from=yesterday&to=2026-12-01":               400,
		"from=2026-11-01&to=2026-12-01&format=pdf":   400,
		"from=2026-11-01&to=2026-12-01&group=nobody": 404,
		"from=2026-11-01&to=2026-12-01&tz=Mars/Base": 400,
		"from=2020-01-01&to=2026-12-01":              400,
	} {
		if resp, body := getWithToken(t, srv.URL+"/api/v1/reports?"+q, reportToken); resp.StatusCode != code {
			t.Errorf("%s: %s %s, want %d", q, resp.Status, body, code)
		}
	}
}

// With statuspage.locale: ko the HTML report is in Korean.
func TestReportsAPIKorean(t *testing.T) {
	_, srv := reportNodeWith(t, "  locale: ko\n")
	resp, body := getWithToken(t, srv.URL+"/api/v1/reports?from=2026-11-01&to=2026-12-01&format=html", reportToken)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<html lang="ko">`) || !strings.Contains(string(body), "<h2>요약</h2>") {
		t.Fatalf("html %s: not in Korean", resp.Status)
	}
}
