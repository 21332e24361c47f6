package checker

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

const healthJSON = `{
  "status": "degraded",
  "version": "1.4.2",
  "uptime": 12345.5,
  "healthy": false,
  "build.id": "a1",
  "nothing": null,
  "regions": ["eu-west", "us-east"],
  "checks": [{"name": "db", "latency_ms": 180}, {"name": "cache", "latency_ms": 3}],
  "meta": {"owner": "core", "tags": {"tier": 1}},
  "weird*key": 7
}`

// assertServer serves healthJSON at /health, with headers, and other
// bodies by path.
func assertServer(t *testing.T) string {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Add("X-Served-By", "edge-1")
			w.Header().Add("X-Served-By", "origin-7")
			io.WriteString(w, healthJSON)
		case "/html":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<p>Down for maintenance</p>")
		case "/array":
			io.WriteString(w, `[1, 2, {"a": "b"}]`)
		}
	}))
	return srv.URL
}

func jsonA(path, op string, v any) config.JSONAssertion {
	keys, err := config.ParseJSONPath(path)
	if err != nil {
		panic(err)
	}
	return config.JSONAssertion{Path: path, Keys: keys, Op: op, Value: v}
}

func TestHTTPJSONAssertions(t *testing.T) {
	base := assertServer(t)
	p := NewHTTPProber(Options{})
	for _, tc := range []struct {
		a   config.JSONAssertion
		msg string // "": passes
	}{
		{jsonA("$.status", "==", "degraded"), ""},
		{jsonA("$.status", "==", "ok"), `$.status == "ok": got "degraded"`},
		{jsonA("$.status", "!=", "ok"), ""},
		{jsonA("$.status", "!=", "degraded"), `$.status != "degraded": got "degraded"`},
		{jsonA("$.version", "exists", true), ""},
		{jsonA("$.nothing", "exists", true), ""},
		{jsonA("$.gone", "exists", true), `$.gone exists: not found`},
		{jsonA("$.gone", "exists", false), ""},
		{jsonA("$.version", "exists", false), `$.version does not exist: got "1.4.2"`},
		{jsonA("$.uptime", ">", 12000.0), ""},
		{jsonA("$.uptime", ">=", 12345.5), ""},
		{jsonA("$.uptime", "<", 12345.5), `$.uptime < 12345.5: got 12345.5`},
		{jsonA("$.checks[0].latency_ms", "<=", 180.0), ""},
		{jsonA("$.checks[0].latency_ms", "<", 100.0), `$.checks[0].latency_ms < 100: got 180`},
		{jsonA("$.checks[1].name", "==", "cache"), ""},
		{jsonA("$.checks[2].name", "==", "x"), `$.checks[2].name == "x": not found`},
		{jsonA("$.status", ">", 1.0), `$.status > 1: got "degraded" (not a number)`},
		{jsonA("$.healthy", "==", false), ""},
		{jsonA("$.healthy", "==", true), `$.healthy == true: got false`},
		{jsonA("$.healthy", "==", "false"), `$.healthy == "false": got false`}, // types matter
		{jsonA("$.uptime", "==", "12345.5"), `$.uptime == "12345.5": got 12345.5`},
		{jsonA("$.meta.tags.tier", "==", 1.0), ""},
		{jsonA("$['build.id']", "==", "a1"), ""},
		{jsonA("$['weird*key']", "==", 7.0), ""},
		{jsonA("$.regions", "contains", "us-east"), ""},
		{jsonA("$.regions", "contains", "ap-south"), `$.regions contains "ap-south": got ["eu-west", "us-east"]`},
		{jsonA("$.status", "contains", "grad"), ""},
		{jsonA("$.status", "contains", "ok"), `$.status contains "ok": got "degraded"`},
		{jsonA("$.meta", "contains", "owner"), ""},
		{jsonA("$.meta", "contains", "nobody"), `$.meta contains "nobody": got {"owner": "core", "tags": {"tier": 1}}`},
		{jsonA("$.uptime", "contains", 1.0), `$.uptime contains 1: got 12345.5 (not a string, array or object)`},
		{jsonA("$.checks", "contains", "db"), `$.checks contains "db": got [{"name": "db", "latency_ms": 180}, {"name": "cache", "latency_m...`},
	} {
		c := httpCheck(base + "/health")
		c.Expect.JSON = []config.JSONAssertion{tc.a}
		r, _ := runProbe(t, p, c, 5*time.Second)
		if tc.msg == "" {
			if !r.OK {
				t.Errorf("%s: %s %s", tc.a, r.Code, r.Message)
			}
			continue
		}
		if r.OK || r.Code != CodeAssertJSON || r.Message != tc.msg {
			t.Errorf("%s: OK=%v %s %q, want %s %q", tc.a, r.OK, r.Code, r.Message, CodeAssertJSON, tc.msg)
		}
	}

	// In order: the first failing one is reported.
	c := httpCheck(base + "/health")
	c.Expect.JSON = []config.JSONAssertion{jsonA("$.version", "exists", true), jsonA("$.status", "==", "ok"), jsonA("$.gone", "exists", true)}
	r, _ := runProbe(t, p, c, 5*time.Second)
	wantCode(t, r, CodeAssertJSON, `$.status == "ok": got "degraded"`)

	// The root of an array document.
	c = httpCheck(base + "/array")
	c.Expect.JSON = []config.JSONAssertion{jsonA("$", "contains", 2.0), jsonA("$[2].a", "==", "b")}
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)

	// Not JSON at all, or cut by body_limit.
	c = httpCheck(base + "/html")
	c.Expect.JSON = []config.JSONAssertion{jsonA("$.status", "exists", true)}
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantCode(t, r, CodeAssertJSON, "body is not valid JSON")
	c = httpCheck(base + "/health")
	c.BodyLimit = 40
	c.Expect.JSON = []config.JSONAssertion{jsonA("$.status", "exists", true)}
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantCode(t, r, CodeAssertJSON, "body is not valid JSON", "first 40 bytes read, body_limit")
}

