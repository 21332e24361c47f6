package statuspage

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	status.Checks[1].Regions = map[string]*RegionVote{"eu-west": {Vote: "up"}, "us-east": {Vote: "up"}}
	src := &fakeSource{ready: true, st: status}
	srv := New(Options{Source: src, History: st, Page: testPage(), Now: func() time.Time { return testNow },
		Writer: storeWriter{st: st, node: "eu-1"}, APIToken: testToken, MinRefreshGap: 10 * time.Millisecond})
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); srv.Run(runCtx) }()
	t.Cleanup(func() { stopRun(); <-runDone })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)

	b := newBrowser(t, chrome)
	ctx, do, text, poll := b.ctx, b.do, b.text, b.poll

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
	down.Checks[0].Regions = map[string]*RegionVote{"eu-west": {Vote: "down", Error: "timeout"}, "us-east": {Vote: "down", Error: "timeout"}}
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

	b.screenshot("statuspage-live.png")

	// A fresh load shows the same, rendered by the server (another URL: the
	// browser may serve "/" from its cache for max-age).
	do("load again", chromedp.Navigate(ts.URL+"/?again"), chromedp.WaitVisible(chromedp.CSS("#banner")))
	if got := text("#banner-text"); got != "Major outage" {
		t.Fatalf("banner when loaded again %q", got)
	}
	if got := text(`#incident-inc-new .timeline li .ubody`); got != "The primary database ran out of disk; moving data now." {
		t.Fatalf("update when loaded again %q", got)
	}
	b.noExceptions()
}

// browser is a headless Chromium driven by a test.
type browser struct {
	t    *testing.T
	ctx  context.Context
	do   func(what string, steps ...chromedp.Action[chromedp.Void])
	text func(sel string) string
	poll func(what, expr string)

	mu         sync.Mutex
	exceptions []string
}

// newBrowser starts Chromium; every wait on it is bounded by 90 s.
func newBrowser(t *testing.T, chrome string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // Chromium refuses to run as root with its sandbox
		chromedp.DisableGPU,
		chromedp.WindowSize(1000, 1300),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx); err != nil { // starts the browser, with no deadline
		t.Fatalf("start %s: %v", chrome, err)
	}
	b := &browser{t: t}
	msgs := chromedp.Console(bctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() {
				b.mu.Lock()
				b.exceptions = append(b.exceptions, m.String())
				b.mu.Unlock()
			}
		}
	}()
	// Every wait below is on a condition in the page, bounded by this.
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel)
	b.ctx = ctx
	b.do = func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	b.text = func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	b.poll = func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr)); err != nil {
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}
	return b
}

// screenshot saves the page as name under the artifacts directory.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		b.t.Fatal(err)
	}
	if len(shot) < 8 || string(shot[1:4]) != "PNG" {
		b.t.Fatalf("screenshot is not a PNG")
	}
	path := filepath.Join(artifactDir(b.t), name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", path, len(shot))
}

func (b *browser) noExceptions() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.exceptions) > 0 {
		b.t.Fatalf("uncaught exceptions in the page: %v", b.exceptions)
	}
}

// contrastJS computes the WCAG contrast ratio of the banner's "Updated …"
// line against the banner, for every banner colour.
const contrastJS = `(() => {
  const rgb = s => s.match(/[\d.]+/g).map(Number);
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const banner = document.getElementById("banner"), meta = banner.querySelector(".meta"), keep = banner.className;
  let worst = 99;
  for (const o of ["operational", "degraded", "partial_outage", "major_outage", "maintenance", "monitoring_degraded"]) {
    banner.className = "banner ov-" + o;
    const bg = rgb(getComputedStyle(banner).backgroundColor), fg = rgb(getComputedStyle(meta).color);
    const op = parseFloat(getComputedStyle(meta).opacity) * (fg.length > 3 ? fg[3] : 1);
    const eff = [0, 1, 2].map(i => fg[i] * op + bg[i] * (1 - op));
    const a = lum(eff), b = lum(bg);
    worst = Math.min(worst, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05));
  }
  banner.className = keep;
  return worst;
})()`

