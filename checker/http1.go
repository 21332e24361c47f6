package checker

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/vantage-dev/vantage/config"
)

// One HTTP/1.1 exchange per connection, on the probe's own goroutine.
//
// A probe needs none of what http.Transport is for (a pool of reused
// connections, HTTP/2, proxies): it opens one connection, sends one
// request and reads one response. The transport still costs, per probe,
// three goroutines (dial, read loop, write loop) with their stacks and
// channels; on a node with thousands of checks that was a fifth of its
// CPU. So the prober writes the request with http.Request.Write and reads
// the response with http.ReadResponse itself, and follows redirects the
// way http.Client does (method and body per status, the Host header kept
// only for a relative Location, credentials not sent to another host, a
// Referer). Accept-Encoding: gzip is asked for and the body inflated, as
// the transport does, so targets answer as they would answer it.

// maxHeaderBytes bounds a response's status line and headers.
const maxHeaderBytes = 1 << 20

// max1xx bounds the informational (1xx) responses skipped before the
// final one.
const max1xx = 5

// hopConn is the connection of one hop: reads during the response head
// are bounded by maxHeaderBytes.
type hopConn struct {
	net.Conn
	head int64 // bytes the head may still read; < 0: no bound (the body)
}

var errHeaderTooLarge = fmt.Errorf("response headers exceed %d bytes", maxHeaderBytes)

func (c *hopConn) Read(p []byte) (int, error) {
	if c.head < 0 {
		return c.Conn.Read(p)
	}
	if c.head == 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > c.head {
		p = p[:c.head]
	}
	n, err := c.Conn.Read(p)
	c.head -= int64(n)
	return n, err
}

// hop is what one request of a probe observed.
type hop struct {
	remote string               // the connection's peer
	tls    *tls.ConnectionState // the handshake's state (https)
	conn   net.Conn
	br     *bufio.Reader // the response's, from readers; the body reads through it
}

// close closes the hop's connection and returns its reader to the pool;
// nothing may read the response after it. It may be called again.
func (h *hop) close() {
	h.conn.Close()
	if h.br != nil {
		h.br.Reset(nil)
		readers.Put(h.br)
		h.br = nil
	}
}

// The buffers of an exchange are reused: 6 KB a probe otherwise, a
// thousand probes a second on a large node.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 2048) }}
)

// newRequest builds a probe's first request from c, validated as the
// transport would (method, header names and values).
func (p *HTTPProber) newRequest(ctx context.Context, c *config.Check) (*http.Request, error) {
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if c.Body != "" {
		body = strings.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL, body)
	if err != nil {
		return nil, perr(CodeConfig, "invalid request: %v", err)
	}
	for k, v := range c.Headers {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, perr(CodeConfig, "invalid request: header name %q", k)
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			return nil, perr(CodeConfig, "invalid request: value of header %s", k)
		}
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		ua := p.opts.UserAgent
		if ua == "" {
			ua = DefaultUserAgent
		}
		req.Header.Set("User-Agent", ua)
	}
	return req, nil
}

// hostPort is the address to connect to for u: its host and port, the
// scheme's default port when it names none.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// roundTrip sends req on a new connection and reads the response head,
// adding to st's phases. The response's body reads from the connection,
// which the caller closes (h.close) when done with it.
func (p *HTTPProber) roundTrip(ctx context.Context, c *config.Check, st *httpState, req *http.Request) (*http.Response, *hop, error) {
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, nil, perr(CodeProtocol, "redirect to %s: scheme must be http or https", req.URL.Redacted())
	}
	addr := hostPort(req.URL)
	var ph Phases
	conn, err := p.opts.connect(ctx, addr, c.IP, &ph)
	st.ph.DNS += ph.DNS
	st.ph.Connect += ph.Connect
	if err != nil {
		return nil, nil, err
	}
	h := &hop{remote: conn.RemoteAddr().String(), conn: conn}
	st.remote = h.remote
	fail := func(err error) (*http.Response, *hop, error) {
		h.close()
		return nil, h, err
	}
	if req.URL.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{
			ServerName:         req.URL.Hostname(),
			RootCAs:            p.opts.RootCAs,
			InsecureSkipVerify: c.InsecureTLS, //nolint:gosec // the check asked for it
		})
		t0 := time.Now()
		err := tc.HandshakeContext(ctx)
		st.ph.TLS += time.Since(t0)
		if err != nil {
			return fail(classifyTLS(h.remote, err))
		}
		cs := tc.ConnectionState()
		h.tls, h.conn = &cs, tc
	}
	if u := req.URL.User; u != nil && req.Header.Get("Authorization") == "" {
		// Credentials in the URL are sent as basic auth, as http.Client
		// sends them (on every hop whose URL has them).
		pw, _ := u.Password()
		req.SetBasicAuth(u.Username(), pw)
	}
	gz := req.Method != http.MethodHead && req.Header.Get("Accept-Encoding") == "" && req.Header.Get("Range") == ""
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	req.Close = true // Connection: close
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(h.conn)
	werr := req.Write(bw) // a *bufio.Writer: Write leaves the flush to us
	if werr == nil {
		werr = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	if gz {
		req.Header.Del("Accept-Encoding") // the next hop decides again
	}
	if werr != nil {
		return fail(p.exchangeErr(ctx, h.remote, werr, budget(ctx, st.start)))
	}
	wrote := time.Now()
	hc := &hopConn{Conn: h.conn, head: maxHeaderBytes}
	br := readers.Get().(*bufio.Reader)
	br.Reset(hc)
	h.br = br
	if _, err := br.Peek(1); err != nil {
		return fail(p.exchangeErr(ctx, h.remote, err, budget(ctx, st.start)))
	}
	st.ph.FirstByte += time.Since(wrote)
	var resp *http.Response
	for n1xx := 0; ; n1xx++ {
		resp, err = http.ReadResponse(br, req)
		if err != nil {
			return fail(p.exchangeErr(ctx, h.remote, err, budget(ctx, st.start)))
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if n1xx == max1xx {
			return fail(perr(CodeProtocol, "http %s: more than %d informational responses", h.remote, max1xx))
		}
	}
	hc.head = -1
	resp.TLS = h.tls
	if gz && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		resp.Body = &gzipBody{r: resp.Body}
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
	}
	return resp, h, nil
}

