package statuspage

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vantage-dev/vantage/store"
)

// Fuzzing the request parsers the server owns: query parameters (badges,
// the history API's range, the status document), conditional requests
// and Accept-Encoding, and the write API's JSON. Run one with, e.g.,
// go test -run '^$' -fuzz FuzzWriteAPI ./statuspage/

// fuzzServer is a server on an in-memory history and writer, with
// limits high enough not to interfere.
func fuzzServer(f *testing.F) *Server {
	st := &memHistory{}
	return New(Options{Source: &fakeSource{ready: true, st: testStatus()}, History: st, Page: testPage(),
		Now: func() time.Time { return testNow }, APIToken: testToken, Writer: &memWriter{},
		HistoryLimits: HistoryLimits{PerSecond: 1e9, Burst: 1 << 30, Concurrent: 64}})
}

func FuzzQuery(f *testing.F) {
	for _, q := range []string{"", "type=uptime&window=24h", "type=status", "type=uptime&window=2d", "type=%zz",
		"from=2026-11-22T09:00:00Z&to=2026-11-22T10:00:00Z", "from=2026-11-22T10:00:00Z&to=2026-11-22T09:00:00Z",
		"from=yesterday", "to=9999-12-31T23:59:59Z", "from=0001-01-01T00:00:00Z", "from=2026-11-22T09:00:00+14:00",
		"a=1&a=2;b", "%", "from=2026-11-22T09:00:00.999999999Z&to=2026-11-22T09:00:01Z"} {
		f.Add("/badge/api.svg", q)
		f.Add("/api/v1/checks/api/history", q)
		f.Add("/api/v1/checks/api/history.csv", q)
	}
	f.Add("/api/v1/status", "x=1")
	f.Add("/checks/db", "")
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, path, query string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#?") || !utf8.ValidString(path) {
			return
		}
		u := &url.URL{Path: path, RawQuery: query}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL, req.RequestURI = u, u.RequestURI()
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		switch w.Code {
		case 200, 301, 307, 308, 400, 404, 405:
		default:
			t.Fatalf("GET %s?%s: %d %s", path, query, w.Code, w.Body)
		}
		if w.Code == 200 && strings.HasPrefix(path, "/api/v1/checks/") && strings.HasSuffix(path, "/history") {
			var h HistoryJSON
			if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil || !h.From.Before(h.To) || h.To.Sub(h.From) > historyMaxSpan {
				t.Fatalf("history %s: %v %+v", query, err, h)
			}
		}
	})
}

