package checker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
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

	// Zero values do not panic.
	r, _ = runProbe(t, &Checker{}, httpCheck(srv.URL), time.Second)
	wantCode(t, r, CodeConfig, "no http prober")
	r, _ = runProbe(t, &Checker{}, dnsCheck("ok.test", "A", "127.0.0.1:53"), time.Second)
	wantCode(t, r, CodeConfig, "no dns prober")
	r, _ = runProbe(t, &DNSProber{}, dnsCheck("ok.test", "A", freeUDP(t)), time.Second)
	wantCode(t, r, CodeConnectRefused)
	r, _ = runProbe(t, &HTTPProber{}, httpCheck(srv.URL), 5*time.Second)
	wantOK(t, r)

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

// FuzzProbeInput feeds arbitrary check fields to every prober. The network
// is stubbed out (no resolver answers, every dial and ICMP socket fails, dns
// checks ask a loopback port nobody listens on), so whatever the fuzzer
// invents, nothing leaves the machine; the probers must
// return a failure, never panic, and always fill Code and Message.
func FuzzProbeInput(f *testing.F) {
	f.Add("http", "http://127.0.0.1:1/", "", "GET", "", "any", 3)
	f.Add("http", "https://[::1]:443/x?y#z", "", "POST", "body", "6", 0)
	f.Add("http", "http://%zz/", "", "", "", "", -1)
	f.Add("http", "http://user:pw@host.test:99999/", "", "G E T", "", "4", 1)
	f.Add("tcp", "", "host.test:80", "", "PING", "4", 0)
	f.Add("tcp", "", "[fe80::1%eth0]:22", "", "", "6", 0)
	f.Add("tcp", "", "127.0.0.1:http", "", "", "any", 0)
	f.Add("icmp", "", "127.0.0.1", "", "", "", 2)
	f.Add("icmp", "", "::1", "", "", "6", 1<<30)
	f.Add("icmp", "", "[::1]:0", "", "", "4", -5)
	f.Add("smtp", "", "", "", "", "", 0)
	f.Add("dns", "", "example.com", "MX", "", "any", 0)
	f.Add("dns", "", "..", "A", "", "6", 0)
	f.Add("dns", "", "example.com", "PTR", "", "", 0)
	f.Add("push", "", "", "", "", "", 0)
	noDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	noICMP := func(network, addr string) (net.PacketConn, error) {
		return nil, os.NewSyscallError("socket", syscall.EPERM)
	}
	k := New(Options{Resolver: mapResolver{}, DialContext: noDial, ICMPListen: noICMP, DNSServers: []string{freeUDP(f)}})
	f.Fuzz(func(t *testing.T, typ, u, target, method, body, ip string, count int) {
		c := &config.Check{Type: typ, URL: u, Target: target, Method: method, Record: method, Body: body, IP: ip,
			Count: count, Send: body, FollowRedirects: true, Headers: map[string]string{"X": body}}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		r := k.Probe(ctx, c)
		if r.OK || r.Code == "" || r.Message == "" {
			t.Fatalf("%+v: got %+v", c, r)
		}
	})
}

type panicResolver struct{}

func (panicResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) { panic("boom") }

// TestHungTargetsDoNotStarve runs 200 probes against a target that accepts
// and never answers, together with one probe of a healthy target started
// while they are in flight: the healthy one must finish before any hung one
// gives up, every hung one must fail with
// timeout at its deadline, and no goroutine may be left behind.
func TestHungTargetsDoNotStarve(t *testing.T) {
	const (
		n       = 200
		timeout = time.Second
		slack   = 3 * time.Second // -race on a busy 2-core machine
	)
	hung := newHungListener(t, "tcp4", "127.0.0.1:0")
	healthy := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	k := New(Options{})
	base := goroutines()

	for attempt := 1; ; attempt++ {
		o := hungScenario(t, k, n, timeout, hung, healthy.URL)
		t.Logf("healthy probe: %v (phases %+v); slowest hung probe: %v", o.healthy.Latency, o.healthy.Phases, o.slowest)
		// A shared lock or pool would make the healthy probe wait for hung
		// ones while those still end on time. If instead the hung probes
		// themselves overran their deadline, the whole machine stalled (other
		// work on a small box): that says nothing about the prober, try again.
		if o.hungBefore != 0 && o.slowest > timeout+300*time.Millisecond && attempt < 3 {
			t.Logf("attempt %d: machine stalled (a hung probe took %v for a %v timeout); retrying", attempt, o.slowest, timeout)
			continue
		}
		wantOK(t, o.healthy)
		if o.hungBefore != 0 {
			t.Errorf("healthy probe finished after %d hung probes had given up; it must not wait for them", o.hungBefore)
		}
		if o.healthy.Latency >= timeout {
			t.Errorf("healthy probe took %v", o.healthy.Latency)
		}
		for i, r := range o.results {
			if r.Code != CodeTimeout {
				t.Errorf("hung probe %d: code %q (%s), want timeout", i, r.Code, r.Message)
			}
			if o.took[i] > timeout+slack || o.took[i] < timeout {
				t.Errorf("hung probe %d took %v with a %v timeout", i, o.took[i], timeout)
			}
		}
		break
	}
	checkNoLeak(t, base, 2)
}

type hungOutcome struct {
	healthy    Result
	hungBefore int32 // hung probes that had returned when the healthy one did
	results    []Result
	took       []time.Duration
	slowest    time.Duration
}

func hungScenario(t *testing.T, k *Checker, n int, timeout time.Duration, hung *hungListener, healthyURL string) hungOutcome {
	o := hungOutcome{results: make([]Result, n), took: make([]time.Duration, n)}
	hungAddr := hung.Addr()
	before := hung.Accepted()
	start := make(chan struct{})
	var hungDone atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := httpCheck("http://" + hungAddr + "/")
			if i%2 == 1 {
				c = tcpCheck(hungAddr)
				c.Send = "PING\r\n"
				c.Expect.Banner = "PONG"
			}
			<-start
			o.results[i], o.took[i] = runProbe(t, k, c, timeout)
			hungDone.Add(1)
		}()
	}
	// The healthy probe starts once half the hung probes hold a connection
	// (the condition under which a shared pool or lock would bite), while
	// the other half are still starting.
	c := httpCheck(healthyURL)
	c.Expect.BodyContains = "ok"
	close(start)
	for hung.Accepted()-before < n/2 && hungDone.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	o.healthy, _ = runProbe(t, k, c, 10*time.Second)
	o.hungBefore = hungDone.Load()
	wg.Wait()
	for _, d := range o.took {
		o.slowest = max(o.slowest, d)
	}
	return o
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
