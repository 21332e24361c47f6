package checker

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

func httpCheck(u string) *config.Check {
	return &config.Check{Name: "t", Type: config.TypeHTTP, URL: u, FollowRedirects: true}
}

func TestHTTPOK(t *testing.T) {
	var gotUA string
	var mu sync.Mutex
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotUA = r.Header.Get("User-Agent")
		mu.Unlock()
		io.WriteString(w, "hello")
	}))
	p := NewHTTPProber(Options{})
	r, _ := runProbe(t, p, httpCheck(srv.URL+"/"), 5*time.Second)
	wantOK(t, r)
	if r.StatusCode != 200 {
		t.Errorf("StatusCode = %d", r.StatusCode)
	}
	if r.RemoteAddr != srv.Listener.Addr().String() {
		t.Errorf("RemoteAddr = %q, want %q", r.RemoteAddr, srv.Listener.Addr())
	}
	if r.Phases.DNS != 0 {
		t.Errorf("DNS phase %v for a literal address", r.Phases.DNS)
	}
	if r.Phases.Connect <= 0 || r.Phases.FirstByte <= 0 || r.Phases.TLS != 0 {
		t.Errorf("phases %+v: want connect and first byte > 0, no TLS", r.Phases)
	}
	if r.Latency <= 0 || r.Latency < r.Phases.Connect {
		t.Errorf("latency %v, phases %+v", r.Latency, r.Phases)
	}
	if r.Start.IsZero() {
		t.Error("Start not set")
	}
	mu.Lock()
	defer mu.Unlock()
	if gotUA != DefaultUserAgent {
		t.Errorf("User-Agent %q", gotUA)
	}
}

func TestHTTPFreshConnectionEachProbe(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
	}))
	p := NewHTTPProber(Options{})
	for i := 0; i < 3; i++ {
		r, _ := runProbe(t, p, httpCheck(srv.URL), 5*time.Second)
		wantOK(t, r)
		if r.Phases.Connect <= 0 {
			t.Errorf("probe %d: connect phase %v", i, r.Phases.Connect)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 3 {
		t.Errorf("3 probes used %d connections, want 3", len(conns))
	}
}

func TestHTTPRequest(t *testing.T) {
	type seen struct{ method, host, ua, hdr, body string }
	ch := make(chan seen, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- seen{r.Method, r.Host, r.Header.Get("User-Agent"), r.Header.Get("X-Test"), string(b)}
	}))
	c := httpCheck(srv.URL + "/submit")
	c.Method = "POST"
	c.Body = `{"ping":1}`
	c.Headers = map[string]string{"host": "api.example.com", "User-Agent": "custom/2", "X-Test": "yes"}
	r, _ := runProbe(t, NewHTTPProber(Options{}), c, 5*time.Second)
	wantOK(t, r)
	got := <-ch
	want := seen{"POST", "api.example.com", "custom/2", "yes", `{"ping":1}`}
	if got != want {
		t.Errorf("server saw %+v, want %+v", got, want)
	}
}

func TestHTTPStatus(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.WriteHeader(code)
	}))
	p := NewHTTPProber(Options{})
	for _, tc := range []struct {
		code   int
		expect []config.StatusRange
		ok     bool
	}{
		{200, nil, true},
		{204, nil, true},
		{503, nil, false},
		{301, nil, false},
		{503, []config.StatusRange{{Min: 500, Max: 599}}, true},
		{404, []config.StatusRange{{Min: 200, Max: 299}, {Min: 404, Max: 404}}, true},
		{200, []config.StatusRange{{Min: 404, Max: 404}}, false},
	} {
		t.Run(fmt.Sprintf("%d-%v", tc.code, tc.expect), func(t *testing.T) {
			c := httpCheck(fmt.Sprintf("%s/?code=%d", srv.URL, tc.code))
			c.FollowRedirects = false
			c.Expect.Status = tc.expect
			r, _ := runProbe(t, p, c, 5*time.Second)
			if r.StatusCode != tc.code {
				t.Errorf("StatusCode = %d", r.StatusCode)
			}
			if tc.ok {
				wantOK(t, r)
			} else {
				wantCode(t, r, CodeHTTPStatus, "status "+strconv.Itoa(tc.code))
			}
		})
	}
}

