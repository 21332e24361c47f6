package statuspage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/store"
)

// schedSource is a Source that schedules maintenance windows in memory,
// knowing the checks api, db and web.
type schedSource struct {
	*fakeSource
	mu  sync.Mutex
	cfg []config.Maintenance
	rt  []ScheduledWindow
	n   int
}

func (s *schedSource) ScheduleMaintenance(_ context.Context, m config.Maintenance) (ScheduledWindow, error) {
	for _, c := range m.Checks {
		if c != "api" && c != "db" && c != "web" {
			return ScheduledWindow{}, fmt.Errorf("%w: unknown check %q", ErrInvalidWindow, c)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rt) >= 2 {
		return ScheduledWindow{}, fmt.Errorf("%w: at most 2 windows", store.ErrConflict)
	}
	s.n++
	w := ScheduledWindow{ID: fmt.Sprintf("%016x", s.n), Maintenance: m, CreatedAt: testNow, Author: "eu-1"}
	s.rt = append(s.rt, w)
	return w, nil
}

func (s *schedSource) CancelMaintenance(_ context.Context, id string) (ScheduledWindow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range s.rt {
		if w.ID == id {
			s.rt = append(s.rt[:i], s.rt[i+1:]...)
			return w, nil
		}
	}
	return ScheduledWindow{}, store.ErrNotFound
}

func (s *schedSource) MaintenanceWindows() ([]config.Maintenance, []ScheduledWindow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg, append([]ScheduledWindow(nil), s.rt...)
}

func newMaintServer(t *testing.T) (*Server, *schedSource, *httptest.Server) {
	t.Helper()
	weekly, err := config.NewRecurringMaintenance("Weekly patching", []string{"web"}, "0 2 * * 0", 2*time.Hour, "Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	src := &schedSource{fakeSource: &fakeSource{ready: true, st: testStatus()}, cfg: []config.Maintenance{
		{Title: "DB upgrade", Checks: []string{"db"}, Start: testNow.Add(24 * time.Hour), End: testNow.Add(25 * time.Hour)}, weekly}}
	s := New(Options{Source: src, Page: testPage(), Now: func() time.Time { return testNow }, APIToken: testToken})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, src, ts
}

func do(t *testing.T, ts *httptest.Server, method, path, token, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %d, body not JSON: %q", method, path, resp.StatusCode, b)
	}
	return resp, m
}

func listMaint(t *testing.T, ts *httptest.Server) []MaintenanceJSON {
	t.Helper()
	resp, err := http.Get(ts.URL + "/api/v1/maintenance")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l MaintenanceListJSON
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/maintenance: %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	return l.Maintenance
}

