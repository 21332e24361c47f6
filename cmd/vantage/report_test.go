package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/report"
	"github.com/vantage-dev/vantage/store"
)

const cliToken = "cli-test-token-0123456789"

// fakeReports answers GET /api/v1/reports like a node: the report of one
// check with one incident, in the requested format.
func fakeReports(t *testing.T) (*httptest.Server, func() string) {
	t.Helper()
	var mu sync.Mutex
	var lastQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/reports" || r.Header.Get("Authorization") != "Bearer "+cliToken {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid bearer token"}`))
			return
		}
		mu.Lock()
		lastQuery = r.URL.RawQuery
		mu.Unlock()
		q := r.URL.Query()
		from, _ := report.ParseTime(q.Get("from"), time.UTC)
		to, _ := report.ParseTime(q.Get("to"), time.UTC)
		start, end := from.Add(48*time.Hour), from.Add(48*time.Hour+90*time.Minute)
		in := &report.Input{
			Checks:  []report.CheckInfo{{Name: "api", Group: "Public API"}},
			Regions: []string{"eu", "us"},
			States: store.StateHistory{Before: map[string]store.StateChange{"api": {Check: "api", To: "up"}},
				Changes: []store.StateChange{{Check: "api", Time: start, To: "down"}, {Check: "api", Time: end, To: "up"}}},
			Incidents: []store.Incident{{ID: "inc-7", Check: "api", StartedAt: start, ResolvedAt: &end}},
		}
		rep, err := report.Compute(in, report.Params{From: from, To: to, Now: to, Title: "Acme uptime report"})
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("Content-Type", report.ContentType(q.Get("format")))
		report.Render(w, rep, q.Get("format"))
	}))
	t.Cleanup(srv.Close)
	return srv, func() string { mu.Lock(); defer mu.Unlock(); return lastQuery }
}

func TestReportCommand(t *testing.T) {
	srv, last := fakeReports(t)
	t.Setenv("VANTAGE_API_TOKEN", cliToken)

	var out, errb bytes.Buffer
	code := runMain([]string{"report", "--addr", srv.URL, "--from", "2026-11-01", "--to", "2026-12-01", "--group", "Public API"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if q := last(); !strings.Contains(q, "format=json") || !strings.Contains(q, "group=Public+API") || !strings.Contains(q, "from=2026-11-01") {
		t.Fatalf("query %q", q)
	}
	text := out.String()
	for _, s := range []string{"Acme uptime report", "CHECK", "api", "99.791%", "1h 30m", "inc-7", "[total]", "P95 EU"} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q:\n%s", s, text)
		}
	}

	// Formats pass through, to a file with --out.
	file := filepath.Join(t.TempDir(), "r.html")
	out.Reset()
	if code := runMain([]string{"report", "--addr", srv.URL, "--from", "2026-11-01", "--to", "2026-12-01", "--format", "html", "--out", file}, &out, &errb); code != 0 {
		t.Fatalf("html: exit %d: %s", code, errb.String())
	}
	if b, _ := os.ReadFile(file); !bytes.HasPrefix(b, []byte("<!doctype html>")) || out.Len() != 0 {
		t.Fatalf("html file: %.60s", b)
	}
	out.Reset()
	runMain([]string{"report", "--addr", srv.URL, "--from", "2026-11-01", "--to", "2026-12-01", "--format", "json"}, &out, &errb)
	var r report.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.Total.Incidents != 1 {
		t.Fatalf("json: %v %+v", err, r.Total)
	}

	// Refusals and bad flags.
	errb.Reset()
	t.Setenv("VANTAGE_API_TOKEN", "wrong-token-0123456789")
	if code := runMain([]string{"report", "--addr", srv.URL, "--from", "2026-11-01", "--to", "2026-12-01"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "invalid bearer token") {
		t.Fatalf("wrong token: exit %d: %s", code, errb.String())
	}
	t.Setenv("VANTAGE_API_TOKEN", "")
	if code := runMain([]string{"report", "--addr", srv.URL, "--from", "2026-11-01", "--to", "2026-12-01"}, &out, &errb); code != 2 {
		t.Fatalf("no token: exit %d", code)
	}
	t.Setenv("VANTAGE_API_TOKEN", cliToken)
	for _, args := range [][]string{{"report"}, {"report", "--from", "2026-11-01"}, {"report", "--from", "a", "--to", "b", "--format", "pdf"}} {
		if code := runMain(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	if code := runMain([]string{"report", "--addr", "http://127.0.0.1:1", "--from", "2026-11-01", "--to", "2026-12-01"}, &out, &errb); code != 1 {
		t.Errorf("unreachable node: exit %d", code)
	}
}