func TestHTTPHeaderAssertions(t *testing.T) {
	base := assertServer(t)
	p := NewHTTPProber(Options{})
	for _, tc := range []struct {
		hs  []config.HeaderAssertion
		msg string
	}{
		{[]config.HeaderAssertion{{Name: "Content-Type", Regex: regexp.MustCompile(`^application/json`)}}, ""},
		{[]config.HeaderAssertion{{Name: "X-Served-By", Regex: regexp.MustCompile(`^origin-`)}}, ""}, // any value
		{[]config.HeaderAssertion{{Name: "X-Served-By"}}, ""},                                        // present
		{[]config.HeaderAssertion{{Name: "Content-Type", Regex: regexp.MustCompile(`^text/`)}},
			`header Content-Type: got "application/json; charset=utf-8", want /^text//`},
		{[]config.HeaderAssertion{{Name: "X-Served-By", Regex: regexp.MustCompile(`^cdn`)}},
			`header X-Served-By: got "edge-1, origin-7", want /^cdn/`},
		{[]config.HeaderAssertion{{Name: "X-Request-Id"}}, "header X-Request-Id: missing"},
		{[]config.HeaderAssertion{{Name: "Etag", Regex: regexp.MustCompile(`.`)}}, "header Etag: missing, want /./"},
	} {
		c := httpCheck(base + "/health")
		c.Expect.Headers = tc.hs
		r, _ := runProbe(t, p, c, 5*time.Second)
		if tc.msg == "" {
			wantOK(t, r)
			continue
		}
		if r.OK || r.Code != CodeAssertHeader || r.Message != tc.msg {
			t.Errorf("%+v: OK=%v %s %q, want %q", tc.hs, r.OK, r.Code, r.Message, tc.msg)
		}
	}
	// The status is judged first.
	c := httpCheck(base + "/health")
	c.Expect.Status = []config.StatusRange{{Min: 500, Max: 599}}
	c.Expect.Headers = []config.HeaderAssertion{{Name: "X-Request-Id"}}
	r, _ := runProbe(t, p, c, 5*time.Second)
	wantCode(t, r, CodeHTTPStatus)
}

func TestHTTPBodyNotAssertions(t *testing.T) {
	base := assertServer(t)
	p := NewHTTPProber(Options{})
	c := httpCheck(base + "/html")
	c.Expect.BodyNotContains = "maintenance"
	r, _ := runProbe(t, p, c, 5*time.Second)
	wantCode(t, r, CodeAssertBodyNotContains, `body contains "maintenance"`)

	c = httpCheck(base + "/html")
	c.Expect.BodyNotRegex = regexp.MustCompile(`(?i)down\b`)
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantCode(t, r, CodeAssertBodyNotRegex, `body matches /(?i)down\b/: "Down"`)

	c = httpCheck(base + "/health")
	c.Expect.BodyNotContains = "maintenance"
	c.Expect.BodyNotRegex = regexp.MustCompile(`(?i)error`)
	c.Expect.BodyContains = "degraded"
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)

	// Only the bytes read count: past body_limit the text is not seen.
	c = httpCheck(base + "/html")
	c.BodyLimit = 10
	c.Expect.BodyNotContains = "maintenance"
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)
	if !strings.Contains(healthJSON, "degraded") {
		t.Fatal("fixture")
	}
}

// TestHTTPAssertionsFromConfig runs assertions as the config package reads
// them from a file.
func TestHTTPAssertionsFromConfig(t *testing.T) {
	base := assertServer(t)
	cfg, err := config.Parse("t.yaml", []byte(`
checks:
  - name: health
    type: http
    url: `+base+`/health
    expect:
      headers: {content-type: ^application/json}
      body_not_regex: (?i)exception
      json:
        - {path: $.status, op: "==", value: ok}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := runProbe(t, New(Options{}), &cfg.Checks[0], 5*time.Second)
	wantCode(t, r, CodeAssertJSON)
	if r.Message != `$.status == "ok": got "degraded"` {
		t.Errorf("message %q", r.Message)
	}
}
