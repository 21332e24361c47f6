package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/report"
	"github.com/vantage-dev/vantage/store"
)

const seedConfig = `
cluster:
  regions: [eu, us, ap]
checks:
  - name: api
    type: tcp
    target: 127.0.0.1:1
    group: Public API
    display_name: API
  - name: web
    type: tcp
    target: 127.0.0.1:2
    group: Public API
  - name: db
    type: tcp
    target: 127.0.0.1:3
maintenance:
  - checks: [api]
    start: 2026-11-15T02:00:00Z
    end: 2026-11-15T03:00:00Z
  - checks: [web]
    every: "0 4 * * 0"
    duration: 30m
  - checks: [db]
    start: 2026-11-05T12:00:00Z
    end: 2026-11-05T13:00:00Z
`

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

type change struct{ check, ts, from, to, inc string }

type incident struct{ id, check, start, end string }

// The seeded history (all UTC):
//
//	api: known since 10-20; incident A 11-10 23:30 → 11-11 00:45 (spans
//	     midnight, 4500 s); unknown 11-20 10:00–10:20 (1200 s); maintenance
//	     11-15 02:00–03:00 (config window and recorded state); incident B
//	     11-30 23:00 → 12-01 01:00 (spans the month boundary).
//	web: first known 11-03 12:00; recurring maintenance Sundays 04:00 for 30m
//	     (11-01, 08, 15, 22, 29); never down.
//	db:  known since 10-01; config window 11-05 12:00–13:00 added after an
//	     incident 12:30–13:30 (so 1800 s of it is down); degraded 11-07
//	     08:00–09:00 (counts as up).
var (
	seedChanges = []change{
		{"api", "2026-10-20T00:00:00Z", "unknown", "up", ""},
		{"api", "2026-11-10T23:30:02Z", "up", "down", "A"},
		{"api", "2026-11-11T00:45:00Z", "down", "up", "A"},
		{"api", "2026-11-15T02:00:00Z", "up", "maintenance", ""},
		{"api", "2026-11-15T03:00:00Z", "maintenance", "up", ""},
		{"api", "2026-11-20T10:00:00Z", "up", "unknown", ""},
		{"api", "2026-11-20T10:20:00Z", "unknown", "up", ""},
		{"api", "2026-11-30T23:00:01Z", "up", "down", "B"},
		{"api", "2026-12-01T01:00:00Z", "down", "up", "B"},
		{"web", "2026-11-03T12:00:00Z", "unknown", "up", ""},
		{"db", "2026-10-01T00:00:00Z", "unknown", "up", ""},
		{"db", "2026-11-05T12:30:00Z", "up", "down", "C"},
		{"db", "2026-11-05T13:30:00Z", "down", "up", "C"},
		{"db", "2026-11-07T08:00:00Z", "up", "degraded", ""},
		{"db", "2026-11-07T09:00:00Z", "degraded", "up", ""},
	}
	seedIncidents = []incident{
		{"A", "api", "2026-11-10T23:30:00Z", "2026-11-11T00:45:00Z"},
		{"B", "api", "2026-11-30T23:00:00Z", "2026-12-01T01:00:00Z"},
		{"C", "db", "2026-11-05T12:30:00Z", "2026-11-05T13:30:00Z"},
	}
)

var now = at("2026-12-15T00:00:00Z")

func loadConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse("seed.yaml", []byte(seedConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// seed opens a store holding the seeded history; reverse inserts
// everything in the opposite order (another node's arrival order).
func seed(t testing.TB, reverse bool) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	changes := append([]change(nil), seedChanges...)
	incs := append([]incident(nil), seedIncidents...)
	if reverse {
		for i, j := 0, len(changes)-1; i < j; i, j = i+1, j-1 {
			changes[i], changes[j] = changes[j], changes[i]
		}
		for i, j := 0, len(incs)-1; i < j; i, j = i+1, j-1 {
			incs[i], incs[j] = incs[j], incs[i]
		}
	}
	for _, c := range changes {
		if err := st.RecordStateChange(ctx, store.StateChange{Check: c.check, Time: at(c.ts), From: c.from, To: c.to, IncidentID: c.inc}); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range incs {
		if _, err := st.OpenIncident(ctx, store.Incident{ID: i.id, Check: i.check, Title: i.check + " is down", State: "open", StartedAt: at(i.start)}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ResolveIncident(ctx, i.id, at(i.end)); err != nil {
			t.Fatal(err)
		}
	}
	// Latency: api answers in 100 ms from eu and 200 ms from us, 20 results
	// each on 11-02 and 12-02; one failure from us on 11-02.
	var rs []store.Result
	for _, day := range []string{"2026-11-02T06:00:00Z", "2026-12-02T06:00:00Z"} {
		for i := range 20 {
			ts := at(day).Add(time.Duration(i) * time.Minute)
			rs = append(rs, store.Result{Node: "eu-1", Region: "eu", Check: "api", Time: ts, OK: true, Latency: 100 * time.Millisecond},
				store.Result{Node: "us-1", Region: "us", Check: "api", Time: ts, OK: !(i == 0 && day[6] == '1'), Latency: 200 * time.Millisecond})
		}
	}
	if reverse {
		for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
			rs[i], rs[j] = rs[j], rs[i]
		}
	}
	st.AddBatch(rs)
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func build(t testing.TB, st *store.Store, from, to, group string) *report.Report {
	t.Helper()
	p := report.Params{From: at(from), To: at(to), Now: now, Group: group}
	r, err := report.Build(context.Background(), st, loadConfig(t), p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func checkOf(t *testing.T, r *report.Report, name string) *report.CheckReport {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	t.Fatalf("no check %s in the report", name)
	return nil
}

// want are hand-computed figures; nil pointers mean null.
type want struct {
	up, down, unknown, maint, noData float64
	incidents, started               int
	longest                          float64
	mttr, mtbf                       *float64
}

func f(v float64) *float64 { return &v }

func expect(t *testing.T, what string, got *report.Figures, w want) {
	t.Helper()
	eq := func(name string, g, e float64) {
		t.Helper()
		if math.Abs(g-e) > 1e-9 {
			t.Errorf("%s: %s = %v, want %v", what, name, g, e)
		}
	}
	opt := func(name string, g, e *float64) {
		t.Helper()
		switch {
		case g == nil && e == nil:
		case g == nil || e == nil:
			t.Errorf("%s: %s = %v, want %v", what, name, ptr(g), ptr(e))
		default:
			eq(name, *g, *e)
		}
	}
	eq("up_s", got.UpS, w.up)
	eq("down_s", got.DownS, w.down)
	eq("downtime_s", got.DowntimeS, w.down)
	eq("unknown_s", got.UnknownS, w.unknown)
	eq("maintenance_s", got.MaintenanceS, w.maint)
	eq("no_data_s", got.NoDataS, w.noData)
	eq("longest_downtime_s", got.LongestDowntimeS, w.longest)
	if got.Incidents != w.incidents || got.IncidentsStarted != w.started {
		t.Errorf("%s: incidents %d (started %d), want %d (%d)", what, got.Incidents, got.IncidentsStarted, w.incidents, w.started)
	}
	opt("mttr_s", got.MTTRS, w.mttr)
	opt("mtbf_s", got.MTBFS, w.mtbf)
	var upt, uptU *float64
	if w.up+w.down > 0 {
		upt = f(w.up / (w.up + w.down))
	}
	if w.up+w.down+w.unknown > 0 {
		uptU = f(w.up / (w.up + w.down + w.unknown))
	}
	opt("uptime", got.Uptime, upt)
	opt("uptime_with_unknown", got.UptimeWithUnknown, uptU)
}

func ptr(p *float64) any {
	if p == nil {
		return "null"
	}
	return *p
}

func TestNovemberHandComputed(t *testing.T) {
	st := seed(t, false)
	r := build(t, st, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "")
	const month = 30 * 86400.0

	// api: A 4500 s + B's first hour 3600 s down; 1200 s unknown; 3600 s
	// maintenance.
	expect(t, "api", &checkOf(t, r, "api").Figures, want{
		up: month - 3600 - 8100 - 1200, down: 8100, unknown: 1200, maint: 3600,
		incidents: 2, started: 2, longest: 4500, mttr: f(4500), mtbf: f((month - 3600 - 8100 - 1200) / 2)})
	// web: no data until 11-03 12:00 (2.5 days) except the 11-01 window;
	// five 30-minute windows.
	expect(t, "web", &checkOf(t, r, "web").Figures, want{
		up: month - 9000 - (216000 - 1800), maint: 9000, noData: 216000 - 1800})
	// db: the incident's second half is down, the window covers the first.
	expect(t, "db", &checkOf(t, r, "db").Figures, want{
		up: month - 3600 - 1800, down: 1800, maint: 3600, incidents: 1, started: 1, longest: 1800,
		mttr: f(3600), mtbf: f(month - 5400)})

	apiUp, webUp, dbUp := month-3600-8100-1200, month-9000-(216000-1800), month-5400.0
	if len(r.Groups) != 1 || r.Groups[0].Name != "Public API" || strings.Join(r.Groups[0].Checks, ",") != "api,web" {
		t.Fatalf("groups %+v", r.Groups)
	}
	expect(t, "group Public API", &r.Groups[0].Figures, want{
		up: apiUp + webUp, down: 8100, unknown: 1200, maint: 3600 + 9000, noData: 216000 - 1800,
		incidents: 2, started: 2, longest: 4500, mttr: f(4500), mtbf: f((apiUp + webUp) / 2)})
	expect(t, "total", &r.Total, want{
		up: apiUp + webUp + dbUp, down: 9900, unknown: 1200, maint: 3600 + 9000 + 3600, noData: 216000 - 1800,
		incidents: 3, started: 3, longest: 4500, mttr: f((4500 + 3600) / 2.0), mtbf: f((apiUp + webUp + dbUp) / 3)})

	// Incidents, oldest first, B still inside the period at its end.
	var ids []string
	for _, inc := range r.Incidents {
		ids = append(ids, inc.ID)
	}
	if strings.Join(ids, ",") != "C,A,B" {
		t.Fatalf("incidents %v", ids)
	}
	b := r.Incidents[2]
	if b.DurationS != 7200 || b.DowntimeS != 3600 || b.End == nil || !b.End.Equal(at("2026-12-01T01:00:00Z")) {
		t.Fatalf("incident B: %+v", b)
	}

	// Days: 30 UTC days; the bars split A across midnight.
	api := checkOf(t, r, "api")
	if len(r.Days) != 30 || r.Days[0] != "2026-11-01" || len(api.Days) != 30 {
		t.Fatalf("days %v", r.Days)
	}
	if d := api.Days[9]; d.DownS != 1800 || d.UpS != 86400-1800 { // 11-10
		t.Fatalf("api on 11-10: %+v", d)
	}
	if d := api.Days[10]; d.DownS != 2700 { // 11-11
		t.Fatalf("api on 11-11: %+v", d)
	}
	if d := api.Days[14]; d.MaintenanceS != 3600 || *d.Uptime != 1 { // 11-15
		t.Fatalf("api on 11-15: %+v", d)
	}
	web := checkOf(t, r, "web")
	if d := web.Days[0]; d.Uptime != nil || d.MaintenanceS != 1800 || d.NoDataS != 86400-1800 {
		t.Fatalf("web on 11-01: %+v", d)
	}

	// Latency: all eu results at 100 ms, all us at 200 ms (one failure).
	lat := api.Latency
	if lat["eu"].P95MS != 100 || lat["eu"].Results != 20 || lat["us"].P95MS != 200 || lat["us"].Failures != 1 {
		t.Fatalf("api latency %+v", lat)
	}
	if all := lat[report.AllRegions]; all.Results != 40 || math.Abs(all.P95MS-200)/200 > 0.114 {
		t.Fatalf("api latency over all regions %+v", all)
	}
	if _, ok := lat["ap"]; ok {
		t.Fatalf("ap has no results, got %+v", lat["ap"])
	}
	if d := api.Days[1]; d.P95MS["eu"] != 100 || d.P95MS["us"] != 200 {
		t.Fatalf("api on 11-02: %+v", d)
	}
	if g := r.Groups[0].Latency["us"]; g.Results != 20 || g.P95MS != 200 {
		t.Fatalf("group latency %+v", r.Groups[0].Latency)
	}
}

// December so far: B's last hour, its MTTR counted where it ended, and the
// period cut at now.
func TestDecemberCutAtNow(t *testing.T) {
	st := seed(t, false)
	r := build(t, st, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", "")
	if !r.Until.Equal(now) || len(r.Days) != 14 {
		t.Fatalf("until %v, %d days", r.Until, len(r.Days))
	}
	expect(t, "api", &checkOf(t, r, "api").Figures, want{
		up: 14*86400 - 3600, down: 3600, incidents: 1, started: 0, longest: 3600, mttr: f(7200)})
	if lat := checkOf(t, r, "api").Latency; lat["eu"].Results != 20 || lat["us"].Failures != 0 {
		t.Fatalf("december latency %+v", lat)
	}
}

func TestGroupFilter(t *testing.T) {
	st := seed(t, false)
	r := build(t, st, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "Public API")
	if len(r.Checks) != 2 || r.Total.Incidents != 2 || r.Group != "Public API" {
		t.Fatalf("group report: %d checks, %d incidents", len(r.Checks), r.Total.Incidents)
	}
	_, err := report.Build(context.Background(), st, loadConfig(t), report.Params{From: at("2026-11-01T00:00:00Z"),
		To: at("2026-12-01T00:00:00Z"), Group: "nope"})
	if err != report.ErrUnknownGroup {
		t.Fatalf("unknown group: %v", err)
	}
}

// A period that starts and ends mid-day reads its edges from the minute
// rollups: only the results inside it count.
func TestPartialDays(t *testing.T) {
	st := seed(t, false)
	r := build(t, st, "2026-12-02T06:05:00Z", "2026-12-02T06:15:00Z", "")
	api := checkOf(t, r, "api")
	if n := api.Latency["eu"].Results; n != 10 {
		t.Fatalf("results in 06:05–06:15: %d, want 10", n)
	}
	if api.UpS != 600 {
		t.Fatalf("up %v", api.UpS)
	}
}

// Two nodes that stored the same history in different orders produce the
// same report, byte for byte, in every format.
func TestSameReportOnEveryNode(t *testing.T) {
	a, b := seed(t, false), seed(t, true)
	for _, format := range []string{report.FormatJSON, report.FormatCSV, report.FormatHTML} {
		var ba, bb bytes.Buffer
		if err := report.Render(&ba, build(t, a, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", ""), format); err != nil {
			t.Fatal(err)
		}
		if err := report.Render(&bb, build(t, b, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", ""), format); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ba.Bytes(), bb.Bytes()) {
			t.Fatalf("%s differs between two nodes with the same data", format)
		}
	}
}

func TestRender(t *testing.T) {
	st := seed(t, false)
	r := build(t, st, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "")
	var j bytes.Buffer
	if err := report.Render(&j, r, report.FormatJSON); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(j.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	total := doc["total"].(map[string]any)
	for _, k := range []string{"uptime", "uptime_with_unknown", "incidents", "downtime_s", "longest_downtime_s", "mttr_s", "mtbf_s", "latency"} {
		if _, ok := total[k]; !ok {
			t.Errorf("json total lacks %s", k)
		}
	}

	var c bytes.Buffer
	if err := report.Render(&c, r, report.FormatCSV); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+3+1+1 || recs[0][4] != "uptime" || recs[1][0] != "check" || recs[1][1] != "api" || recs[5][0] != "total" {
		t.Fatalf("csv: %v", recs)
	}
	if recs[1][7] != "8100" || recs[1][11] != "2" { // api down_s, incidents
		t.Fatalf("csv api row: %v", recs[1])
	}

	var h bytes.Buffer
	if err := report.Render(&h, r, report.FormatHTML); err != nil {
		t.Fatal(err)
	}
	html := h.String()
	for _, s := range []string{"<svg class=\"bars\"", "<circle", "API", "99.686%", "1h 15m", "No incidents"} {
		if s == "No incidents" {
			if strings.Contains(html, s) {
				t.Errorf("html says no incidents")
			}
			continue
		}
		if !strings.Contains(html, s) {
			t.Errorf("html lacks %q", s)
		}
	}
	if strings.Contains(html, "<script") || strings.Contains(html, "src=\"http") || strings.Contains(html, "href=\"http") {
		t.Errorf("html is not self-contained")
	}
}

func TestParseTime(t *testing.T) {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	got, err := report.ParseTime("2026-11-01", seoul)
	if err != nil || !got.Equal(at("2026-10-31T15:00:00Z")) {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := report.ParseTime("2026-11-01T10:00:00Z", seoul); err != nil || !got.Equal(at("2026-11-01T10:00:00Z")) {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := report.ParseTime("November", nil); err == nil {
		t.Fatal("accepted a bad date")
	}
}

// The HTML report speaks the page's language: in Korean every heading,
// label and the explanation are Korean, the figures the same as in
// English; an empty period says so in Korean too.
func TestRenderKorean(t *testing.T) {
	st := seed(t, false)
	r := build(t, st, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "")
	var en, ko bytes.Buffer
	if err := report.RenderIn(&en, r, report.FormatHTML, "en"); err != nil {
		t.Fatal(err)
	}
	if err := report.RenderIn(&ko, r, report.FormatHTML, "ko"); err != nil {
		t.Fatal(err)
	}
	e, k := en.String(), ko.String()
	for _, s := range []string{`<html lang="en">`, "Summary", "How these figures are made", "Downtime in period", "Daily p95 by region",
		"Maintenance time is left out of every figure"} {
		if !strings.Contains(e, s) {
			t.Errorf("english report lacks %q", s)
		}
		if s != `<html lang="en">` && strings.Contains(k, s) {
			t.Errorf("korean report still says %q", s)
		}
	}
	for _, s := range []string{`<html lang="ko">`, "<h2>요약</h2>", "<h2>장애</h2>", "기간 중 다운타임", "리전별 일별 p95", "일별 가동률 (30일, UTC)",
		"점검 시간은 모든 수치에서 뺍니다", "99.686%", "1h 15m"} {
		if !strings.Contains(k, s) {
			t.Errorf("korean report lacks %q", s)
		}
	}
	// A period without incidents.
	empty := build(t, st, "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z", "")
	var kb bytes.Buffer
	if err := report.RenderIn(&kb, empty, report.FormatHTML, "ko"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(kb.String(), "장애가 없습니다.") {
		t.Errorf("korean report of a quiet day lacks its no-incidents line")
	}
}