// TestBrowserLocales loads the page, a check's page and an incident's page
// in English (UTC) and in Korean (Asia/Seoul) with the operator's logo,
// links and stylesheet: every fixed string in the page's language, times
// in its zone, live changes in the language too, the banner's text
// readable (contrast at least 4.5:1), the favicon served; screenshots of
// each page are saved under $VANTAGE_ARTIFACTS.
func TestBrowserLocales(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		t.Skip("chromium not found on PATH (Debian: apt-get install -y chromium); set VANTAGE_CHROMIUM to use another browser")
	}
	for _, tc := range []struct {
		locale, zone                         string
		banner, bannerLive, down, identified string
		updated, footer, skip, pastIncidents string
	}{
		{"en", "", "Partial outage", "Major outage", "Down", "Identified", "Updated 22 Nov 2026 10:00 UTC", "Times in UTC.", "Skip to content", "Past incidents"},
		{"ko", "Asia/Seoul", "부분 장애", "대규모 장애", "장애", "원인 파악", "2026년 11월 22일 19:00 KST 기준", "시간대: Asia/Seoul (KST).", "본문으로 건너뛰기", "지난 장애"},
	} {
		t.Run(tc.locale, func(t *testing.T) {
			st := newStore(t)
			p := testPage()
			p.Site = Site{Locale: tc.locale, Timezone: tc.zone, Logo: testLogo(t), LogoType: "image/png",
				Links:     []Link{{"Home", "https://example.com/"}, {"Docs", "/docs"}},
				CustomCSS: ".brand span{letter-spacing:2px}"}
			src := &fakeSource{ready: true, st: testStatus()}
			srv := New(Options{Source: src, History: st, Page: p, Now: func() time.Time { return testNow },
				Writer: storeWriter{st: st, node: "eu-1"}, APIToken: testToken, MinRefreshGap: 10 * time.Millisecond})
			runCtx, stopRun := context.WithCancel(context.Background())
			runDone := make(chan struct{})
			go func() { defer close(runDone); srv.Run(runCtx) }()
			t.Cleanup(func() { stopRun(); <-runDone })
			ts := httptest.NewServer(srv)
			t.Cleanup(ts.Close)

			b := newBrowser(t, chrome)
			do, text, poll := b.do, b.text, b.poll
			do("load the page", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#banner")))
			if got := text("#banner-text"); got != tc.banner {
				t.Errorf("banner %q, want %q", got, tc.banner)
			}
			if got := text(".banner .meta"); !strings.HasPrefix(got, tc.updated) {
				t.Errorf("updated line %q, want %q…", got, tc.updated)
			}
			if got := text("footer"); !strings.Contains(got, tc.footer) {
				t.Errorf("footer %q lacks %q", got, tc.footer)
			}
			if got := text("a.skip"); got != tc.skip {
				t.Errorf("skip link %q", got)
			}
			if got := text("#h-past"); got != tc.pastIncidents {
				t.Errorf("past incidents heading %q", got)
			}
			lang, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
			if err != nil || lang != tc.locale {
				t.Errorf("lang %q %v", lang, err)
			}
			if c, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](contrastJS)); err != nil || c < 4.5 {
				t.Errorf("banner text contrast %.2f (%v), want at least 4.5", c, err)
			}
			// branding: the logo shown, the links, the stylesheet applied
			poll("the logo", `document.querySelector("img.logo") && document.querySelector("img.logo").naturalWidth > 0`)
			if got := text("nav.links"); !strings.Contains(got, "Home") || !strings.Contains(got, "Docs") {
				t.Errorf("links %q", got)
			}
			poll("the custom stylesheet", `getComputedStyle(document.querySelector(".brand span")).letterSpacing === "2px"`)
			poll("the favicon", `(window.vantageIcon = window.vantageIcon || fetch("/favicon.ico").then(r => r.status === 200 && r.headers.get("content-type") === "image/x-icon").then(ok => window.vantageIconOK = ok), window.vantageIconOK === true)`)
			if desc, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('meta[name="description"]').content`)); err != nil || desc == "" {
				t.Errorf("meta description %q %v", desc, err)
			}
			// every fixed string is in the page's language: no English
			// left on the Korean page
			if tc.locale == "ko" {
				body := text("body")
				for _, en := range []string{"Operational", "Investigating", "uptime", "Active incidents", "Regions now", "no data", "Updated", "started", " ago"} {
					if strings.Contains(body, en) {
						t.Errorf("Korean page shows %q", en)
					}
				}
			}
			// Live: the websocket's changes in the page's language.
			poll("the live indicator", `!document.getElementById("live").hidden`)
			waitClients(t, srv.Hub(), 1)
			down := testStatus()
			down.Checks[0].State, down.Checks[0].Since, down.Checks[0].IncidentID = "down", testNow, "inc-api"
			down.Checks[0].Regions = map[string]*RegionVote{"eu-west": {Vote: "down", Error: "timeout"}, "us-east": {Vote: "down", Error: "timeout"}}
			src.mu.Lock()
			src.st = down
			src.mu.Unlock()
			srv.Publish(Event{Name: "api", State: "down", Since: testNow, IncidentID: "inc-api", Regions: down.Checks[0].Regions})
			do("api shown down", chromedp.WaitVisible(chromedp.CSS(`.check[data-check="api"][data-state="down"]`)))
			if got := text(`.check[data-check="api"] [data-role="state"]`); got != tc.down {
				t.Errorf("api state after the event %q, want %q", got, tc.down)
			}
			poll("the banner", `document.getElementById("banner-text").textContent === `+strconv.Quote(tc.bannerLive)+
				` || document.getElementById("banner-text").textContent === `+strconv.Quote(tc.banner))
			resp, m := post(t, ts, "/api/v1/incidents/inc-new/updates", "Bearer "+testToken,
				`{"status":"identified","body":"The primary database ran out of disk."}`)
			if resp.StatusCode != 201 {
				t.Fatalf("post update: %d %v", resp.StatusCode, m)
			}
			poll("the update", `(document.querySelector("#incident-inc-new .timeline li strong") || {}).textContent === `+strconv.Quote(tc.identified))
			if got := text(`#incident-inc-new .timeline li time`); !strings.HasSuffix(got, map[string]string{"en": "UTC", "ko": "KST"}[tc.locale]) {
				t.Errorf("update time %q", got)
			}
			b.screenshot("statuspage-" + tc.locale + ".png")

			do("the check page", chromedp.Navigate(ts.URL+"/checks/api"), chromedp.WaitVisible(chromedp.CSS("svg.chart")))
			if tc.locale == "ko" {
				if got := text("#h-lat"); got != "지연 시간, 최근 24시간" {
					t.Errorf("check page heading %q", got)
				}
			}
			b.screenshot("statuspage-check-" + tc.locale + ".png")
			do("the incident page", chromedp.Navigate(ts.URL+"/incidents/inc-new"), chromedp.WaitVisible(chromedp.CSS(".incident-page")))
			if got := text(".incident-page .istatus"); got != tc.identified {
				t.Errorf("incident page status %q", got)
			}
			b.screenshot("statuspage-incident-" + tc.locale + ".png")
			b.noExceptions()
		})
	}
}