func FuzzConditional(f *testing.F) {
	for _, c := range [][3]string{
		{"", "", "gzip"}, {`"x"`, "", ""}, {"*", "", "gzip;q=0"}, {`W/"x", "y"`, "", "br, gzip;q=0.8"},
		{"", "Sun, 22 Nov 2026 10:00:00 GMT", "identity"}, {"", "not a date", "*"}, {",,,", "", "gzip;q=0.000"},
		{"", "Mon, 02 Jan 2006 15:04:05 GMT", "GZIP ; q = 1"}, {`"` + strings.Repeat("a", 100), "", ";;;"},
	} {
		f.Add(c[0], c[1], c[2])
	}
	s := fuzzServer(f)
	for _, p := range []string{"/", "/api/v2/summary.json", "/api/v1/status"} {
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	f.Fuzz(func(t *testing.T, inm, ims, ae string) {
		for _, p := range []string{"/", "/api/v2/summary.json", "/api/v1/status", "/badge/api.svg"} {
			req := httptest.NewRequest("GET", p, nil)
			req.Header["If-None-Match"] = []string{inm}
			req.Header["If-Modified-Since"] = []string{ims}
			req.Header["Accept-Encoding"] = []string{ae}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			switch w.Code {
			case 304:
				if w.Body.Len() != 0 {
					t.Fatalf("%s: 304 with a body", p)
				}
				etag := w.Header().Get("Etag")
				if inm == "" && ims == "" || inm != "" && !strings.Contains(inm, "*") && !strings.Contains(inm, strings.Trim(etag, `"`)) &&
					!strings.Contains(inm, strings.TrimSuffix(strings.Trim(etag, `"`), "-gz")) {
					t.Fatalf("%s: 304 for If-None-Match %q (etag %s), If-Modified-Since %q", p, inm, etag, ims)
				}
			case 200:
				if w.Header().Get("Content-Encoding") == "gzip" {
					if !strings.Contains(strings.ToLower(ae), "gzip") && !strings.Contains(ae, "*") {
						t.Fatalf("%s: gzip for Accept-Encoding %q", p, ae)
					}
				}
				if cl := w.Header().Get("Content-Length"); cl != "" && cl != strconv.Itoa(w.Body.Len()) {
					t.Fatalf("%s: Content-Length %s for %d bytes", p, cl, w.Body.Len())
				}
			default:
				t.Fatalf("%s: %d", p, w.Code)
			}
		}
	})
}

// memWriter is a Writer in memory: one open incident, inc-new.
type memWriter struct {
	mu  sync.Mutex
	ups []store.IncidentUpdate
}

func (m *memWriter) PostUpdate(_ context.Context, u store.IncidentUpdate) (store.Incident, store.IncidentUpdate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u.IncidentID != "inc-new" {
		return store.Incident{}, u, store.ErrNotFound
	}
	u.ID, u.CreatedAt = "u1", testNow
	m.ups = append(m.ups, u)
	return store.Incident{ID: "inc-new", Check: "db", StartedAt: testNow.Add(-time.Minute)}, u, nil
}

func (m *memWriter) OpenIncident(_ context.Context, inc store.Incident, u store.IncidentUpdate) (store.Incident, store.IncidentUpdate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inc.ID, inc.StartedAt, u.ID, u.CreatedAt = "manual-1", testNow, "u2", testNow
	u.IncidentID = inc.ID
	m.ups = append(m.ups, u)
	return inc, u, nil
}

func FuzzWriteAPI(f *testing.F) {
	for _, b := range []string{
		`{"status":"identified","body":"Found it."}`, `{"status":"resolved","body":"ok"}`, `{"status":"nope","body":"x"}`,
		`{"title":"Login slow","body":"Looking.","impact":"major","checks":["api","db","api"]}`,
		`{"title":"a\nb","body":"x"}`, `{"title":"x","body":"y","checks":["nope"]}`, `{"title":"x","body":"\u0000"}`,
		`{"body":"x"}{"body":"y"}`, `{"status":"identified","body":"x","extra":1}`, `[]`, `null`, `"s"`, ``, `{`,
		`{"title":"` + strings.Repeat("t", 300) + `","body":"x"}`, `{"title":"x","body":"` + strings.Repeat("é", 6000) + `"}`,
	} {
		f.Add(b, true)
		f.Add(b, false)
	}
	s := fuzzServer(f)
	w0 := s.opts.Writer.(*memWriter)
	f.Fuzz(func(t *testing.T, body string, manual bool) {
		path := "/api/v1/incidents/inc-new/updates"
		if manual {
			path = "/api/v1/incidents"
		}
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w0.mu.Lock()
		before := len(w0.ups)
		w0.mu.Unlock()
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		w0.mu.Lock()
		after := w0.ups[before:]
		w0.mu.Unlock()
		switch w.Code {
		case 201:
			if len(after) != 1 {
				t.Fatalf("201 with %d writes", len(after))
			}
			u := after[0]
			if u.Body == "" || len(u.Body) > MaxUpdateBody || !utf8.ValidString(u.Body) || !store.ValidUpdateStatus(u.Status) {
				t.Fatalf("stored update %+v", u)
			}
			for _, r := range u.Body {
				if unicode.IsControl(r) && r != '\n' && r != '\t' {
					t.Fatalf("stored a control character %U", r)
				}
			}
			var resp WriteResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Update.ID == "" {
				t.Fatalf("201 body %s: %v", w.Body, err)
			}
			if manual && (resp.Incident.Title == "" || utf8.RuneCountInString(resp.Incident.Title) > MaxTitle ||
				strings.ContainsAny(resp.Incident.Title, "\n\t")) {
				t.Fatalf("title %q", resp.Incident.Title)
			}
		case 400, 413:
			if len(after) != 0 {
				t.Fatalf("%d with a write", w.Code)
			}
			var e apiError
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%d body %q", w.Code, w.Body)
			}
		default:
			t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
		}
	})
}

func FuzzParseDetails(f *testing.F) {
	for _, s := range []string{"down: a,b; up: c; abstain: none", `{"regions":{"a":{"vote":"down","error":"http_503"}}}`,
		"down:", "down: ;;", "{}", "free text"} {
		f.Add(s)
	}
	l := localeOf(Site{Locale: "ko"})
	f.Fuzz(func(t *testing.T, s string) {
		regions, ok := parseDetails(s)
		if ok != (len(regions) > 0) {
			t.Fatalf("ok %v with %d regions", ok, len(regions))
		}
		_ = l.headline("x", regions)
		_ = localeOf(Site{}).headline("x", regions)
	})
}

// The HTTP methods the server answers: anything else is 405 or 404, never
// a handler's error.
func TestMethods(t *testing.T) {
	s := New(Options{Source: &fakeSource{ready: true, st: testStatus()}, Page: testPage()})
	for _, m := range []string{"PUT", "DELETE", "PATCH", "TRACE"} {
		for _, p := range []string{"/", "/api/v1/status", "/api/v2/summary.json", "/api/v1/incidents"} {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(m, p, nil))
			if w.Code != http.StatusMethodNotAllowed && w.Code != http.StatusNotFound {
				t.Errorf("%s %s: %d", m, p, w.Code)
			}
		}
	}
}