// exchangeErr classifies a failure to write the request or read the
// response head from addr.
func (p *HTTPProber) exchangeErr(ctx context.Context, addr string, err error, limit time.Duration) error {
	if errors.Is(err, errHeaderTooLarge) {
		return perr(CodeProtocol, "http %s: %s", addr, err)
	}
	if ctx.Err() != nil || isTimeout(err) || errors.Is(err, net.ErrClosed) {
		if limit > 0 {
			return perr(CodeTimeout, "no response from %s within %s", addr, limit)
		}
		return perr(CodeTimeout, "no response from %s before the deadline", addr)
	}
	return perr(CodeProtocol, "http %s: %s", addr, shortErr(err))
}

// gzipBody inflates a gzip-encoded body as it is read.
type gzipBody struct {
	r   io.ReadCloser
	z   *gzip.Reader
	err error
}

func (b *gzipBody) Read(p []byte) (int, error) {
	if b.z == nil && b.err == nil {
		b.z, b.err = gzip.NewReader(b.r)
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.z.Read(p)
}

func (b *gzipBody) Close() error { return b.r.Close() }

// nextRequest is the request that follows resp to req's redirect, as
// http.Client makes it, or nil when resp is final: not a redirect, no
// Location, or the check does not follow redirects. via is every request
// so far, the probe's first at 0.
func nextRequest(c *config.Check, via []*http.Request, resp *http.Response) (*http.Request, error) {
	if !c.FollowRedirects {
		return nil, nil
	}
	first, req := via[0], via[len(via)-1]
	method, body := req.Method, false
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther:
		if method != http.MethodGet && method != http.MethodHead {
			method = http.MethodGet
		}
	case http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		body = true
	default:
		return nil, nil
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, nil // 3xx without a Location happen: the response is final
	}
	u, err := req.URL.Parse(loc)
	if err != nil {
		return nil, perr(CodeProtocol, "redirect to %q: %v", loc, errors.Unwrap(err))
	}
	if len(via) > MaxRedirects {
		return nil, perr(CodeProtocol, "more than %d redirects (last to %s)", MaxRedirects, u.Redacted())
	}
	var rb io.Reader
	if body && c.Body != "" {
		rb = strings.NewReader(c.Body)
	}
	next, err := http.NewRequestWithContext(req.Context(), method, u.String(), rb)
	if err != nil {
		return nil, perr(CodeProtocol, "redirect to %s: %v", u.Redacted(), err)
	}
	// The caller's Host header survives a relative redirect only.
	if first.Host != "" && first.Host != first.URL.Host {
		if lu, _ := url.Parse(loc); lu != nil && !lu.IsAbs() {
			next.Host = first.Host
		}
	}
	sameHost := sameOrSubdomain(first.URL.Hostname(), u.Hostname())
	for k, vs := range first.Header {
		if !sameHost && isCredential(k) {
			continue
		}
		next.Header[k] = vs
	}
	if ref := referer(req.URL, u); ref != "" && first.Header.Get("Referer") == "" {
		next.Header.Set("Referer", ref)
	}
	return next, nil
}

// isCredential reports the headers http.Client drops on a redirect to
// another host.
func isCredential(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Authorization", "Www-Authenticate", "Cookie", "Cookie2":
		return true
	}
	return false
}

// sameOrSubdomain reports whether sub is parent or one of its subdomains.
func sameOrSubdomain(parent, sub string) bool {
	parent, sub = strings.ToLower(parent), strings.ToLower(sub)
	return parent == sub || strings.HasSuffix(sub, "."+parent)
}

// referer is the Referer for a redirect from last to next: last without
// user info or fragment, none from https to http.
func referer(last, next *url.URL) string {
	if last.Scheme == "https" && next.Scheme == "http" {
		return ""
	}
	r := *last
	r.User, r.Fragment, r.RawFragment = nil, "", ""
	return r.String()
}
