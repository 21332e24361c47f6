package statuspage

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// historyReq is a history API request from addr.
func historyReq(addr, auth string) *http.Request {
	r := httptest.NewRequest("GET", "/api/v1/checks/api/history?from=2026-11-22T09:00:00Z&to=2026-11-22T09:10:00Z", nil)
	r.RemoteAddr = addr
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

func serve(s http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// The history API is limited per client (an IPv4 address, an IPv6 /64):
// after the burst, 429 with Retry-After until the bucket refills;
// requests with the API token are not limited; a wrong token is refused.
func TestHistoryRateLimit(t *testing.T) {
	now := testNow
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := New(Options{Source: &fakeSource{ready: true, st: testStatus()}, History: newStore(t), Page: testPage(), Now: clock,
		APIToken: testToken, HistoryLimits: HistoryLimits{PerSecond: 0.5, Burst: 3}})
	for i := range 3 {
		if w := serve(s, historyReq("192.0.2.1:4000", "")); w.Code != 200 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	w := serve(s, historyReq("192.0.2.1:4001", ""))
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("over the burst: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	// the CSV and any other history path share the bucket
	r := historyReq("192.0.2.1:4002", "")
	r.URL.Path = "/api/v1/checks/api/history.csv"
	if w := serve(s, r); w.Code != 429 {
		t.Fatalf("csv over the burst: %d", w.Code)
	}
	// another client is not affected; an operator is not limited
	if w := serve(s, historyReq("192.0.2.2:4000", "")); w.Code != 200 {
		t.Fatalf("another client: %d", w.Code)
	}
	for range 5 {
		if w := serve(s, historyReq("192.0.2.1:4000", "Bearer "+testToken)); w.Code != 200 {
			t.Fatalf("operator: %d", w.Code)
		}
	}
	if w := serve(s, historyReq("192.0.2.1:4000", "Bearer not-the-token-000000")); w.Code != 401 {
		t.Fatalf("wrong token: %d", w.Code)
	}
	// IPv6: one /64 is one client
	for i := range 3 {
		serve(s, historyReq(fmt.Sprintf("[2001:db8::%d]:4000", i+1), ""))
	}
	if w := serve(s, historyReq("[2001:db8::ffff]:4000", "")); w.Code != 429 {
		t.Fatalf("same /64: %d", w.Code)
	}
	if w := serve(s, historyReq("[2001:db8:0:1::1]:4000", "")); w.Code != 200 {
		t.Fatalf("another /64: %d", w.Code)
	}
	// the bucket refills
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if w := serve(s, historyReq("192.0.2.1:4000", "")); w.Code != 200 {
		t.Fatalf("after the refill: %d", w.Code)
	}
	// the page is never limited
	for range 20 {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.0.2.1:4000"
		if w := serve(s, r); w.Code != 200 {
			t.Fatalf("page: %d", w.Code)
		}
	}
}

// The limiter forgets idle clients rather than growing without bound.
func TestLimiterBounded(t *testing.T) {
	now := testNow
	lm := newLimiter(HistoryLimits{PerSecond: 1, Burst: 2, Clients: 100}, func() time.Time { return now })
	for i := range 1000 {
		now = now.Add(time.Millisecond)
		r := &http.Request{RemoteAddr: fmt.Sprintf("10.0.%d.%d:1", i/256, i%256)}
		if ok, _ := lm.allow(clientOf(r)); !ok {
			t.Fatalf("client %d refused", i)
		}
	}
	if n := len(lm.buck); n > 100 {
		t.Fatalf("%d clients tracked", n)
	}
}

// blockingHistory blocks History until released.
type blockingHistory struct {
	inner
	entered chan struct{}
	release chan struct{}
}

func (b *blockingHistory) History(ctx context.Context, check string, from, to time.Time, limit int) ([]store.Result, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.inner.History(ctx, check, from, to, limit)
}

type inner = History

// At most Concurrent history requests run at once; one that finds no turn
// within QueueWait gets 503.
func TestHistoryConcurrency(t *testing.T) {
	bh := &blockingHistory{inner: newStore(t), entered: make(chan struct{}, 4), release: make(chan struct{})}
	s := New(Options{Source: &fakeSource{ready: true, st: testStatus()}, History: bh, Page: testPage(),
		Now: func() time.Time { return testNow }, HistoryLimits: HistoryLimits{Concurrent: 1, QueueWait: 100 * time.Millisecond}})
	done := make(chan int)
	go func() { done <- serve(s, historyReq("192.0.2.1:1", "")).Code }()
	<-bh.entered
	start := time.Now()
	w := serve(s, historyReq("192.0.2.2:1", ""))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("second request: %d after %v", w.Code, time.Since(start))
	}
	// the page is served meanwhile
	if w := serve(s, httptest.NewRequest("GET", "/api/v2/summary.json", nil)); w.Code != 200 {
		t.Fatalf("summary while the history API is busy: %d", w.Code)
	}
	close(bh.release)
	if code := <-done; code != 200 {
		t.Fatalf("first request: %d", code)
	}
	go func() { <-bh.entered }()
	if w := serve(s, historyReq("192.0.2.2:1", "")); w.Code != 200 {
		t.Fatalf("after the first: %d", w.Code)
	}
}

// A request body over the limit is refused before the token is checked,
// without being read; a body without a length is cut at the limit.
func TestBodyBoundedBeforeToken(t *testing.T) {
	_, _, ts := newWriteServer(t, testToken)
	addr := strings.TrimPrefix(ts.URL, "http://")
	for _, auth := range []string{"", "Authorization: Bearer wrong-token-0123456789\r\n", "Authorization: Bearer " + testToken + "\r\n"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// headers only: a server that waited for the 100 MB would hang
		fmt.Fprintf(c, "POST /api/v1/incidents HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n", auth)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%q: %v", auth, err)
		}
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("%q: %d, want 413", auth, resp.StatusCode)
		}
	}
	// chunked, with the token: cut at the limit
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(`{"title":"x","body":"`))
		chunk := strings.Repeat("a", 4096)
		for range 64 {
			if _, err := pw.Write([]byte(chunk)); err != nil {
				return
			}
		}
		_ = pw.Close()
	}()
	req, _ := http.NewRequest("POST", ts.URL+"/api/v1/incidents", pr)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_ = pr.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked over the limit: %d", resp.StatusCode)
	}
}

