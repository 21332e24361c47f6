package checker

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestHTTPGzip: the probe asks for gzip and checks the inflated body, as
// net/http's transport does; a check that sets its own Accept-Encoding
// gets the bytes as sent.
func TestHTTPGzip(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			io.WriteString(w, "plain body")
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, "inflated body")
		zw.Close()
	}))
	p := NewHTTPProber(Options{})
	c := httpCheck(srv.URL)
	c.Expect.BodyContains = "inflated body"
	r, _ := runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)

	c.Headers = map[string]string{"Accept-Encoding": "identity"}
	c.Expect.BodyContains = "plain body"
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)

	c.Headers, c.Method = nil, http.MethodHead
	c.Expect.BodyContains = ""
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"gzip", "identity", ""}; fmt.Sprint(asked) != fmt.Sprint(want) {
		t.Errorf("Accept-Encoding sent %q, want %q", asked, want)
	}
}

// rawServer answers every connection with resp after reading the request
// head.
func rawServer(t *testing.T, resp string) string {
	return serve(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, resp)
	})
}

// TestHTTPRawResponses: informational responses before the final one,
// oversized heads and malformed responses.
func TestHTTPRawResponses(t *testing.T) {
	big := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n"
	for _, tc := range []struct {
		name, resp string
		code, msg  string // want; code "" for OK
		status     int
	}{
		{"100 continue then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "", "", 200},
		{"too many 1xx", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", max1xx+1) + "HTTP/1.1 200 OK\r\n\r\n", CodeProtocol, "informational", 0},
		{"head too large", big, CodeProtocol, "response headers exceed", 0},
		{"not http", "SSH-2.0-OpenSSH_9.6\r\n", CodeProtocol, "malformed HTTP", 0},
		{"closed without answer", "", CodeProtocol, "connection closed by peer", 0},
		{"chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawServer(t, tc.resp)
			c := httpCheck("http://" + addr + "/")
			if tc.code == "" {
				c.Expect.BodyContains = "ok"
			}
			r, _ := runProbe(t, NewHTTPProber(Options{}), c, 5*time.Second)
			if tc.code == "" {
				wantOK(t, r)
			} else {
				wantCode(t, r, tc.code, tc.msg)
			}
			if r.StatusCode != tc.status {
				t.Errorf("status %d, want %d", r.StatusCode, tc.status)
			}
		})
	}
}

// TestHTTPRedirectRequests: each redirect's request is made as
// http.Client makes it.
func TestHTTPRedirectRequests(t *testing.T) {
	type seen struct{ method, path, host, auth, body, referer string }
	var mu sync.Mutex
	var got []seen
	handler := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Path, r.Host, r.Header.Get("Authorization"), string(b), r.Header.Get("Referer")})
		mu.Unlock()
		switch r.URL.Path {
		case "/303":
			http.Redirect(w, r, "/307", http.StatusSeeOther)
		case "/307":
			http.Redirect(w, r, "/end", http.StatusTemporaryRedirect)
		case "/post":
			http.Redirect(w, r, "/307b", http.StatusTemporaryRedirect)
		case "/307b":
			http.Redirect(w, r, "/302", http.StatusTemporaryRedirect)
		case "/302":
			http.Redirect(w, r, "/end", http.StatusFound)
		case "/nolocation":
			w.WriteHeader(http.StatusFound)
		case "/away":
			// Another host (localhost, not 127.0.0.1): credentials stay behind.
			http.Redirect(w, r, "http://"+strings.Replace(r.Host, "127.0.0.1", "localhost", 1)+"/end", http.StatusFound)
		case "/ftp":
			http.Redirect(w, r, "ftp://example.invalid/", http.StatusFound)
		default:
			io.WriteString(w, "end")
		}
	}
	srv := newServer(t, http.HandlerFunc(handler))
	p := NewHTTPProber(Options{})
	reset := func() []seen {
		mu.Lock()
		defer mu.Unlock()
		g := got
		got = nil
		return g
	}

	c := httpCheck(srv.URL + "/post")
	c.Method, c.Body = "POST", "payload"
	c.Headers = map[string]string{"Authorization": "Bearer x"}
	r, _ := runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)
	host := strings.TrimPrefix(srv.URL, "http://")
	want := []seen{
		{"POST", "/post", host, "Bearer x", "payload", ""},
		{"POST", "/307b", host, "Bearer x", "payload", srv.URL + "/post"}, // 307 keeps method and body
		{"POST", "/302", host, "Bearer x", "payload", srv.URL + "/307b"},
		{"GET", "/end", host, "Bearer x", "", srv.URL + "/302"}, // 302 after POST: GET without a body
	}
	if g := reset(); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Errorf("requests\n got %+v\nwant %+v", g, want)
	}

	// probeOK probes path with one header and returns the requests made.
	probeOK := func(path, header, value string) []seen {
		c := httpCheck(srv.URL + path)
		c.Headers = map[string]string{header: value}
		r, _ := runProbe(t, p, c, 5*time.Second)
		wantOK(t, r)
		return reset()
	}
	if g := probeOK("/away", "Authorization", "Bearer x"); len(g) != 2 || g[0].auth != "Bearer x" || g[1].auth != "" {
		t.Errorf("redirect to another host: requests %+v, want the credentials dropped", g)
	}
	if g := probeOK("/303", "Host", "api.example.test"); len(g) != 3 || g[1].host != "api.example.test" || g[2].host != "api.example.test" {
		t.Errorf("Host header over relative redirects: %+v", g)
	}

	r, _ = runProbe(t, p, httpCheck(srv.URL+"/nolocation"), 5*time.Second)
	wantCode(t, r, CodeHTTPStatus, "status 302")
	reset()

	r, _ = runProbe(t, p, httpCheck(srv.URL+"/ftp"), 5*time.Second)
	wantCode(t, r, CodeProtocol, "scheme must be http or https")
}

