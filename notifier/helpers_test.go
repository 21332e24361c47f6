package notifier

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"
)

var (
	t0       = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	t1       = t0.Add(12*time.Minute + 3*time.Second)
	sampleEv = Event{
		Action:     ActionTrigger,
		IncidentID: "inc-1",
		Check:      "api",
		Target:     "https://api.example.com/health",
		StartedAt:  t0,
		Regions: map[string]RegionVote{
			"us-east":  {Vote: "down", Error: "connect_timeout", LatencyMS: 10001},
			"eu-west":  {Vote: "down", Error: "connect_timeout", LatencyMS: 10000},
			"ap-south": {Vote: "up", LatencyMS: 41.2},
		},
		Severity:      "critical",
		StatusPageURL: "https://status.example.com/",
		Group:         "Public API",
	}
)

func resolved(e Event) Event {
	e.Action = ActionResolve
	t := t1
	e.ResolvedAt = &t
	return e
}

const sampleSummary = "api is not reachable from 2 of 3 regions (eu-west, us-east): connection timed out"

// request is one request a recorder received.
type request struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
	At                  time.Time
}

// recorder is an httptest server on 127.0.0.1 that records requests and
// answers with the status reply returns for the n-th request (0-based).
type recorder struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []request
	reply  func(n int, w http.ResponseWriter) int
	handle func(r request, w http.ResponseWriter) // when set, answers instead of reply
}

// newHandlerRecorder is a recorder whose answers handle writes.
func newHandlerRecorder(t *testing.T, handle func(r request, w http.ResponseWriter)) *recorder {
	t.Helper()
	r := newRecorder(t, nil)
	r.mu.Lock()
	r.handle = handle
	r.mu.Unlock()
	return r
}

func newRecorder(t *testing.T, reply func(n int, w http.ResponseWriter) int) *recorder {
	t.Helper()
	r := &recorder{reply: reply}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.reqs)
		rq := request{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Clone(), body, time.Now()}
		r.reqs = append(r.reqs, rq)
		handle := r.handle
		r.mu.Unlock()
		if handle != nil {
			handle(rq, w)
			return
		}
		status := http.StatusOK
		if r.reply != nil {
			status = r.reply(n, w)
		}
		w.WriteHeader(status)
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func (r *recorder) count() int { return len(r.requests()) }

// always answers every request with status.
func always(status int) func(int, http.ResponseWriter) int {
	return func(int, http.ResponseWriter) int { return status }
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// assertJSON compares got with the JSON document want, ignoring formatting
// and key order.
func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		gi, _ := json.MarshalIndent(g, "", "  ")
		wi, _ := json.MarshalIndent(w, "", "  ")
		t.Fatalf("body mismatch\ngot:  %s\nwant: %s", gi, wi)
	}
}