func TestHTTPBody(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"ok","version":"1.2.3"}`)
	}))
	p := NewHTTPProber(Options{})
	for _, tc := range []struct {
		name     string
		contains string
		re       string
		ok       bool
	}{
		{"contains", `"status":"ok"`, "", true},
		{"contains-miss", `"status":"down"`, "", false},
		{"regex", "", `"version":"\d+\.\d+\.\d+"`, true},
		{"regex-miss", "", `"version":"2\.`, false},
		{"both", `"status":"ok"`, `version`, true},
		{"both-regex-miss", `"status":"ok"`, `^nope`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := httpCheck(srv.URL)
			c.Expect.BodyContains = tc.contains
			if tc.re != "" {
				c.Expect.BodyRegex = regexp.MustCompile(tc.re)
			}
			r, _ := runProbe(t, p, c, 5*time.Second)
			if tc.ok {
				wantOK(t, r)
			} else {
				wantCode(t, r, CodeBodyMismatch, "body does not")
			}
		})
	}
}

func TestHTTPBodyLimit(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/late":
			io.WriteString(w, strings.Repeat("a", 2000)+"NEEDLE")
		case "/endless":
			chunk := []byte(strings.Repeat("x", 4096))
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
	}))
	p := NewHTTPProber(Options{})

	c := httpCheck(srv.URL + "/late")
	c.Expect.BodyContains = "NEEDLE"
	c.BodyLimit = 1000
	r, _ := runProbe(t, p, c, 5*time.Second)
	wantCode(t, r, CodeBodyMismatch, "first 1000 bytes")

	c.BodyLimit = 0 // default 1 MiB
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)

	// An endless body: the probe reads at most the default limit and stops.
	c = httpCheck(srv.URL + "/endless")
	c.Expect.BodyContains = "y"
	r, d := runProbe(t, p, c, 10*time.Second)
	wantCode(t, r, CodeBodyMismatch, fmt.Sprintf("first %d bytes", DefaultBodyLimit))
	if d > 5*time.Second {
		t.Errorf("endless body probe took %v", d)
	}
	c.Expect.BodyContains = ""
	r, _ = runProbe(t, p, c, 10*time.Second)
	wantOK(t, r)
}

func TestHTTPTooSlow(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			// The probe can take no less than this: a lower bound, not a race.
			select {
			case <-time.After(300 * time.Millisecond):
			case <-r.Context().Done():
			}
		}
	}))
	p := NewHTTPProber(Options{})
	c := httpCheck(srv.URL + "/slow")
	c.Expect.MaxLatency = 50 * time.Millisecond
	r, _ := runProbe(t, p, c, 10*time.Second)
	wantCode(t, r, CodeTooSlow, "max_latency 50ms")
	if r.Latency < 300*time.Millisecond {
		t.Errorf("latency %v", r.Latency)
	}
	c = httpCheck(srv.URL + "/fast")
	c.Expect.MaxLatency = 5 * time.Second
	r, _ = runProbe(t, p, c, 10*time.Second)
	wantOK(t, r)
}

func TestHTTPRedirects(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
		if n > 0 {
			http.Redirect(w, r, fmt.Sprintf("/r/%d", n-1), http.StatusFound)
			return
		}
		io.WriteString(w, "landed")
	}))
	p := NewHTTPProber(Options{})

	c := httpCheck(srv.URL + "/r/10")
	c.Expect.BodyContains = "landed"
	r, _ := runProbe(t, p, c, 10*time.Second)
	wantOK(t, r)
	if r.StatusCode != 200 {
		t.Errorf("StatusCode = %d", r.StatusCode)
	}
	if r.Phases.Connect <= 0 || r.Phases.FirstByte <= 0 {
		t.Errorf("phases %+v", r.Phases)
	}

	r, _ = runProbe(t, p, httpCheck(srv.URL+"/r/11"), 10*time.Second)
	wantCode(t, r, CodeProtocol, "more than 10 redirects")

	c = httpCheck(srv.URL + "/r/3")
	c.FollowRedirects = false
	r, _ = runProbe(t, p, c, 10*time.Second)
	wantCode(t, r, CodeHTTPStatus, "status 302")
	c.Expect.Status = []config.StatusRange{{Min: 302, Max: 302}}
	r, _ = runProbe(t, p, c, 10*time.Second)
	wantOK(t, r)
}

