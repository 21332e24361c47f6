package checker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

func TestCheckerDispatch(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	k := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	var _ Prober = k

	r, _ := runProbe(t, k, httpCheck(srv.URL), 5*time.Second)
	wantOK(t, r)
	r, _ = runProbe(t, k, tcpCheck(srv.Listener.Addr().String()), 5*time.Second)
	wantOK(t, r)
	r, _ = runProbe(t, k, &config.Check{Type: "gopher", Target: "x"}, time.Second)
	wantCode(t, r, CodeConfig, `unknown check type "gopher"`)
	r, _ = runProbe(t, k, nil, time.Second)
	wantCode(t, r, CodeConfig)

	// No deadline on ctx: the default timeout still bounds the probe.
	h := newHungListener(t, "tcp4", "127.0.0.1:0")
	k = New(Options{DefaultTimeout: 200 * time.Millisecond})
	t0 := time.Now()
	r = k.Probe(context.Background(), httpCheck("http://"+h.Addr()))
	wantCode(t, r, CodeTimeout)
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	// A resolver that panics stands for a bug anywhere in a prober.
	p := NewTCPProber(Options{Resolver: panicResolver{}})
	r, _ := runProbe(t, p, tcpCheck("boom.test:80"), time.Second)
	wantCode(t, r, CodeInternal, "internal error")
}

type panicResolver struct{}

func (panicResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) { panic("boom") }

// TestHungTargetsDoNotStarve runs 200 probes against a target that accepts
// and never answers, together with one probe of a healthy target: the healthy
// one must finish before any hung one gives up, every hung one must fail with
// timeout at its deadline, and no goroutine may be left behind.
func TestHungTargetsDoNotStarve(t *testing.T) {
	const (
		n       = 200
		timeout = time.Second
		slack   = 2 * time.Second // -race on a 2-core machine
	)
	hung := newHungListener(t, "tcp4", "127.0.0.1:0")
	healthy := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	k := New(Options{})
	base := goroutines()

	start := make(chan struct{})
	var hungDone atomic.Int32
	var wg sync.WaitGroup
	results := make([]Result, n)
	took := make([]time.Duration, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := httpCheck("http://" + hung.Addr() + "/")
			if i%2 == 1 {
				c = tcpCheck(hung.Addr())
				c.Send = "PING\r\n"
				c.Expect.Banner = "PONG"
			}
			<-start
			results[i], took[i] = runProbe(t, k, c, timeout)
			hungDone.Add(1)
		}()
	}
	var healthyRes Result
	var hungBefore int32
	healthyDone := make(chan struct{})
	go func() {
		defer close(healthyDone)
		<-start
		c := httpCheck(healthy.URL)
		c.Expect.BodyContains = "ok"
		healthyRes, _ = runProbe(t, k, c, 10*time.Second)
		hungBefore = hungDone.Load()
	}()
	close(start)
	<-healthyDone
	wg.Wait()

	var maxTook time.Duration
	for _, d := range took {
		maxTook = max(maxTook, d)
	}
	t.Logf("healthy probe: %v (phases %+v); slowest hung probe: %v", healthyRes.Latency, healthyRes.Phases, maxTook)
	wantOK(t, healthyRes)
	if hungBefore != 0 {
		t.Errorf("healthy probe finished after %d hung probes had given up; it must not wait for them", hungBefore)
	}
	if healthyRes.Latency >= timeout {
		t.Errorf("healthy probe took %v", healthyRes.Latency)
	}
	for i, r := range results {
		if r.Code != CodeTimeout {
			t.Errorf("hung probe %d: code %q (%s), want timeout", i, r.Code, r.Message)
		}
		if took[i] > timeout+slack || took[i] < timeout-100*time.Millisecond {
			t.Errorf("hung probe %d took %v with a %v timeout", i, took[i], timeout)
		}
	}
	checkNoLeak(t, base, 2)
}

func BenchmarkHTTPProbe(b *testing.B) {
	srv := newServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"ok"}`)
	}))
	p := NewHTTPProber(Options{})
	c := httpCheck(srv.URL + "/health")
	c.Expect.BodyContains = `"status":"ok"`
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r := p.Probe(ctx, c)
		cancel()
		if !r.OK {
			b.Fatalf("%+v", r)
		}
	}
}