// The node's server: a client that never finishes its headers is cut off
// after ReadHeaderTimeout, an idle keep-alive connection after
// IdleTimeout, and LimitListener serves at most MaxConns at once.
func TestHTTPServerLimits(t *testing.T) {
	o := HTTPOptions{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
		IdleTimeout: 300 * time.Millisecond, MaxConns: 2}
	srv := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }), o, nil)
	if srv.ReadTimeout != time.Second || srv.WriteTimeout != time.Second || srv.IdleTimeout != 300*time.Millisecond ||
		srv.ReadHeaderTimeout != 200*time.Millisecond || srv.MaxHeaderBytes != DefaultHTTPOptions().MaxHeaderBytes {
		t.Fatalf("server %+v", srv)
	}
	d := NewHTTPServer(nil, HTTPOptions{}, nil)
	if def := DefaultHTTPOptions(); d.ReadTimeout != def.ReadTimeout || d.WriteTimeout != def.WriteTimeout || d.IdleTimeout != def.IdleTimeout ||
		d.ReadHeaderTimeout != def.ReadHeaderTimeout || d.ReadTimeout <= 0 || d.WriteTimeout <= 0 || d.IdleTimeout <= 0 {
		t.Fatalf("defaults %+v", d)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(LimitListener(ln, o.MaxConns)) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()

	closedWithin := func(c net.Conn, d time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c)
		return err == nil // EOF: the server closed it
	}
	// slow headers
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\n")
	if !closedWithin(slow, 3*time.Second) {
		t.Fatal("a connection with unfinished headers was kept open")
	}
	slow.Close()
	// idle keep-alive
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = idle.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	idle.Close()
	// the cap: two connections held open, a third is not served until one
	// closes
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	}
	time.Sleep(50 * time.Millisecond)
	third, err := net.Dial("tcp", addr) // the kernel accepts; the server does not yet
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	_, _ = io.WriteString(third, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	_ = third.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := third.Read(make([]byte, 1)); n != 0 {
		t.Fatal("a third connection was served beyond the cap")
	}
	held[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("third connection after one closed: %v", err)
	}
	resp.Body.Close()
	held[1].Close()
}

// The server's read and write timeouts do not cut the websocket: it sets
// its own deadlines once upgraded.
func TestWebsocketOutlivesServerTimeouts(t *testing.T) {
	s := New(Options{Source: &fakeSource{ready: true, st: testStatus()}, Page: testPage(),
		Hub: HubOptions{PingInterval: 100 * time.Millisecond}})
	ts := httptest.NewUnstartedServer(s)
	ts.Config = NewHTTPServer(s, HTTPOptions{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond,
		WriteTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}, nil)
	ts.Start()
	t.Cleanup(ts.Close)
	c := dial(t, ts)
	waitClients(t, s.Hub(), 1)
	time.Sleep(time.Second) // over three times each timeout
	s.Publish(Event{Name: "db", State: "up", Since: testNow})
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("websocket cut: %v", err)
		}
		if strings.Contains(string(msg), `"name":"db"`) {
			return
		}
	}
}