func TestHTTPTLS(t *testing.T) {
	pki := newPKI(t)
	yearLeaf := pki.leaf(t, "year", time.Now().Add(365*24*time.Hour))
	hourLeaf := pki.leaf(t, "hour", time.Now().Add(time.Hour))
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") })
	year := newTLSServer(t, yearLeaf, ok)
	hour := newTLSServer(t, hourLeaf, ok)
	trusted := NewHTTPProber(Options{RootCAs: pki.pool})

	t.Run("valid", func(t *testing.T) {
		c := httpCheck(year.URL)
		c.Expect.CertExpiry = 336 * time.Hour
		c.Expect.BodyContains = "secure"
		r, _ := runProbe(t, trusted, c, 5*time.Second)
		wantOK(t, r)
		if !r.CertExpiry.Equal(yearLeaf.Leaf.NotAfter) {
			t.Errorf("CertExpiry %v, want the leaf's %v", r.CertExpiry, yearLeaf.Leaf.NotAfter)
		}
		if !r.CertNotAfter.Equal(yearLeaf.Leaf.NotAfter) || r.CertSerial != yearLeaf.Leaf.SerialNumber.Text(16) ||
			r.CertSubject != "year" || r.CertExpiring {
			t.Errorf("leaf: not after %v serial %q subject %q expiring %v", r.CertNotAfter, r.CertSerial, r.CertSubject, r.CertExpiring)
		}
		if r.Phases.TLS <= 0 || r.Phases.Connect <= 0 || r.Phases.FirstByte <= 0 {
			t.Errorf("phases %+v", r.Phases)
		}
	})
	t.Run("expiring", func(t *testing.T) {
		// An expiring certificate is reported, and the probe still succeeds.
		c := httpCheck(hour.URL)
		c.Expect.CertExpiry = 336 * time.Hour
		r, _ := runProbe(t, trusted, c, 5*time.Second)
		wantOK(t, r)
		if !r.CertExpiring || !r.CertExpiry.Equal(hourLeaf.Leaf.NotAfter) || !r.CertNotAfter.Equal(hourLeaf.Leaf.NotAfter) ||
			r.CertSerial != hourLeaf.Leaf.SerialNumber.Text(16) || r.CertSubject != "hour" {
			t.Errorf("expiring %v expiry %v leaf %v %q %q", r.CertExpiring, r.CertExpiry, r.CertNotAfter, r.CertSerial, r.CertSubject)
		}
		c.Expect.CertExpiry = 30 * time.Minute
		r, _ = runProbe(t, trusted, c, 5*time.Second)
		wantOK(t, r)
		if r.CertExpiring || r.CertSerial == "" {
			t.Errorf("30m before expiry: expiring %v serial %q", r.CertExpiring, r.CertSerial)
		}
		c.Expect.CertExpiry = 0
		r, _ = runProbe(t, trusted, c, 5*time.Second)
		if !r.OK || r.CertExpiring || r.CertNotAfter.IsZero() {
			t.Errorf("cert_expiry off: %+v", r)
		}
	})
	t.Run("cert-on-failure", func(t *testing.T) {
		// The certificate is reported even when the probe fails after TLS.
		failing := newTLSServer(t, hourLeaf, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		c := httpCheck(failing.URL)
		c.Expect.CertExpiry = 336 * time.Hour
		r, _ := runProbe(t, trusted, c, 5*time.Second)
		wantCode(t, r, CodeHTTPStatus)
		if !r.CertExpiring || r.CertSubject != "hour" || r.StatusCode != 503 {
			t.Errorf("expiring %v subject %q status %d", r.CertExpiring, r.CertSubject, r.StatusCode)
		}
	})
	t.Run("plain-http-has-no-cert", func(t *testing.T) {
		plain := newServer(t, ok)
		c := httpCheck(plain.URL)
		c.Expect.CertExpiry = 336 * time.Hour
		r, _ := runProbe(t, trusted, c, 5*time.Second)
		wantOK(t, r)
		if r.CertExpiring || !r.CertNotAfter.IsZero() || r.CertSerial != "" || r.CertSubject != "" || !r.CertExpiry.IsZero() {
			t.Errorf("cert fields on plain http: %+v", r)
		}
	})
	t.Run("unknown-ca", func(t *testing.T) {
		r, _ := runProbe(t, NewHTTPProber(Options{}), httpCheck(year.URL), 5*time.Second)
		wantCode(t, r, CodeTLS, "unknown authority")
	})
	t.Run("insecure", func(t *testing.T) {
		c := httpCheck(hour.URL)
		c.InsecureTLS = true
		c.Expect.CertExpiry = 336 * time.Hour
		r, _ := runProbe(t, NewHTTPProber(Options{}), c, 5*time.Second)
		wantOK(t, r)
		if !r.CertExpiry.Equal(hourLeaf.Leaf.NotAfter) || !r.CertExpiring || r.CertSubject != "hour" {
			t.Errorf("CertExpiry %v from PeerCertificates, want %v; expiring %v", r.CertExpiry, hourLeaf.Leaf.NotAfter, r.CertExpiring)
		}
	})
	t.Run("wrong-name", func(t *testing.T) {
		// The certificate is for localhost and loopback IPs, not this name.
		u, _ := url.Parse(year.URL)
		p := NewHTTPProber(Options{RootCAs: pki.pool, Resolver: mapResolver{"api.example.test": {"127.0.0.1"}}})
		r, _ := runProbe(t, p, httpCheck("https://api.example.test:"+u.Port()+"/"), 5*time.Second)
		wantCode(t, r, CodeTLS, "api.example.test")
	})
	t.Run("plain-http-server", func(t *testing.T) {
		plain := newServer(t, ok)
		r, _ := runProbe(t, trusted, httpCheck(strings.Replace(plain.URL, "http:", "https:", 1)), 5*time.Second)
		wantCode(t, r, CodeTLS)
	})
	t.Run("name-and-fallback", func(t *testing.T) {
		// localhost resolves to ::1 and 127.0.0.1; the server listens on IPv4
		// only. SNI and verification use the name.
		u, _ := url.Parse(year.URL)
		p := NewHTTPProber(Options{RootCAs: pki.pool, Resolver: mapResolver{"localhost": {"::1", "127.0.0.1"}}})
		c := httpCheck("https://localhost:" + u.Port() + "/")
		r, _ := runProbe(t, p, c, 5*time.Second)
		wantOK(t, r)
		if r.RemoteAddr != "127.0.0.1:"+u.Port() {
			t.Errorf("RemoteAddr %q", r.RemoteAddr)
		}
		if r.Phases.DNS <= 0 {
			t.Errorf("DNS phase %v for a name", r.Phases.DNS)
		}
	})
}

func TestHTTPConnectRefused(t *testing.T) {
	addr := freePort(t)
	r, d := runProbe(t, NewHTTPProber(Options{}), httpCheck("http://"+addr+"/"), 5*time.Second)
	wantCode(t, r, CodeConnectRefused, "connect "+addr+": connection refused")
	if d > 2*time.Second {
		t.Errorf("refused probe took %v", d)
	}
}

func TestHTTPHungServer(t *testing.T) {
	h := newHungListener(t, "tcp4", "127.0.0.1:0")
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			base := goroutines()
			defer checkNoLeak(t, base, 0)
			const timeout = 500 * time.Millisecond
			r, d := runProbe(t, NewHTTPProber(Options{}), httpCheck(scheme+"://"+h.Addr()+"/"), timeout)
			wantCode(t, r, CodeTimeout, h.Addr())
			if d < timeout || d > timeout+2*time.Second {
				t.Errorf("probe took %v with a %v timeout", d, timeout)
			}
			if r.RemoteAddr != h.Addr() {
				t.Errorf("RemoteAddr %q", r.RemoteAddr)
			}
		})
	}
}