// testLogo is a small PNG.
func testLogo(t *testing.T) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 64, 32))
	for y := range 32 {
		for x := range 64 {
			img.SetNRGBA(x, y, color.NRGBA{0x15, 0x65, 0xc0, 0xff})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBrowserLargePage loads a page of 250 checks, more than CompactAbove:
// each in a line with its state and 24 h uptime and no bars, the note
// that says so, a line that fits the window; a check going down changes
// its line, its group and the banner in place; a check's own page has its
// 90-day bar. Screenshots: statuspage-large.png, statuspage-large-check.png.
func TestBrowserLargePage(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		t.Skip("chromium not found on PATH (Debian: apt-get install -y chromium); set VANTAGE_CHROMIUM to use another browser")
	}
	st, p := manyChecks(250)
	src := &fakeSource{ready: true, st: st}
	srv := New(Options{Source: src, History: &memHistory{}, Page: p, Now: func() time.Time { return testNow },
		MinRefreshGap: 10 * time.Millisecond})
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); srv.Run(runCtx) }()
	t.Cleanup(func() { stopRun(); <-runDone })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)

	b := newBrowser(t, chrome)
	ctx, do, text, poll := b.ctx, b.do, b.text, b.poll
	do("load the page", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#compact-note")))
	if got := text("#compact-note"); got != "250 components, each with its state and its uptime over the last 24 hours; follow a name for its 90-day history." {
		t.Fatalf("note %q", got)
	}
	shape, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => {
	  const l = document.querySelector('.check.line[data-check="check-00012"]'), r = l.getBoundingClientRect();
	  return [document.querySelectorAll(".check.line").length, document.querySelectorAll("ol.bar").length, r.height,
	    document.documentElement.scrollWidth - document.documentElement.clientWidth];
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if shape[0] != 250 || shape[1] != 0 || shape[2] > 60 || shape[3] > 0 {
		t.Fatalf("%v lines, %v bars, a line %v px high, %v px too wide", shape[0], shape[1], shape[2], shape[3])
	}
	if got := text(`.check[data-check="check-00012"] .u24`); got != "Uptime 24h 99.95%" {
		t.Fatalf("24 h uptime %q", got)
	}
	poll("the live indicator", `!document.getElementById("live").hidden`)
	waitClients(t, srv.Hub(), 1)

	down := withCheck(st, 12, func(c *CheckStatus) { c.State, c.Since = "down", testNow })
	src.mu.Lock()
	src.st = down
	src.mu.Unlock()
	srv.Publish(Event{Name: "check-00012", State: "down", Since: testNow, Regions: down.Checks[12].Regions})
	do("the line down", chromedp.WaitVisible(chromedp.CSS(`.check.line[data-check="check-00012"][data-state="down"]`)))
	if got := text(`.check[data-check="check-00012"] [data-role="state"]`); got != "Down" {
		t.Fatalf("state after the event %q", got)
	}
	poll("its group down", `document.querySelector('.check[data-check="check-00012"]').closest(".group").querySelector('[data-role="gstate"]').textContent === "Down"`)
	poll("the partial outage banner", `document.getElementById("banner-text").textContent === "Partial outage"`)
	b.screenshot("statuspage-large.png")

	do("open the check's page", chromedp.Click(chromedp.CSS(`.check.line[data-check="check-00012"] a`)),
		chromedp.WaitVisible(chromedp.CSS("ol.bar")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("ol.bar li.d").length`)); err != nil || n != 90 {
		t.Fatalf("%d cells on the check's page (%v)", n, err)
	}
	b.screenshot("statuspage-large-check.png")
	b.noExceptions()
}
