package statuspage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"io"
	"math"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// chartMarks parses an inline latency chart and returns, per series class
// (s0, s1, ...), how many visible marks it has: polylines whose points
// span a length and circles with a radius.
func chartMarks(t *testing.T, svg string) map[string]int {
	t.Helper()
	marks := map[string]int{}
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed: %v\n%s", err, svg)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attr := map[string]string{}
		for _, a := range se.Attr {
			attr[a.Name.Local] = a.Value
		}
		var series string
		for _, c := range strings.Fields(attr["class"]) {
			if len(c) == 2 && c[0] == 's' && c[1] >= '0' && c[1] <= '9' {
				series = c
			}
		}
		if series == "" {
			continue
		}
		switch se.Name.Local {
		case "circle":
			if r, err := strconv.ParseFloat(attr["r"], 64); err == nil && r > 0 {
				marks[series]++
			}
		case "polyline":
			var minX, maxX, minY, maxY = math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
			for _, p := range strings.Fields(attr["points"]) {
				xs, ys, _ := strings.Cut(p, ",")
				x, err1 := strconv.ParseFloat(xs, 64)
				y, err2 := strconv.ParseFloat(ys, 64)
				if err1 != nil || err2 != nil {
					t.Fatalf("bad point %q in %s", p, svg)
				}
				minX, maxX, minY, maxY = math.Min(minX, x), math.Max(maxX, x), math.Min(minY, y), math.Max(maxY, y)
			}
			if maxX-minX > 0 || maxY-minY > 0 {
				marks[series]++
			}
		}
	}
	return marks
}

var (
	chartSVG  = regexp.MustCompile(`(?s)<svg class="chart".*?</svg>`)
	legendKey = regexp.MustCompile(`<li><span class="key (s[0-9])" aria-hidden="true"></span>([^<]+)</li>`)
)

// A region with a single result in the last 24 hours is drawn: the check
// page's chart has a visible mark in that region's colour.
func TestChartDrawsRegionWithOnePoint(t *testing.T) {
	st := newStore(t) // api: a day of eu-west and us-east
	st.AddBatch([]store.Result{{Node: "ap-south-1", Region: "ap-south", Check: "api",
		Time: testNow.Add(-3 * time.Hour), OK: true, Latency: 120 * time.Millisecond}})
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, ts := newTestServer(t, st)
	resp, page := fetch(t, ts, "/checks/api")
	if resp.StatusCode != 200 {
		t.Fatalf("check page %d", resp.StatusCode)
	}
	svg := chartSVG.Find(page)
	if svg == nil {
		t.Fatalf("no chart:\n%s", page)
	}
	class := map[string]string{}
	for _, m := range legendKey.FindAllSubmatch(page, -1) {
		class[string(m[2])] = string(m[1])
	}
	marks := chartMarks(t, string(svg))
	for _, reg := range []string{"ap-south", "eu-west", "us-east"} {
		c, ok := class[reg]
		if !ok {
			t.Fatalf("legend lacks %s: %v", reg, class)
		}
		if marks[c] == 0 {
			t.Errorf("%s (%s) has no visible mark in the chart:\n%s", reg, c, svg)
		}
	}
}

// A point between gaps gets a dot of its own; runs of points stay lines.
func TestChartLonePointsBetweenGaps(t *testing.T) {
	to := testNow.Truncate(time.Minute)
	from := to.Add(-24 * time.Hour)
	at := func(bucket int) store.MinuteStat {
		return store.MinuteStat{Minute: from.Add(time.Duration(bucket) * chartBucket), Aggregate: store.Aggregate{Count: 1, AvgLatency: 50 * time.Millisecond}}
	}
	svg := string(latencyChart([]chartSeries{
		{Region: "a", Stats: []store.MinuteStat{at(0), at(1), at(5), at(9), at(10), at(20)}},
		{Region: "b", Stats: []store.MinuteStat{at(143)}},
	}, from, to, localeOf(Site{})))
	if got := strings.Count(svg, `<polyline class="line s0"`); got != 2 {
		t.Errorf("series a: %d lines, want 2 (buckets 0-1 and 9-10):\n%s", got, svg)
	}
	if got := strings.Count(svg, `<circle class="dot s0"`); got != 2 {
		t.Errorf("series a: %d dots, want 2 (buckets 5 and 20):\n%s", got, svg)
	}
	if m := chartMarks(t, svg); m["s0"] != 4 || m["s1"] != 1 {
		t.Errorf("visible marks %v, want s0:4 s1:1:\n%s", m, svg)
	}
}