func TestMaintenanceAPI(t *testing.T) {
	_, src, ts := newMaintServer(t)
	oneOff := `{"checks":["api","api"],"title":"Load balancer swap","start":"2026-11-22T09:30:00Z","end":"2026-11-22T11:00:00Z"}`

	// The token is required to write.
	for _, tok := range []string{"", "wrong-token-wrong-token"} {
		if resp, m := do(t, ts, "POST", "/api/v1/maintenance", tok, oneOff); resp.StatusCode != 401 ||
			!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("POST with token %q: %d %v", tok, resp.StatusCode, m)
		}
		if resp, m := do(t, ts, "DELETE", "/api/v1/maintenance/0000000000000001", tok, ""); resp.StatusCode != 401 {
			t.Fatalf("DELETE with token %q: %d %v", tok, resp.StatusCode, m)
		}
	}
	if len(src.rt) != 0 {
		t.Fatal("an unauthorized request scheduled a window")
	}

	// Refused with the config's words.
	for _, tc := range []struct{ body, want string }{
		{`{"checks":["nope"],"start":"2026-11-22T09:30:00Z","end":"2026-11-22T11:00:00Z"}`, `unknown check "nope"`},
		{`{"checks":[],"start":"2026-11-22T09:30:00Z","end":"2026-11-22T11:00:00Z"}`, "needs checks"},
		{`{"checks":["api"],"start":"2026-11-22T11:30:00Z","end":"2026-11-22T11:00:00Z"}`, "must be after start"},
		{`{"checks":["api"],"start":"2026-11-22T08:00:00Z","end":"2026-11-22T09:00:00Z"}`, "in the past"},
		{`{"checks":["api"],"start":"tomorrow","end":"2026-11-22T11:00:00Z"}`, "RFC 3339"},
		{`{"checks":["api"],"end":"2026-11-22T11:00:00Z"}`, "needs start"},
		{`{"checks":["api"],"every":"0 2 * * 7x","duration":"1h"}`, "every"},
		{`{"checks":["api"],"every":"0 2 * * 0"}`, "needs duration"},
		{`{"checks":["api"],"every":"0 2 * * 0","duration":"-1h"}`, "duration must be positive"},
		{`{"checks":["api"],"every":"0 2 * * 0","duration":"soon"}`, "duration must be"},
		{`{"checks":["api"],"every":"0 2 * * 0","duration":"1h","timezone":"Mars/Olympus"}`, "timezone"},
		{`{"checks":["api"],"every":"0 2 * * 0","duration":"1h","start":"2026-11-22T09:30:00Z"}`, "do not go with every"},
		{`{"checks":["api"],"start":"2026-11-22T09:30:00Z","end":"2026-11-22T11:00:00Z","duration":"1h"}`, "apply to a recurring window"},
		{`{"checks":["api"],"title":"` + strings.Repeat("x", 300) + `","start":"2026-11-22T09:30:00Z","end":"2026-11-22T11:00:00Z"}`, "title"},
		{`{"checks":["api"],"start":"2026-11-22T09:30:00Z","end":"2026-11-22T11:00:00Z","token":"x"}`, "unknown field"},
		{`{"checks":["api"]} {}`, "JSON"},
		{``, "empty request body"},
	} {
		resp, m := do(t, ts, "POST", "/api/v1/maintenance", testToken, tc.body)
		if resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(m["error"]), tc.want) {
			t.Errorf("%s: %d %v, want 400 with %q", tc.body, resp.StatusCode, m, tc.want)
		}
	}
	big := `{"checks":["api"],"title":"` + strings.Repeat("x", 70<<10) + `"}`
	if resp, _ := do(t, ts, "POST", "/api/v1/maintenance", testToken, big); resp.StatusCode != 413 {
		t.Fatalf("a body over the bound: %d", resp.StatusCode)
	}

	// Scheduled: a one-off window in progress and a recurring one.
	resp, m := do(t, ts, "POST", "/api/v1/maintenance", testToken, oneOff)
	if resp.StatusCode != 201 || m["status"] != "in_progress" || m["source"] != "api" || m["id"] != "0000000000000001" ||
		resp.Header.Get("Location") != "/api/v1/maintenance/0000000000000001" || fmt.Sprint(m["checks"]) != "[api]" {
		t.Fatalf("one-off window: %d %v", resp.StatusCode, m)
	}
	resp, m = do(t, ts, "POST", "/api/v1/maintenance", testToken,
		`{"checks":["db"],"title":"Nightly backup","every":"30 3 * * *","duration":"45m","timezone":"Europe/Berlin"}`)
	if resp.StatusCode != 201 || m["status"] != "scheduled" || m["every"] != "30 3 * * *" || m["duration"] != "45m0s" ||
		m["timezone"] != "Europe/Berlin" {
		t.Fatalf("recurring window: %d %v", resp.StatusCode, m)
	}
	// 03:30 in Berlin on 23 Nov 2026 is 02:30 UTC.
	if next := m["next"].(map[string]any); next["start"] != "2026-11-23T02:30:00Z" || next["end"] != "2026-11-23T03:15:00Z" {
		t.Fatalf("next occurrence %v", next)
	}
	if resp, m := do(t, ts, "POST", "/api/v1/maintenance", testToken, oneOff); resp.StatusCode != 409 || !strings.Contains(fmt.Sprint(m["error"]), "at most") {
		t.Fatalf("past the scheduler's bound: %d %v", resp.StatusCode, m)
	}

	// Listed publicly, with the config's windows: in progress first.
	l := listMaint(t, ts)
	if len(l) != 4 {
		t.Fatalf("%d windows listed: %+v", len(l), l)
	}
	if l[0].ID != "0000000000000001" || l[0].Status != "in_progress" || l[0].Current == nil || l[0].CreatedBy != "eu-1" {
		t.Fatalf("first listed: %+v", l[0])
	}
	for _, w := range l[1:] {
		if w.Status != "scheduled" {
			t.Fatalf("listed %+v", w)
		}
	}
	var cfgID string
	for _, w := range l {
		if w.Source == "config" && w.Title == "DB upgrade" {
			cfgID = w.ID
		}
		if w.Source == "config" && w.Title == "Weekly patching" && (w.Timezone != "Asia/Seoul" || w.Next == nil) {
			t.Fatalf("recurring config window: %+v", w)
		}
	}
	if !strings.HasPrefix(cfgID, "config-") {
		t.Fatalf("config window id %q", cfgID)
	}
	if again := listMaint(t, ts); again[3].ID != l[3].ID || again[1].ID != l[1].ID {
		t.Fatal("ids not stable between two lists")
	}

	// Cancelling: config windows are the file's; unknown ids 404.
	if resp, m := do(t, ts, "DELETE", "/api/v1/maintenance/"+cfgID, testToken, ""); resp.StatusCode != 409 ||
		!strings.Contains(fmt.Sprint(m["error"]), "configuration file") {
		t.Fatalf("cancel a config window: %d %v", resp.StatusCode, m)
	}
	for _, id := range []string{"00000000000000ff", "not-an-id"} {
		if resp, m := do(t, ts, "DELETE", "/api/v1/maintenance/"+id, testToken, ""); resp.StatusCode != 404 {
			t.Fatalf("cancel %s: %d %v", id, resp.StatusCode, m)
		}
	}
	resp, m = do(t, ts, "DELETE", "/api/v1/maintenance/0000000000000001", testToken, "")
	if resp.StatusCode != 200 || m["status"] != "cancelled" || m["title"] != "Load balancer swap" {
		t.Fatalf("cancel: %d %v", resp.StatusCode, m)
	}
	if l := listMaint(t, ts); len(l) != 3 {
		t.Fatalf("after the cancellation: %+v", l)
	}

	// Without a scheduler: writes 501, the list is the page's.
	s2 := New(Options{Source: &fakeSource{ready: true, st: testStatus()}, Page: testPage(), Now: func() time.Time { return testNow }, APIToken: testToken})
	ts2 := httptest.NewServer(s2)
	defer ts2.Close()
	if resp, _ := do(t, ts2, "POST", "/api/v1/maintenance", testToken, oneOff); resp.StatusCode != 501 {
		t.Fatalf("without a scheduler: %d", resp.StatusCode)
	}
	if l := listMaint(t, ts2); len(l) != 1 || l[0].Title != "DB upgrade" || l[0].Source != "config" {
		t.Fatalf("the page's windows: %+v", l)
	}
}