func TestHTTPHangAfterHeaders(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	r, _ := runProbe(t, NewHTTPProber(Options{}), httpCheck(srv.URL), 500*time.Millisecond)
	wantCode(t, r, CodeTimeout, "reading body")
	if r.StatusCode != 200 {
		t.Errorf("StatusCode %d", r.StatusCode)
	}
}

func TestHTTPConnectTimeout(t *testing.T) {
	// A dialer that never completes stands for a target that drops SYNs.
	blackhole := func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	}
	base := goroutines()
	defer checkNoLeak(t, base, 0)
	p := NewHTTPProber(Options{DialContext: blackhole})
	const timeout = 300 * time.Millisecond
	r, d := runProbe(t, p, httpCheck("http://192.0.2.1:80/"), timeout)
	wantCode(t, r, CodeConnectTimeout, "connect 192.0.2.1:80: timed out")
	if d > timeout+time.Second {
		t.Errorf("took %v", d)
	}
}

func TestHTTPDNS(t *testing.T) {
	t.Run("invalid-tld", func(t *testing.T) {
		// RFC 6761: never resolves; refused without a query.
		r, _ := runProbe(t, NewHTTPProber(Options{}), httpCheck("http://vantage-test.invalid/"), 5*time.Second)
		wantCode(t, r, CodeDNS, "lookup vantage-test.invalid: no such host")
	})
	t.Run("resolver-not-found", func(t *testing.T) {
		p := NewHTTPProber(Options{Resolver: mapResolver{}})
		r, _ := runProbe(t, p, httpCheck("http://missing.example.test/"), 5*time.Second)
		wantCode(t, r, CodeDNS, "no such host")
	})
	t.Run("nxdomain-from-server", func(t *testing.T) {
		p := NewHTTPProber(Options{Resolver: fakeDNS(t, false)})
		r, d := runProbe(t, p, httpCheck("http://nxdomain.example.test/"), 5*time.Second)
		wantCode(t, r, CodeDNS, "lookup nxdomain.example.test: no such host")
		if d > 2*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("server-silent", func(t *testing.T) {
		// No goroutine-leak check here: Go's own resolver keeps its query
		// running (until its 5s resolv.conf timeout) after the caller gave up.
		p := NewHTTPProber(Options{Resolver: fakeDNS(t, true)})
		const timeout = 400 * time.Millisecond
		r, d := runProbe(t, p, httpCheck("http://silent.example.test/"), timeout)
		wantCode(t, r, CodeDNS, "silent.example.test")
		if d > timeout+time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("no-address-in-family", func(t *testing.T) {
		p := NewHTTPProber(Options{Resolver: mapResolver{"v4only.test": {"127.0.0.1"}}})
		c := httpCheck("http://v4only.test/")
		c.IP = "6"
		r, _ := runProbe(t, p, c, 5*time.Second)
		wantCode(t, r, CodeDNS, "no IPv6 address")
	})
}

func TestHTTPBadInput(t *testing.T) {
	p := NewHTTPProber(Options{})
	for _, c := range []*config.Check{
		nil,
		{Type: config.TypeHTTP},
		{Type: config.TypeHTTP, URL: "ftp://example.com/"},
		{Type: config.TypeHTTP, URL: "http://"},
		{Type: config.TypeHTTP, URL: "http://[::1"},
		{Type: config.TypeHTTP, URL: "http://127.0.0.1:99999/"},
		{Type: config.TypeHTTP, URL: "http://127.0.0.1/", Method: "BAD METHOD"},
		{Type: config.TypeHTTP, URL: "http://127.0.0.1/", Headers: map[string]string{"X": "a\nb"}},
		{Type: config.TypeHTTP, URL: "http://127.0.0.1/", IP: "7"},
		{Type: config.TypeHTTP, URL: "http://127.0.0.1:1/", IP: "6"},
	} {
		r, _ := runProbe(t, p, c, 2*time.Second)
		if r.OK || r.Code == "" || r.Message == "" {
			t.Errorf("%+v: got %+v, want a failure", c, r)
		}
	}
}