// TestProbeConnNoKeepAlive: a probe's connection has no TCP keep-alive
// (one exchange within the timeout; setting it up costs system calls).
func TestProbeConnNoKeepAlive(t *testing.T) {
	addr := serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	o := Options{}
	conn, err := o.dialFunc()(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on int
	var serr error
	if err := raw.Control(func(fd uintptr) { on, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	if on != 0 {
		t.Errorf("SO_KEEPALIVE is %d, want 0", on)
	}
}

// TestHTTPURLCredentials: user and password in the URL are sent as basic
// auth, as http.Client sends them; an Authorization header of the check's
// own wins.
func TestHTTPURLCredentials(t *testing.T) {
	got := make(chan string, 2)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		got <- fmt.Sprintf("%v %s:%s %s", ok, u, p, r.Header.Get("Authorization"))
	}))
	u := strings.Replace(srv.URL, "http://", "http://probe:s3cret@", 1)
	p := NewHTTPProber(Options{})
	r, _ := runProbe(t, p, httpCheck(u), 5*time.Second)
	wantOK(t, r)
	if g := <-got; g != "true probe:s3cret Basic cHJvYmU6czNjcmV0" {
		t.Errorf("server saw %q", g)
	}
	c := httpCheck(u)
	c.Headers = map[string]string{"Authorization": "Bearer own"}
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)
	if g := <-got; g != "false : Bearer own" {
		t.Errorf("server saw %q", g)
	}
}

// TestHTTPConcurrentProbesKeepTheirBodies: probes run at once, over
// redirects and gzip, each read their own answer (the exchange's buffers
// are pooled and reused).
func TestHTTPConcurrentProbesKeepTheirBodies(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/r/") {
			http.Redirect(w, r, "/b/"+strings.TrimPrefix(r.URL.Path, "/r/"), http.StatusFound)
			return
		}
		body := "body of " + r.URL.Path + strings.Repeat(".", 6000) // larger than a reader's buffer
		if len(r.URL.Path)%2 == 0 {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, body)
			zw.Close()
			return
		}
		io.WriteString(w, body)
	}))
	p := NewHTTPProber(Options{})
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := httpCheck(fmt.Sprintf("%s/r/%d", srv.URL, i))
			c.Expect.BodyContains = fmt.Sprintf("body of /b/%d.", i)
			if r, _ := runProbe(t, p, c, 10*time.Second); !r.OK {
				errs <- fmt.Sprintf("probe %d: %s %s", i, r.Code, r.Message)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