// SetAPIToken: the old token is refused at once, everywhere the token is
// checked; the new one is taken.
func TestSetAPIToken(t *testing.T) {
	s, _, ts := newMaintServer(t)
	const next = "the-next-token-0123456789"
	body := `{"checks":["api"],"start":"2026-11-22T09:30:00Z","end":"2026-11-22T11:00:00Z"}`
	if resp, m := do(t, ts, "POST", "/api/v1/maintenance", testToken, body); resp.StatusCode != 201 {
		t.Fatalf("before: %d %v", resp.StatusCode, m)
	}
	s.SetAPIToken(next)
	operatorView := func(tok string) int {
		req, _ := http.NewRequest("GET", ts.URL+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if resp, _ := do(t, ts, "POST", "/api/v1/maintenance", testToken, body); resp.StatusCode != 401 {
		t.Fatalf("old token after the rotation: %d", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "POST", "/api/v1/incidents", testToken, `{"title":"x","body":"y"}`); resp.StatusCode != 401 {
		t.Fatalf("old token on the incident API: %d", resp.StatusCode)
	}
	if code := operatorView(testToken); code != 401 {
		t.Fatalf("old token on the operator view: %d", code)
	}
	if resp, _ := do(t, ts, "GET", "/api/v1/reports", testToken, ""); resp.StatusCode != 401 {
		t.Fatalf("old token on the reports API: %d", resp.StatusCode)
	}
	if resp, m := do(t, ts, "POST", "/api/v1/maintenance", next, body); resp.StatusCode != 201 {
		t.Fatalf("new token: %d %v", resp.StatusCode, m)
	}
	if code := operatorView(next); code != 200 {
		t.Fatalf("new token on the operator view: %d", code)
	}
	s.SetAPIToken("")
	if resp, m := do(t, ts, "DELETE", "/api/v1/maintenance/0000000000000001", next, ""); resp.StatusCode != 401 ||
		!strings.Contains(fmt.Sprint(m["error"]), "disabled") {
		t.Fatalf("no token: %d %v", resp.StatusCode, m)
	}
}

// The API's rotation is safe under concurrent requests.
func TestSetAPITokenConcurrent(t *testing.T) {
	s, _, ts := newMaintServer(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				if i == 0 {
					s.SetAPIToken(fmt.Sprintf("token-%d-0123456789abcdef", j))
					continue
				}
				req, _ := http.NewRequest("GET", ts.URL+"/api/v1/status", nil)
				req.Header.Set("Authorization", "Bearer "+testToken)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
}