var downloadLinks = regexp.MustCompile(`<a href="([^"]+)" download>[^<]*</a> · <a href="([^"]+)">JSON</a>`)

// The check page's downloads are the series of every region (the
// buckets its table and chart show), not this node's raw results.
func TestCheckPageLinksSeries(t *testing.T) {
	_, _, ts := newTestServer(t, newStore(t))
	_, page := fetch(t, ts, "/checks/api")
	m := downloadLinks.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no download links:\n%s", page)
	}
	csvURL, jsonURL := string(m[1]), string(m[2])
	if csvURL != "/api/v1/checks/api/series.csv" || jsonURL != "/api/v1/checks/api/series" {
		t.Fatalf("links %q, %q; want the series and its CSV", csvURL, jsonURL)
	}
	resp, body := fetch(t, ts, csvURL)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("%s: %d %s", csvURL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if lines[0] != strings.Join(seriesCSVHeader, ",") {
		t.Fatalf("csv header %q", lines[0])
	}
	regions := map[string]int{}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != len(seriesCSVHeader) || f[1] != "api" || f[3] != "1m" {
			t.Fatalf("csv line %q", l)
		}
		regions[f[2]]++
	}
	if regions["eu-west"] == 0 || regions["us-east"] == 0 {
		t.Fatalf("csv rows per region %v:\n%s", regions, body)
	}
	if resp, _ := fetch(t, ts, jsonURL); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s: %d %s", jsonURL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// gatedMinutes blocks MinuteStats of one check while armed, until released.
