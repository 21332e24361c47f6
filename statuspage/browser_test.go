package statuspage

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// findChromium returns the browser to drive: $VANTAGE_CHROMIUM, else the
// first of Debian's chromium and its usual names on PATH.
func findChromium() string {
	if p := os.Getenv("VANTAGE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// artifactDir is where tests leave files for people: $VANTAGE_ARTIFACTS
// (created if needed), else the test's temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("VANTAGE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowserLivePage loads the page in headless Chromium: the banner and a
// check's 90-day bar are right; a check going down, an incident update and
// a manual incident arrive over the websocket and change the page in place
// (no reload); a screenshot is saved.
func TestBrowserLivePage(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		t.Skip("chromium not found on PATH (Debian: apt-get install -y chromium; .ci/run installs it); set VANTAGE_CHROMIUM to use another browser")
	}
	st := newStore(t) // api: a day of results; db: an open incident
	status := testStatus()
	status.Checks[1].State, status.Checks[1].IncidentID = "up", "" // every check up
	status.Checks[1].Regions = map[string]RegionVote{"eu-west": {Vote: "up"}, "us-east": {Vote: "up"}}
	src := &fakeSource{ready: true, st: status}
	srv := New(Options{Source: src, History: st, Page: testPage(), Now: func() time.Time { return testNow },
		Writer: storeWriter{st: st, node: "eu-1"}, APIToken: testToken, MinRefreshGap: 10 * time.Millisecond})
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); srv.Run(runCtx) }()
	t.Cleanup(func() { stopRun(); <-runDone })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // Chromium refuses to run as root with its sandbox
		chromedp.DisableGPU,
		chromedp.WindowSize(1000, 1300),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, with no deadline
		t.Fatalf("start %s: %v", chrome, err)
	}
	var (
		exMu       sync.Mutex
		exceptions []string
	)
	msgs := chromedp.Console(bctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() {
				exMu.Lock()
				exceptions = append(exceptions, m.String())
				exMu.Unlock()
			}
		}
	}()
	// Every wait below is on a condition in the page, bounded by this.
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr)); err != nil {
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}

	do("load the page", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#banner")))
	if got := text("#banner-text"); got != "All systems operational" {
		t.Fatalf("banner %q", got)
	}
	if got := text(`.check[data-check="api"] [data-role="state"]`); got != "Operational" {
		t.Fatalf("api state %q", got)
	}
	// api's 90-day bar: 90 days, oldest first; no data at first; today has
	// results (eu-west failed 10 minutes) and names the day's incident.
	cells, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('.check[data-check="api"] ol.bar li')).map(e => e.className + "|" + e.getAttribute("aria-label"))`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 90 || cells[0] != "d none|2026-08-25: no data" ||
		!strings.HasPrefix(cells[89], "d ") || !strings.HasPrefix(strings.SplitN(cells[89], "|", 2)[1], "2026-11-22: 99.") ||
		!strings.Contains(cells[89], "% uptime; incident: Public API is down") || strings.HasPrefix(cells[89], "d none") {
		t.Fatalf("api bar: %d cells, first %q, last %q", len(cells), cells[0], cells[len(cells)-1])
	}
	if ws, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".check ol.bar").length`)); err != nil || ws != 3 {
		t.Fatalf("bars %d %v", ws, err)
	}

	// The live connection is up (on both ends); mark the document to tell a
	// reload from an in-place change.
	poll("the live indicator", `!document.getElementById("live").hidden`)
	waitClients(t, srv.Hub(), 1)
	do("mark the document", chromedp.Evaluate[chromedp.Void](`window.vantageSameDocument = true`))

	// api goes down.
	down := testStatus()
	down.Checks[1] = status.Checks[1]
	down.Checks[0].State, down.Checks[0].Since, down.Checks[0].IncidentID = "down", testNow, "inc-api"
	down.Checks[0].Regions = map[string]RegionVote{"eu-west": {Vote: "down", Error: "timeout"}, "us-east": {Vote: "down", Error: "timeout"}}
	src.mu.Lock()
	src.st = down
	src.mu.Unlock()
	srv.Publish(Event{Name: "api", State: "down", Since: testNow, IncidentID: "inc-api", Regions: down.Checks[0].Regions})
	do("api shown down", chromedp.WaitVisible(chromedp.CSS(`.check[data-check="api"][data-state="down"]`)))
	if got := text(`.check[data-check="api"] [data-role="state"]`); got != "Down" {
		t.Fatalf("api state after the event %q", got)
	}
	poll("the partial outage banner", `document.getElementById("banner-text").textContent === "Partial outage"`)
	poll("api's group down", `document.querySelector('.check[data-check="api"]').closest(".group").querySelector('[data-role="gstate"]').textContent === "Down"`)

	// An operator's update of the open db incident arrives in its timeline.
	resp, m := post(t, ts, "/api/v1/incidents/inc-new/updates", "Bearer "+testToken,
		`{"status":"identified","body":"The primary database ran out of disk; moving data now."}`)
	if resp.StatusCode != 201 {
		t.Fatalf("post update: %d %v", resp.StatusCode, m)
	}
	poll("the update in the timeline",
		`(document.querySelector("#incident-inc-new .timeline li .ubody") || {}).textContent === "The primary database ran out of disk; moving data now."`)
	if got := text(`#incident-inc-new [data-role="istatus"]`); got != "Identified" {
		t.Fatalf("incident status %q", got)
	}

	// A critical manual incident appears among the active ones and turns the
	// banner to a major outage.
	resp, m = post(t, ts, "/api/v1/incidents", "Bearer "+testToken,
		`{"title":"Login emails delayed","body":"Sign-in links arrive up to 20 minutes late.","impact":"critical","checks":["web"]}`)
	if resp.StatusCode != 201 {
		t.Fatalf("open manual incident: %d %v", resp.StatusCode, m)
	}
	manual := m["incident"].(map[string]any)["id"].(string)
	do("the manual incident shown", chromedp.WaitVisible(chromedp.CSS(`#active-incidents #incident-`+manual)))
	poll("the major outage banner", `document.getElementById("banner-text").textContent === "Major outage"`)
	if same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.vantageSameDocument === true`)); err != nil || !same {
		t.Fatalf("the page was reloaded instead of updated in place (%v)", err)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifactDir(t), "statuspage-live.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the live page: %s (%d bytes)", path, len(shot))
	if len(shot) < 8 || string(shot[1:4]) != "PNG" {
		t.Fatalf("screenshot is not a PNG")
	}

	// A fresh load shows the same, rendered by the server (another URL: the
	// browser may serve "/" from its cache for max-age).
	do("load again", chromedp.Navigate(ts.URL+"/?again"), chromedp.WaitVisible(chromedp.CSS("#banner")))
	if got := text("#banner-text"); got != "Major outage" {
		t.Fatalf("banner when loaded again %q", got)
	}
	if got := text(`#incident-inc-new .timeline li .ubody`); got != "The primary database ran out of disk; moving data now." {
		t.Fatalf("update when loaded again %q", got)
	}
	exMu.Lock()
	defer exMu.Unlock()
	if len(exceptions) > 0 {
		t.Fatalf("uncaught exceptions in the page: %v", exceptions)
	}
}