type gatedMinutes struct {
	*store.Store
	check   string
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (g *gatedMinutes) MinuteStats(ctx context.Context, check, region string, from, to time.Time) ([]store.MinuteStat, error) {
	if check == g.check && g.armed.CompareAndSwap(true, false) {
		g.entered <- struct{}{}
		<-g.release
	}
	return g.Store.MinuteStats(ctx, check, region, from, to)
}

// A check page being rendered (its history read) holds no lock that other
// pages need: another check's page is served meanwhile, and the same
// page's previous rendering is.
func TestCheckPageRenderBlocksNoOtherPage(t *testing.T) {
	g := &gatedMinutes{Store: newStore(t), check: "api", entered: make(chan struct{}, 1), release: make(chan struct{})}
	src := &fakeSource{ready: true, st: testStatus()}
	s := New(Options{Source: src, History: g, Page: testPage(), Now: func() time.Time { return testNow }})
	get := func(path string) *httptest.ResponseRecorder { return serve(s, httptest.NewRequest("GET", path, nil)) }
	for _, p := range []string{"/checks/api", "/checks/web"} {
		if w := get(p); w.Code != 200 {
			t.Fatalf("%s: %d", p, w.Code)
		}
	}
	before := get("/checks/api").Body.String()

	// A new result of api: a new snapshot whose api page reads its history again.
	st := testStatus()
	rv := st.Checks[0].Regions["eu-west"]
	rv.CheckedAt = testNow.Add(-time.Second)
	st.Checks[0].Regions["eu-west"] = rv
	src.mu.Lock()
	src.st = st
	src.mu.Unlock()
	s.Refresh()
	g.armed.Store(true)
	first := make(chan int, 1)
	go func() { first <- get("/checks/api").Code }()
	<-g.entered // the api page is being rendered and waits in its history read

	others := make(chan string, 1)
	go func() {
		w := get("/checks/web")
		others <- "web " + strconv.Itoa(w.Code)
		w = get("/checks/api")
		if w.Body.String() != before {
			others <- "api: not the previous rendering"
			return
		}
		others <- "api " + strconv.Itoa(w.Code)
	}()
	for _, want := range []string{"web 200", "api 200"} {
		select {
		case got := <-others:
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			close(g.release)
			t.Fatalf("waiting for %q: blocked behind the api page's render", want)
		}
	}
	close(g.release)
	if code := <-first; code != 200 {
		t.Fatalf("the rendering request: %d", code)
	}
	if after := get("/checks/api").Body.String(); after == before {
		t.Fatal("the api page was not rendered again for the new snapshot")
	}
}

var headingTag = regexp.MustCompile(`<h([1-6])[\s>]`)

// Headings never skip a level (h1 then h3), on any of the pages, as
// screen readers and Lighthouse's heading-order audit want.
func TestHeadingOrder(t *testing.T) {
	_, _, ts := newTestServer(t, newStore(t))
	for _, p := range []string{"/", "/checks/api", "/checks/db", "/incidents/inc-new", "/incidents/inc-old"} {
		resp, page := fetch(t, ts, p)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		prev := 0
		for _, m := range headingTag.FindAllSubmatch(page, -1) {
			level := int(m[1][0] - '0')
			if level > prev+1 {
				t.Errorf("%s: h%d after h%d", p, level, prev)
			}
			prev = level
		}
		if prev == 0 {
			t.Errorf("%s: no headings", p)
		}
	}
}

// A document compressed whole over gzipLarge (GET /api/v1/status of
// hundreds of checks) is compressed at chunkLevel, not best compression;
// smaller ones at best, badges at the fastest level.
func TestGzipDocLevels(t *testing.T) {
	big := status1000(t)
	if len(big) <= gzipLarge {
		t.Fatalf("status of 1,000 checks: %d bytes, want more than %d", len(big), gzipLarge)
	}
	small := big[:gzipLarge/2]
	for _, c := range []struct {
		name  string
		body  []byte
		level int
	}{{"large", big, chunkLevel}, {"medium", small, gzipLevel}, {"badge", big[:1000], gzip.BestSpeed}} {
		gz := gzipDoc(c.body)
		if !bytes.Equal(gz, gzipBytes(c.body, c.level)) {
			t.Errorf("%s (%d bytes): not compressed at level %d", c.name, len(c.body), c.level)
		}
		if got := gunzip(t, gz); !bytes.Equal(got, c.body) {
			t.Errorf("%s: does not decompress to its body", c.name)
		}
	}
}

// Regions whose lone points fall on the same spot stay visible: earlier
// regions' dots are larger, so the later ones sit inside them as rings.
func TestChartSamePointDotsNested(t *testing.T) {
	to := testNow.Truncate(time.Minute)
	from := to.Add(-24 * time.Hour)
	at := store.MinuteStat{Minute: from.Add(100 * chartBucket), Aggregate: store.Aggregate{Count: 1, AvgLatency: 40 * time.Millisecond}}
	svg := string(latencyChart([]chartSeries{
		{Region: "a", Stats: []store.MinuteStat{at}},
		{Region: "b", Stats: []store.MinuteStat{at}},
		{Region: "c", Stats: []store.MinuteStat{at}},
	}, from, to, localeOf(Site{})))
	dot := regexp.MustCompile(`<circle class="dot s(\d)" cx="([\d.]+)" cy="([\d.]+)" r="([\d.]+)"/>`)
	ms := dot.FindAllStringSubmatch(svg, -1)
	if len(ms) != 3 {
		t.Fatalf("%d dots, want 3:\n%s", len(ms), svg)
	}
	var last float64 = 1e9
	for _, m := range ms {
		if m[2] != ms[0][2] || m[3] != ms[0][3] {
			t.Fatalf("dots not at one spot: %v", ms)
		}
		r, _ := strconv.ParseFloat(m[4], 64)
		if r >= last {
			t.Fatalf("dot of s%s has radius %g, not smaller than the one drawn before it (%g): it would hide it", m[1], r, last)
		}
		last = r
	}
}
